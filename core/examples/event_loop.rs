//! `switchboard-core` in a hand-written event loop: std::net sockets, tungstenite for the
//! WebSocket framing, one thread, no async runtime. The shape of a game server's main loop,
//! which runs once per tick anyway: accept, read, let the core decide, write, sleep.
//!
//! ```sh
//! cargo run -p switchboard-core --example event_loop      # prints a token and a websocat line
//! ```
//!
//! The drive contract: after every input (`open`, a frame, a pong, a close, a timeout) execute
//! what the core decided, before the next input. Where a production transport does more, a
//! comment says so.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::{
    auth, CloseCode, CloseMode, Config, ConnId, Frame, Handshake, Now, Payload, Switchboard,
    Transport, Violation, CLOSE_GRACE,
};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::{frame::CloseFrame, WebSocketConfig};
use tungstenite::{http::StatusCode, Error, Message, WebSocket};

/// The longest the loop sleeps: one tick. (std has no readiness API; with epoll or mio the
/// loop would block until a socket is ready or `poll_timeout()`, whichever comes first.)
const TICK: Duration = Duration::from_millis(10);

fn main() -> io::Result<()> {
    let listener = TcpListener::bind(
        std::env::args()
            .nth(1)
            .as_deref()
            .unwrap_or("127.0.0.1:9001"),
    )?;
    let addr = listener.local_addr()?;
    println!("listening on ws://{addr}/ws");
    println!(
        "try: websocat 'ws://{addr}/ws?token={}'",
        token(SECRET, "alice")
    );
    run(listener, SECRET)
}

/// The HS256 secret tokens are signed with (the reference server's `--jwt-secret change-me`).
pub(crate) const SECRET: &[u8] = b"change-me";

/// A token for `user`, valid for an hour (your backend mints these).
pub(crate) fn token(secret: &[u8], user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = auth::Claims {
        sub: user.into(),
        exp: now.as_secs() + 3600,
        device: None,
        topics: None,
        info: None,
    };
    auth::sign_hs256(secret, &claims)
}

/// Serves WebSockets on `listener` at `/ws`, forever.
pub(crate) fn run(listener: TcpListener, secret: &[u8]) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    // The core reads no clock: the loop reads it and hands `Now` in with every input.
    let epoch = std::time::Instant::now();
    let now = || Now::from_std(epoch, std::time::Instant::now(), SystemTime::now());
    // A random hash seed (clients choose topic names and user ids, i.e. the hash keys).
    let seed = std::collections::hash_map::RandomState::new().hash_one(0u8);
    let mut sb = Switchboard::new(Config::default(), auth::Hs256Verifier::new(secret), seed);
    let mut sockets = Sockets::default();
    loop {
        // 1. New connections: the upgrade request becomes `open`.
        while let Ok((stream, _)) = listener.accept() {
            accept(&mut sb, &mut sockets, stream, now());
        }
        // 2. Frames in: each one is an input, executed before the next.
        let conns: Vec<ConnId> = sockets.open.keys().copied().collect();
        for conn in conns {
            read(&mut sb, &mut sockets, conn, now);
        }
        // 3. Timers: pings, zombies, auth timeouts, expired tokens.
        let t = now();
        if sb.poll_timeout().is_some_and(|at| at <= t.instant) {
            sb.handle_timeout(t);
            sb.execute(t, &mut sockets);
        }
        // 4. Writes out: everything queued during this tick, in one flush per socket.
        sockets.flush();
        // 5. Sleep until the core's next deadline, at most one tick.
        let t = now().instant;
        let due = sb
            .poll_timeout()
            .map_or(TICK, |at| at.saturating_duration_since(t));
        std::thread::sleep(due.min(TICK));
    }
}

