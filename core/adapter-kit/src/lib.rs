//! `switchboard-adapter-kit`: what every adapter of `switchboard-core` shares, written once.
//!
//! - [`Clock`]: the only place an adapter reads time, and a clock a test can move forward
//!   ([`Clock::manual`]) instead of sleeping.
//! - [`websocket_config`]: the tungstenite codec settings (the core's message limit, small idle
//!   buffers).
//! - [`text_message`]: a [`Payload`] as a tungstenite text frame, without a second UTF-8 pass.
//! - [`random_seed`]: the randomness the core takes as an input (its hash seed).
//! - [`handshakes`]: how an upgrade request ended, counted by the core and logged.
//! - [`metrics`]: `/metrics`, the core's counts and the adapter's gauges rendered for
//!   Prometheus, with the standard `process_*` figures.
//! - [`tls`]: the certificate and key from their PEM files, the rustls settings, and the
//!   reload that swaps the certificate (SIGHUP).

#![warn(missing_docs)]

mod clock;
pub mod handshakes;
mod listen;
pub mod metrics;
pub mod tls;

pub use clock::{Clock, ClockHand};
pub use listen::ListenError;

use switchboard_core::Payload;
use tungstenite::protocol::frame::Utf8Bytes;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;

/// The WebSocket codec settings: the core's message limit, small idle buffers.
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    // The read buffer is allocated up front for every connection: small, because most client
    // messages are; a large frame gets room for its declared length when its header arrives.
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// A random number from the operating system's randomness: the core's hash seed unless the
/// configuration fixes one (clients choose the map keys, so the seed must be unknown to them).
pub fn random_seed() -> u64 {
    std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8)
}

/// A payload as a text frame, sharing its bytes.
pub fn text_message(payload: Payload) -> Message {
    // SAFETY: a `Payload` is UTF-8 by construction: the core's encoders write it into a
    // `String`, and `Payload::parse` takes only a `&str` that is valid JSON; its bytes are
    // never mutated. Checking again would cost a pass per recipient.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(payload.into_bytes()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_becomes_the_same_text() {
        let payload = Payload::parse(r#"{"type":"pong","é":1}"#).unwrap();
        let Message::Text(text) = text_message(payload.clone()) else {
            panic!("not a text frame");
        };
        assert_eq!(text.as_str(), payload.as_str());
    }
}
