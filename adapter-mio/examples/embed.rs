//! `switchboard_mio::Embedded` inside an application's own `mio::Poll`. The application has a
//! source of its own on token 0 (a line-based control port: `TOPIC JSON` publishes, `shutdown`
//! drains); the WebSocket server has tokens 1000 and up.
//!
//! ```sh
//! cargo run -p switchboard-mio --example embed
//! nc 127.0.0.1 9002        # then type: chat.lobby {"text":"hi"}   (or: shutdown)
//! ```

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::value::RawValue;
use switchboard_mio::{Embedded, Handle, ServerConfig};

/// The application's control listener; its connections take the tokens above, up to `SERVER`.
const CONTROL: Token = Token(0);
/// The server's first token: everything at or above it is the server's.
const SERVER: Token = Token(1000);

fn main() -> io::Result<()> {
    let ws = "127.0.0.1:9001".parse().expect("an address");
    let control = "127.0.0.1:9002".parse().expect("an address");
    run(ws, control, "change-me", |ws, control| {
        println!("WebSocket on ws://{ws}/ws; control port {control}: `TOPIC JSON` or `shutdown`");
    })
}

/// Serves WebSockets on `ws` and the control port on `control` from one `Poll`, until a
/// `shutdown` line has drained the server. `ready` gets the bound addresses.
pub(crate) fn run(
    ws: SocketAddr,
    control: SocketAddr,
    secret: &str,
    ready: impl FnOnce(SocketAddr, SocketAddr),
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut server = Embedded::bind(ServerConfig::new(ws, secret), poll.registry(), SERVER)?;
    let mut listener = TcpListener::bind(control)?;
    poll.registry()
        .register(&mut listener, CONTROL, Interest::READABLE)?;
    ready(server.local_addr()?, listener.local_addr()?);

    let handle = server.handle();
    let publish = publisher(server.handle());
    let mut clients: HashMap<Token, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    while !server.is_finished() {
        // No deadline of our own: sleep until an event or the server's next deadline (with
        // one, pass the earlier of the two).
        match poll.poll(&mut events, server.timeout()) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in events.iter() {
            match event.token() {
                token if server.owns(token) => server.handle_event(event),
                CONTROL => accept(&listener, &poll, &mut clients)?,
                token => {
                    let Some((stream, buffer)) = clients.get_mut(&token) else {
                        continue;
                    };
                    if !read_lines(stream, buffer, |line| command(line, &handle, &publish)) {
                        clients.remove(&token); // closed (dropping it deregisters it)
                    }
                }
            }
        }
        server.turn(); // once per wake-up: timers, deadlines, batched writes
    }
    Ok(())
}

/// `Handle` calls block until the loop has carried them out, so the loop's own thread must
/// not make them (except `shutdown`): publishing is handed to a thread of its own.
fn publisher(handle: Handle) -> mpsc::Sender<(String, Box<RawValue>)> {
    let (publish, requests) = mpsc::channel::<(String, Box<RawValue>)>();
    std::thread::spawn(move || {
        for (topic, data) in requests {
            match handle.publish(&topic, data, None) {
                Ok(Ok(published)) => println!("{topic}: {} delivered", published.delivered),
                Ok(Err(refused)) => println!("{topic}: {refused}"),
                Err(_stopped) => return,
            }
        }
    });
    publish
}

/// What one control line does; the answer is written back.
fn command(line: &str, handle: &Handle, publish: &mpsc::Sender<(String, Box<RawValue>)>) -> String {
    match line.trim().split_once(' ') {
        _ if line.trim() == "shutdown" => match handle.shutdown() {
            Ok(()) => "draining\n".into(),
            Err(stopped) => format!("{stopped}\n"),
        },
        Some((topic, json)) => match RawValue::from_string(json.trim().to_owned()) {
            Ok(data) => {
                let _ = publish.send((topic.to_owned(), data));
                "queued\n".into()
            }
            Err(e) => format!("not JSON: {e}\n"),
        },
        None => "usage: TOPIC JSON | shutdown\n".into(),
    }
}

/// Accepts every waiting control connection on a free token below the server's.
fn accept(
    listener: &TcpListener,
    poll: &Poll,
    clients: &mut HashMap<Token, (TcpStream, Vec<u8>)>,
) -> io::Result<()> {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(token) = (CONTROL.0 + 1..SERVER.0)
            .map(Token)
            .find(|t| !clients.contains_key(t))
        else {
            continue; // every token of ours is taken: drop it
        };
        poll.registry()
            .register(&mut stream, token, Interest::READABLE)?;
        clients.insert(token, (stream, Vec::new()));
    }
}

/// Reads until the socket would block (mio is edge-triggered), answering each complete line.
/// Returns `false` once the peer closed or failed.
fn read_lines(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    mut answer: impl FnMut(&str) -> String,
) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let reply = answer(&String::from_utf8_lossy(&line));
            // Short answers on a fresh socket: a blocking-style write is good enough here.
            let _ = stream.write_all(reply.as_bytes());
        }
    }
}
