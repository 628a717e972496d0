//! HTTP answers as the core decides them; adapters only write the bytes and close.

use bytes::Bytes;
use serde::Serialize;

/// `Content-Type` of every JSON answer.
pub(crate) const JSON: &str = "application/json";

/// An HTTP response to write and then close the connection (every HTTP answer closes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 200 or 404.
    pub status: u16,
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// Extra headers after `Content-Type`, `Content-Length` and `Connection: close`.
    pub headers: Vec<(&'static str, String)>,
    /// The body, written as is.
    pub body: Bytes,
    /// The answer to a HEAD request: `to_bytes` writes the head (with the body's
    /// `Content-Length`) and leaves the body out.
    pub head_only: bool,
}

/// The error envelope of SPEC.md: `{"error":{"code":…,"message":…}}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    message: &'a str,
}

impl HttpResponse {
    /// `{"error":{"code":<status>,"message":"…"}}` with `application/json`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            &ErrorBody {
                error: ErrorDetail {
                    code: status,
                    message,
                },
            },
        )
    }

    /// A JSON body (serialized once).
    ///
    /// A value whose `Serialize` fails (only possible for maps with non-string keys or custom
    /// impls) gives a 500 error answer rather than a panic.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => Self::with_body(status, JSON, bytes),
            Err(_) => Self::with_body(
                500,
                JSON,
                br#"{"error":{"code":500,"message":"internal error: response not serializable"}}"#
                    .to_vec(),
            ),
        }
    }

    /// A response with this body and content type and no extra headers.
    pub fn with_body(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        HttpResponse {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            head_only: false,
        }
    }

    /// The `message` of an [`error`](Self::error) answer (what a log line gives as the reason),
    /// or `None` for any other body.
    pub fn error_message(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Detail,
        }
        #[derive(serde::Deserialize)]
        struct Detail {
            message: String,
        }
        if self.content_type != JSON {
            return None;
        }
        let envelope: Envelope = serde_json::from_slice(&self.body).ok()?;
        Some(envelope.error.message)
    }

    /// The same response as the answer to a HEAD request: the same head, no body.
    #[must_use]
    pub fn without_body(mut self) -> Self {
        self.head_only = true;
        self
    }

    /// The same response with one more header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The whole response, status line to body: `HTTP/1.1 <status> <reason>\r\nContent-Type:
    /// …\r\nContent-Length: …\r\nConnection: close\r\n<headers>\r\n<body>`.
    ///
    /// CR and LF inside header names or values are written as spaces, so no value can split
    /// the head (response splitting).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        push_header(&mut out, "Content-Type", self.content_type);
        push_header(&mut out, "Content-Length", &self.body.len().to_string());
        push_header(&mut out, "Connection", "close");
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean = |b: u8| if b == b'\r' || b == b'\n' { b' ' } else { b };
    out.extend(name.bytes().map(clean));
    out.extend_from_slice(b": ");
    out.extend(value.bytes().map(clean));
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase of the statuses this server sends; any other gets a generic one (the
/// phrase carries no meaning in HTTP/1.1, RFC 9112 §4).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_is_the_envelopes_message_and_none_for_other_bodies() {
        let refusal = HttpResponse::error(429, "too many connections from 10.0.0.1");
        assert_eq!(
            refusal.error_message().as_deref(),
            Some("too many connections from 10.0.0.1")
        );
        assert_eq!(HttpResponse::json(200, &[1, 2]).error_message(), None);
        assert_eq!(
            HttpResponse::with_body(200, "text/plain", "x").error_message(),
            None
        );
    }

    #[test]
    fn error_has_the_spec_envelope_and_json_type() {
        let r = HttpResponse::error(404, "not found");
        assert_eq!(r.status, 404);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            &r.body[..],
            br#"{"error":{"code":404,"message":"not found"}}"#
        );
    }

    #[test]
    fn error_message_is_json_escaped() {
        let r = HttpResponse::error(400, "bad \"quote\"\n");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["message"], "bad \"quote\"\n");
    }

    #[test]
    fn json_serializes_the_body_once() {
        let r = HttpResponse::json(200, &serde_json::json!({"delivered": 3}));
        assert_eq!(&r.body[..], br#"{"delivered":3}"#);
        assert_eq!(r.status, 200);
        assert!(r.headers.is_empty());
    }

    #[test]
    fn json_with_unserializable_value_gives_500_not_a_panic() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let r = HttpResponse::json(200, &map);
        assert_eq!(r.status, 500);
    }

    #[test]
    fn to_bytes_writes_status_line_headers_and_body() {
        let r = HttpResponse::error(405, "no").header("Allow", "GET");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        let body = r#"{"error":{"code":405,"message":"no"}}"#;
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\nAllow: GET\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn to_bytes_neutralizes_crlf_in_header_values() {
        let r = HttpResponse::with_body(200, "text/plain", "x").header("X-A", "a\r\nSet-Cookie: b");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.contains("X-A: a  Set-Cookie: b\r\n"));
        assert_eq!(text.matches("\r\n").count(), 6);
    }

    #[test]
    fn without_body_keeps_the_head_and_its_content_length() {
        let r = HttpResponse::with_body(200, "text/plain", "hello").without_body();
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn unknown_statuses_get_a_generic_reason() {
        let r = HttpResponse::with_body(418, "text/plain", "");
        assert!(r.to_bytes().starts_with(b"HTTP/1.1 418 Client Error\r\n"));
        let r = HttpResponse::with_body(999, "text/plain", "");
        assert!(r.to_bytes().starts_with(b"HTTP/1.1 999 Server Error\r\n"));
    }
}
