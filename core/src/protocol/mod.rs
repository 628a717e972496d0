//! The Switchboard wire protocol (v1): parsing client frames, encoding server frames, and
//! reading the WebSocket upgrade request. See `PROTOCOL.md` for the contract.
//!
//! Everything here is pure: no IO and no clock (callers pass the time in milliseconds).

pub mod client;
pub mod handshake;
pub(crate) mod percent;
mod since;
// The encoders are the core's own: what reaches a client is only ever an `Action::Send`.
#[cfg(not(feature = "bench-internals"))]
pub(crate) mod server;
/// The server message encoders (exposed for the benchmarks only).
#[cfg(feature = "bench-internals")]
pub mod server;
mod timestamp;

pub use client::{
    parse_client_message, ClientMessage, MessageType, Metadata, ParseError, ParseErrorKind, Request,
};
pub use handshake::{validate_device_id, Handshake, HandshakeError, MAX_DEVICE_NAME_BYTES};
pub use since::{Since, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
pub use timestamp::write_timestamp;

/// Application error codes carried in `error` / `auth_error` messages.
pub mod code {
    /// Malformed frame, unknown type, missing or mistyped field, invalid id.
    pub const BAD_REQUEST: u16 = 400;
    /// Not authenticated, or authentication failed.
    pub const UNAUTHORIZED: u16 = 401;
    /// Authenticated but not allowed (e.g. topic outside the token's `topics`).
    pub const FORBIDDEN: u16 = 403;
    /// The thing referred to does not exist (e.g. unsubscribing a pattern not held).
    pub const NOT_FOUND: u16 = 404;
    /// The position asked for belongs to another epoch of the stream, or is ahead of it.
    pub const GONE: u16 = 410;
    /// The request conflicts with the connection's state (e.g. a second `auth`).
    pub const CONFLICT: u16 = 409;
    /// A limit was reached (e.g. `max_subscriptions`).
    pub const TOO_MANY: u16 = 429;
}
