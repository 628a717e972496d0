//! A throwaway `redis-server` for tests: this crate's and the end-to-end suite's.
//!
//! Not for production: it panics when something goes wrong, which is what a test wants.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a start is tried (another process may take the free port meanwhile).
const START_ATTEMPTS: usize = 5;

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
///
/// `redis-server` must be on `PATH`.
#[derive(Debug)]
pub struct RedisServer {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its process id (0 while killed).
    pid: u32,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers (up to 5 s).
    ///
    /// Panics if `redis-server` is missing or does not come up.
    pub fn start() -> RedisServer {
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            match spawn_ready(port) {
                Ok(child) => {
                    return RedisServer {
                        port,
                        pid: child.id(),
                        child: Some(child),
                    }
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("redis-server did not start: {last_failure}");
    }

    /// The URL of the server: `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its process id (0 while killed).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the server with SIGKILL (no goodbye to its clients) and waits for it to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: what a crash looks like to the clients.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.pid = 0;
    }

    /// Starts the server again on the same port, empty; kills it first if it still runs.
    ///
    /// Panics if it does not come up.
    pub fn restart(&mut self) {
        self.kill();
        let mut last_failure = String::new();
        // The port was ours a moment ago; a retry rides out a slow release.
        for _ in 0..START_ATTEMPTS {
            match spawn_ready(self.port) {
                Ok(child) => {
                    self.pid = child.id();
                    self.child = Some(child);
                    return;
                }
                Err(failure) => {
                    last_failure = failure;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!(
            "redis-server did not restart on port {}: {last_failure}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Spawns `redis-server` on `port` and waits until it answers; the error says what happened.
fn spawn_ready(port: u16) -> Result<Child, String> {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("redis-server not found: apt-get install -y redis-server")
        }
        Err(error) => panic!("cannot run redis-server: {error}"),
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status} (port {port} taken?)"));
        }
        if answers_as(port, child.id()) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "it did not answer on port {port} within {READY_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the Redis on `port` answers and is the process `pid` (not another test's server
/// that took the port meanwhile).
fn answers_as(port: u16, pid: u32) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"INFO server\r\n")?;
        // A bulk string, `$<length>\r\n<text>\r\n`: read until the whole text is in.
        let mut reply = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Ok(false);
            }
            reply.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&reply);
            let Some((header, body)) = text.split_once("\r\n") else {
                continue;
            };
            let Some(length) = header
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
            else {
                // `-LOADING` and the like: not ready yet.
                return Ok(false);
            };
            if body.len() >= length {
                return Ok(body.lines().any(|line| line == format!("process_id:{pid}")));
            }
        }
    };
    probe().unwrap_or(false)
}