/// Upgrades one accepted socket; the core decides whether it may open.
fn accept(sb: &mut Switchboard, sockets: &mut Sockets, stream: TcpStream, now: Now) {
    let Ok(peer) = stream.peer_addr() else { return };
    // For brevity the upgrade request is read blocking (1 s at most). A production loop keeps
    // the socket non-blocking and resumes `HandshakeError::Interrupted` on the next tick.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    // The codec enforces the core's limits: a larger message is a violation (1009), and a
    // write buffer over `max_outbound_bytes` a slow consumer (4009, see `send`).
    let limits = WebSocketConfig::default()
        .max_message_size(Some(sb.config().max_message_bytes))
        .max_write_buffer_size(sb.config().max_outbound_bytes);
    let mut opened = None;
    #[allow(clippy::result_large_err)] // the signature of tungstenite's callback
    let callback = |request: &Request, response: Response| {
        // `/ws?token=…&device=…` and `Authorization: Bearer …`, read by the core's parser.
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()));
        let refused = match Handshake::from_request(target, headers) {
            Ok(handshake) => match sb.open(now, peer.ip(), handshake) {
                Ok(conn) => {
                    opened = Some(conn);
                    return Ok(response);
                }
                Err(e) => (e.http_status(), e.to_string()),
            },
            Err(e) => (e.http_status(), e.to_string()),
        };
        let mut answer = ErrorResponse::new(Some(refused.1));
        *answer.status_mut() = StatusCode::from_u16(refused.0).unwrap_or(StatusCode::BAD_REQUEST);
        Err(answer)
    };
    let upgrade = tungstenite::accept_hdr_with_config(stream, callback, Some(limits));
    match (upgrade.ok(), opened) {
        (Some(ws), Some(conn)) => {
            let _ = ws.get_ref().set_nonblocking(true);
            sockets.open.insert(conn, ws);
        }
        // Opened, but the 101 could not be written: the transport is gone already.
        (None, Some(conn)) => sb.handle_closed(now, conn),
        _ => return,
    }
    sb.execute(now, sockets); // `auth_success` when the token was in the request
}

/// Reads one connection until the socket has nothing more, feeding each message to the core.
fn read(sb: &mut Switchboard, sockets: &mut Sockets, conn: ConnId, now: impl Fn() -> Now) {
    while let Some(ws) = sockets.open.get_mut(&conn) {
        let t = now();
        match ws.read() {
            Ok(Message::Text(text)) => sb.handle_frame(t, conn, Frame::Text(&text)),
            Ok(Message::Binary(data)) => sb.handle_frame(t, conn, Frame::Binary(&data)),
            Ok(Message::Pong(_)) => sb.handle_pong(t, conn),
            // A ping (tungstenite queued the pong) or the peer's close (the next read ends it).
            Ok(_) => continue,
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return,
            Err(Error::Capacity(_)) => sb.handle_violation(t, conn, Violation::MessageTooBig),
            Err(Error::Utf8) => sb.handle_violation(t, conn, Violation::InvalidUtf8),
            Err(_) => {
                sockets.open.remove(&conn);
                sb.handle_closed(t, conn);
            }
        }
        sb.execute(t, sockets);
    }
}

/// The sockets, by connection: the core's actions are executed against them.
#[derive(Default)]
struct Sockets {
    open: HashMap<ConnId, WebSocket<TcpStream>>,
    /// Closed by the core (it forgot them): the close frame is out, the peer's awaited.
    closing: Vec<(WebSocket<TcpStream>, std::time::Instant)>,
}

impl Transport for Sockets {
    fn send(&mut self, conn: ConnId, payload: Payload) -> Option<usize> {
        let ws = self.open.get_mut(&conn)?;
        match ws.write(Message::text(payload.as_str())) {
            // tungstenite buffers what the socket did not take, up to `max_write_buffer_size`:
            // a full buffer is a backlog over the limit, and the core closes it with 4009.
            Err(Error::WriteBufferFull(_)) => Some(usize::MAX),
            _ => Some(0),
        }
    }

    fn ping(&mut self, conn: ConnId) {
        if let Some(ws) = self.open.get_mut(&conn) {
            let _ = ws.write(Message::Ping(Default::default()));
        }
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, reason: Cow<'static, str>, _: CloseMode) {
        // `CloseMode::Discard` asks to drop the unwritten frames first; tungstenite cannot, so
        // this example flushes them in both modes.
        if let Some(mut ws) = self.open.remove(&conn) {
            let frame = CloseFrame {
                code: code.0.into(),
                reason: reason.as_ref().into(),
            };
            let _ = ws.close(Some(frame));
            self.closing
                .push((ws, std::time::Instant::now() + CLOSE_GRACE));
        }
    }

    fn evict(&mut self, conn: ConnId) {
        self.open.remove(&conn); // dropped: no close handshake with a zombie
    }

    fn stop(&mut self) {
        self.open.clear();
        self.closing.clear();
    }
}

impl Sockets {
    /// Writes what was queued; lets closing sockets finish their handshake, or the grace run out.
    fn flush(&mut self) {
        for ws in self.open.values_mut() {
            let _ = ws.flush(); // an error here shows up as a failed read on the next tick
        }
        let now = std::time::Instant::now();
        self.closing.retain_mut(|(ws, deadline)| loop {
            let _ = ws.flush(); // the frames left and the close frame
            match ws.read() {
                Ok(_) => continue, // read and discard until the peer's close
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break now < *deadline,
                Err(_) => break false, // closed: drop it
            }
        });
    }
}
