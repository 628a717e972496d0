//! `switchboard-core`: a sans-IO WebSocket connection manager.
//!
//! This crate decides everything a WebSocket gateway decides, and does nothing else: it performs
//! no IO, reads no clock, spawns nothing and takes no locks. Same inputs, same outputs.
//!
//! It knows every connection and whom it belongs to (user, device), keeps it alive with pings and
//! evicts zombies, enforces a session policy (a newer connection replaces an older one with close
//! code 4001), tracks presence, and routes messages to a connection, a device, a user, many users,
//! a topic with `*`/`**` wildcards, or everyone. It speaks the wire protocol of PROTOCOL.md:
//! client frames are parsed here and server messages serialized here, once per message however
//! many recipients share it.
//!
//! # The drive contract
//!
//! 1. Feed an input: [`Switchboard::open`], [`Switchboard::handle_frame`],
//!    [`Switchboard::handle_pong`], [`Switchboard::handle_closed`],
//!    [`Switchboard::handle_violation`], [`Switchboard::handle_timeout`],
//!    [`Switchboard::handle_bus`] (cluster mode: what the bus between nodes reports), or an
//!    application command (`send_to_*`, `broadcast`, `publish`, `disconnect_*`, `shutdown`).
//! 2. Execute what the core decided before the next input: [`Switchboard::execute`] calls the
//!    adapter's [`Transport`] once per [`Action`], in order, and judges the backlog each send
//!    reports (over `max_outbound_bytes`: close 4009, nothing more for that connection). While
//!    it runs, nothing can feed the core an input. [`Switchboard::poll_action`] hands out the
//!    same actions one by one instead; a [`Switchboard::handle_backlog`] report made before
//!    they are all drained takes effect once they are.
//! 3. Sleep until [`Switchboard::poll_timeout`], then call [`Switchboard::handle_timeout`].
//!
//! # Features
//!
//! - `gateway`: the sans-IO HTTP server both binaries share (module `http`: routing and
//!   statuses, the HTTP API, `/metrics`, origins, proxies, `ServerConfig`). Off by default: an
//!   embedder gets the connection manager without an HTTP server.
//! - `bench-internals`: the topic trie and the message encoders, public for the benchmarks.
//!
//! Time is a parameter: [`Now`] carries the monotonic [`Instant`] (timers) and the wall-clock
//! milliseconds (timestamps, token expiry). It must never go backwards.
//!
//! ```
//! use std::time::Duration;
//! use switchboard_core::{auth, Action, Config, Frame, Handshake, Instant, Now, Switchboard};
//!
//! let secret = b"change me";
//! let mut sb = Switchboard::new(Config::default(), auth::Hs256Verifier::new(secret), 7);
//! let now = Now::new(Instant::ZERO, 1_795_428_000_000);
//!
//! // A client connects with a token in its upgrade request.
//! let token = auth::sign_hs256(secret, &auth::Claims {
//!     sub: "alice".into(), exp: 1_795_431_600, device: None, topics: None, info: None,
//! });
//! let handshake = Handshake { token: Some(token), ..Handshake::default() };
//! let conn = sb.open(now, "127.0.0.1".parse().unwrap(), handshake).unwrap();
//!
//! // It subscribes; the application publishes.
//! sb.handle_frame(now, conn, Frame::Text(r#"{"type":"subscribe","topic":"chat.*"}"#));
//! let data = serde_json::value::RawValue::from_string("\"hi\"".into()).unwrap();
//! assert_eq!(sb.publish(now, "chat.lobby", &data, None).map(|p| p.delivered), Ok(1));
//!
//! // Execute what the core decided: here, print the frames.
//! while let Some(action) = sb.poll_action() {
//!     match action {
//!         Action::Send { conn, payload } => println!("{conn} <- {}", String::from_utf8_lossy(&payload)),
//!         other => println!("{other:?}"),
//!     }
//! }
//! // The next deadline: the first ping, 30 s from now.
//! assert_eq!(sb.poll_timeout(), Some(Instant::ZERO + Duration::from_secs(30)));
//! ```

#![warn(missing_docs)]

mod action;
pub mod auth;
mod claims;
pub mod cluster;
mod commands;
mod config;
mod delivery;
mod error;
mod execute;
mod handlers;
mod hashing;
pub mod history;
#[cfg(feature = "gateway")]
pub mod http;
mod limits;
mod liveness;
mod payload;
mod policy;
mod presence;
pub mod protocol;
mod query;
mod registry;
mod switchboard;
pub mod telemetry;
mod time;
mod timers;
pub mod topics;

pub use action::{Action, CloseCode, CloseMode, CLOSE_GRACE};
pub use commands::Commands;
pub use config::Config;
pub use error::{DisconnectError, Gone, OpenError, PublishError, Stopped};
pub use execute::Transport;
pub use history::{HistoryError, Published};
#[cfg(feature = "gateway")]
pub use http::ServerConfig;
pub use payload::Payload;
pub use policy::SessionPolicy;
pub use protocol::{Handshake, HandshakeError};
pub use query::{ConnectionInfo, ConnectionPage, ConnectionSnapshot, Stats, PAGE_BUDGET_PER_ITEM};
pub use registry::{ConnId, InvalidConnId};
pub use switchboard::{Frame, Switchboard, Violation, MAX_USER_ID_BYTES};
pub use time::{Instant, Now};
