//! The answers an adapter gives on occasions of its own (its connection cap, its handshake
//! deadline, a body that stops short, the server stopping) and the `101` that completes an
//! upgrade: decided here, so that every adapter says the same.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::OpenError;
use crate::http::HttpResponse;

/// RFC 6455's GUID, appended to `Sec-WebSocket-Key` to derive `Sec-WebSocket-Accept`.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

impl HttpResponse {
    /// 503: upgrades beyond `max_connections` (open or in their handshake) are refused.
    pub fn at_connection_limit() -> Self {
        Self::error(503, "server at its connection limit")
    }

    /// 408: the request head did not arrive within `handshake_timeout` of the accept.
    pub fn head_timeout() -> Self {
        Self::error(408, "request not completed in time")
    }

    /// 408: an API body did not arrive within `handshake_timeout` of its head.
    pub fn body_timeout() -> Self {
        Self::error(408, "request body not completed in time")
    }

    /// 400: the client closed before its API body was complete.
    pub fn body_ended_early() -> Self {
        Self::error(400, "request body ended early")
    }

    /// 400: a request head that does not parse as HTTP/1.1.
    pub fn malformed_request() -> Self {
        Self::error(400, "malformed HTTP request")
    }

    /// 503: the server stopped before it could answer.
    pub fn shutting_down() -> Self {
        Self::error(503, "server is shutting down")
    }

    /// The refusal of an upgrade that [`Switchboard::open`](crate::Switchboard::open) refused.
    pub fn open_refused(refused: &OpenError) -> Self {
        Self::error(refused.http_status(), &refused.to_string())
    }
}

/// Whether one more WebSocket may be admitted while `held` of `max_connections` are in use;
/// the refusal to send otherwise.
pub fn admit(held: usize, max_connections: usize) -> Result<(), HttpResponse> {
    if held >= max_connections {
        return Err(HttpResponse::at_connection_limit());
    }
    Ok(())
}

/// The `101 Switching Protocols` answer to an upgrade whose `Sec-WebSocket-Key` is `key`
/// ([`Route::Upgrade`](crate::http::Route::Upgrade)): its status line and
/// [`switching_protocols_headers`].
pub fn switching_protocols(key: &str) -> Vec<u8> {
    let mut out = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in switching_protocols_headers(key) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The header lines of the `101` answer to an upgrade whose `Sec-WebSocket-Key` is `key`, in
/// order: `Upgrade: websocket`, `Connection: Upgrade` and the `Sec-WebSocket-Accept` derived
/// from `key`. For an adapter whose HTTP server writes the status line itself (a mount in an
/// application's HTTP framework); [`switching_protocols`] is the whole answer.
pub fn switching_protocols_headers(key: &str) -> [(&'static str, String); 3] {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    [
        ("Upgrade", "websocket".to_owned()),
        ("Connection", "Upgrade".to_owned()),
        ("Sec-WebSocket-Accept", accept),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        // RFC 6455, section 1.3.
        let answer = String::from_utf8(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(
            answer.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{answer:?}"
        );
        assert!(answer.ends_with("\r\n\r\n"));
        assert_eq!(
            answer,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn the_last_place_is_admitted_and_the_next_refused_with_503() {
        assert_eq!(admit(9, 10), Ok(()));
        assert_eq!(admit(10, 10).unwrap_err().status, 503);
    }
}
