//! `switchboard-mio`: a thin mio + tungstenite adapter for `switchboard-core`, for applications
//! that run their own mio event loop.
//!
//! It accepts sockets, reads request heads, upgrades WebSockets, moves frames between
//! non-blocking sockets and the core, executes the core's actions and owns the clock. Every
//! decision (routing and HTTP statuses, the protocol, session policy, liveness, limits, the
//! HTTP API) is the core's. It behaves like `switchboard-tokio`, answer for answer.
//!
//! One event loop owns the core (no lock, no driver thread): each readiness event is fed to the
//! core and the actions that come out are executed before the next. Outbound frames wait in a
//! per-connection queue, bounded in bytes by the core (which closes a slow consumer with 4009);
//! writes are batched per wake-up, and a partial write resumes when the socket is writable. The
//! loop sleeps until the next event or deadline (the core's timers, handshake and close
//! deadlines), never on a fixed tick.
//!
//! The application talks to the loop through a [`Handle`] (Clone + Send + Sync): its calls
//! cross threads through a queue and a [`mio::Waker`], and block until the loop has answered.
//!
//! # On its own thread
//!
//! ```no_run
//! use switchboard_mio::{Server, ServerConfig};
//!
//! let config = ServerConfig::new("127.0.0.1:9001".parse().unwrap(), "secret");
//! let server = Server::bind(config)?;
//! let handle = server.handle();
//! let thread = std::thread::spawn(move || server.run());
//! let data = serde_json::value::RawValue::from_string("{\"hello\":1}".into()).unwrap();
//! let delivered = handle.send_to_user("alice", data)?; // Err(Stopped) once it stopped
//! handle.shutdown()?; // 1001 to everyone, then `run` returns after the drain
//! thread.join().expect("server thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # In your own mio loop
//!
//! ```no_run
//! use mio::{Events, Poll, Token};
//! use switchboard_mio::{Embedded, ServerConfig};
//!
//! let mut poll = Poll::new()?;
//! let config = ServerConfig::new("127.0.0.1:9001".parse().unwrap(), "secret");
//! // The server's tokens are 1000 and above; keep yours below.
//! let mut server = Embedded::bind(config, poll.registry(), Token(1000))?;
//! let mut events = Events::with_capacity(1024);
//! while !server.is_finished() {
//!     poll.poll(&mut events, server.timeout())?; // or the earlier of yours and this
//!     for event in events.iter() {
//!         if server.owns(event.token()) {
//!             server.handle_event(event);
//!         } // else: your own sources
//!     }
//!     server.turn();
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]

mod engine;
mod front;
mod handle;
mod http_front;
mod outbound;
mod queue;
mod server;
mod socket;
mod sockets;
mod stream;
mod sync;
mod ws_io;

pub use engine::Embedded;
pub use handle::Handle;
pub use server::Server;
pub use switchboard_adapter_kit::tls::{Tls, TlsError};
pub use switchboard_adapter_kit::{Clock, ClockHand};
pub use switchboard_core::http::TlsFiles;
pub use switchboard_core::ConnectionSnapshot;
pub use switchboard_core::ServerConfig;
pub use switchboard_core::{Commands, Stopped};

/// The README's examples (the core's and this crate's), compiled as doctests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
