//! The server on its own `Poll`: bind, then `run` on the calling thread until the drain is over.

use std::io;
use std::net::SocketAddr;
use switchboard_adapter_kit::Clock;

use mio::{Events, Poll, Token};
use tracing::info;

use crate::engine::Embedded;
use crate::handle::Handle;
use crate::ServerConfig;

/// Readiness events taken per `poll` call.
const EVENTS: usize = 1024;

/// A bound server, ready to run on its own thread.
#[derive(Debug)]
pub struct Server {
    poll: Poll,
    engine: Embedded,
    /// Read once at bind, so that asking for it cannot fail.
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds the listening socket (with `config.tls`, after reading the certificate and key:
    /// an unusable file fails the bind with a [`TlsError`](crate::TlsError) inside the
    /// `io::Error`); the server accepts connections once this returns (they wait in the
    /// backlog until [`run`](Self::run) is called).
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        Self::bind_with_clock(config, Clock::system())
    }

    /// [`bind`](Self::bind), reading time from `clock` (e.g. a [`Clock::manual`] in a test,
    /// to reach a deadline without sleeping until it).
    pub fn bind_with_clock(config: ServerConfig, clock: Clock) -> io::Result<Server> {
        let poll = Poll::new()?;
        let engine = Embedded::bind_with_clock(config, poll.registry(), Token(0), clock)?;
        let local_addr = engine.local_addr()?;
        let metrics_addr = engine.metrics_addr().transpose()?;
        Ok(Server {
            poll,
            engine,
            local_addr,
            metrics_addr,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` has of its own (`metrics_listen`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's TLS certificate (`None`: plain): [`Tls::reload`](crate::Tls::reload)
    /// reads the files again, for the handshakes that follow (from any thread).
    pub fn tls(&self) -> Option<crate::Tls> {
        self.engine.tls()
    }

    /// A handle for the application: send, publish, query, shut down.
    pub fn handle(&self) -> Handle {
        self.engine.handle()
    }

    /// Serves on the calling thread until a shutdown has drained (everyone gone, or the drain
    /// deadline passed). Fails only if polling itself fails.
    pub fn run(self) -> io::Result<()> {
        let Server {
            mut poll,
            mut engine,
            local_addr,
            metrics_addr,
        } = self;
        info!(addr = %local_addr, "listening");
        if let Some(addr) = metrics_addr {
            info!(%addr, "serving /metrics");
        }
        let mut events = Events::with_capacity(EVENTS);
        loop {
            engine.turn();
            if engine.is_finished() {
                break;
            }
            match poll.poll(&mut events, engine.timeout()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                engine.handle_event(event);
            }
        }
        // Whatever is left past the deadline is dropped without further ado.
        drop(engine);
        info!("stopped");
        Ok(())
    }
}
