//! Finding and reading a request head in the bytes an adapter has read so far, and the length
//! of an API request's body: the same rules for both adapters.

use super::{HttpResponse, RequestHead, MAX_API_BODY_BYTES, MAX_HEADERS, MAX_HEAD_BYTES};

/// What the bytes read so far hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadStatus {
    /// A complete head of this many bytes; what follows is body or WebSocket data.
    Complete(usize),
    /// Not complete yet: read more.
    Partial,
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`]: 431.
    TooLarge,
    /// Not an HTTP/1.x request: 400.
    Malformed,
}

impl HeadStatus {
    /// Checks whether `buf` starts with a complete request head, within the limits.
    pub fn of(buf: &[u8]) -> HeadStatus {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => {
                HeadStatus::Complete(len)
            }
            Ok(httparse::Status::Complete(_)) => HeadStatus::TooLarge,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => HeadStatus::TooLarge,
            Ok(httparse::Status::Partial) => HeadStatus::Partial,
            Err(httparse::Error::TooManyHeaders) => HeadStatus::TooLarge,
            Err(_) => HeadStatus::Malformed,
        }
    }

    /// The same limits for a head that an HTTP server parsed already (an adapter mounted in an
    /// application's framework, whose own limits may be looser): [`TooLarge`](Self::TooLarge)
    /// over [`MAX_HEADERS`] header lines or over [`MAX_HEAD_BYTES`] as the head takes on the
    /// wire (`METHOD TARGET HTTP/1.1` and a `name: value` line per header, each with its CRLF,
    /// and the blank line), else [`Complete`](Self::Complete) with that length.
    pub fn of_parsed(head: &RequestHead<'_>) -> HeadStatus {
        if head.headers.len() > MAX_HEADERS {
            return HeadStatus::TooLarge;
        }
        let request_line = head.method.len() + 1 + head.target.len() + " HTTP/1.1\r\n".len();
        let lines: usize = head
            .headers
            .iter()
            .map(|(name, value)| name.len() + ": ".len() + value.len() + "\r\n".len())
            .sum();
        let len = request_line + lines + "\r\n".len();
        if len > MAX_HEAD_BYTES {
            return HeadStatus::TooLarge;
        }
        HeadStatus::Complete(len)
    }

    /// The answer that refuses the request, when the head cannot be served.
    pub fn rejection(self) -> Option<HttpResponse> {
        match self {
            HeadStatus::TooLarge => Some(HttpResponse::error(431, "request head too large")),
            HeadStatus::Malformed => Some(HttpResponse::error(400, "malformed HTTP request")),
            HeadStatus::Complete(_) | HeadStatus::Partial => None,
        }
    }
}

/// Parses the complete request head at the start of `buf` and lends it to `f`; `None` when
/// there is none (see [`HeadStatus::of`]).
pub fn with_head<R>(buf: &[u8], f: impl FnOnce(&RequestHead<'_>) -> R) -> Option<R> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(buf), Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES) {
        return None;
    }
    let mut pairs: [(&str, &[u8]); MAX_HEADERS] = [("", &[]); MAX_HEADERS];
    let count = request.headers.len();
    for (pair, header) in pairs.iter_mut().zip(request.headers.iter()) {
        *pair = (header.name, header.value);
    }
    let head = RequestHead {
        method: request.method.unwrap_or_default(),
        target: request.path.unwrap_or_default(),
        headers: &pairs[..count],
    };
    Some(f(&head))
}

/// An API request's `Content-Length` (absent: 0), or the answer refusing it (400, or 413 over
/// [`MAX_API_BODY_BYTES`]).
pub fn body_length(head: &RequestHead<'_>) -> Result<usize, HttpResponse> {
    let length = match head.header("content-length") {
        None => 0,
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| HttpResponse::error(400, "invalid Content-Length"))?,
    };
    if length > MAX_API_BODY_BYTES {
        return Err(HttpResponse::error(413, "request body too large"));
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_found_and_bounded() {
        assert_eq!(
            HeadStatus::of(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            HeadStatus::Partial
        );
        assert_eq!(
            HeadStatus::of(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"),
            HeadStatus::Complete(27)
        );
        assert_eq!(
            HeadStatus::of(b"\x01\x02 nonsense\r\n\r\n"),
            HeadStatus::Malformed
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        let request = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(HeadStatus::of(request.as_bytes()), HeadStatus::TooLarge);
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(HeadStatus::of(long.as_bytes()), HeadStatus::TooLarge);
    }

    #[test]
    fn exactly_max_headers_lines_are_accepted() {
        let lines: String = (0..MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\n{lines}\r\n");
        assert_eq!(
            HeadStatus::of(request.as_bytes()),
            HeadStatus::Complete(request.len())
        );
    }

    #[test]
    fn a_parsed_head_is_measured_as_on_the_wire_and_bounded_alike() {
        let wire = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nX-Pad: bb\r\n\r\n";
        let parsed = with_head(wire, HeadStatus::of_parsed).unwrap();
        assert_eq!(parsed, HeadStatus::of(wire));
        assert_eq!(parsed, HeadStatus::Complete(wire.len()));

        let head_of = |headers: &[(&str, &[u8])]| {
            HeadStatus::of_parsed(&RequestHead {
                method: "GET",
                target: "/ws",
                headers,
            })
        };
        let fixed = "GET /ws HTTP/1.1\r\n".len() + "x: \r\n".len() + "\r\n".len();
        let fits = vec![b'a'; MAX_HEAD_BYTES - fixed];
        assert_eq!(
            head_of(&[("x", &fits)]),
            HeadStatus::Complete(MAX_HEAD_BYTES)
        );
        let over = vec![b'a'; MAX_HEAD_BYTES - fixed + 1];
        assert_eq!(head_of(&[("x", &over)]), HeadStatus::TooLarge);
        let lines = vec![("h", &b"v"[..]); MAX_HEADERS];
        assert!(matches!(head_of(&lines), HeadStatus::Complete(_)));
        let lines = vec![("h", &b"v"[..]); MAX_HEADERS + 1];
        assert_eq!(head_of(&lines), HeadStatus::TooLarge);
    }

    #[test]
    fn rejections_are_431_and_400() {
        assert_eq!(
            HeadStatus::TooLarge.rejection().map(|r| r.status),
            Some(431)
        );
        assert_eq!(
            HeadStatus::Malformed.rejection().map(|r| r.status),
            Some(400)
        );
        assert_eq!(HeadStatus::Partial.rejection(), None);
    }

    #[test]
    fn a_complete_head_is_lent_with_its_method_target_and_headers() {
        let buf = b"POST /api/send?x=1 HTTP/1.1\r\nContent-Length: 12\r\nX-A: b\r\n\r\nbody";
        let seen = with_head(buf, |head| {
            (
                head.method.to_owned(),
                head.target.to_owned(),
                head.header("x-a").map(<[u8]>::to_vec),
                body_length(head),
            )
        });
        let (method, target, xa, length) = seen.expect("a complete head");
        assert_eq!(
            (method.as_str(), target.as_str()),
            ("POST", "/api/send?x=1")
        );
        assert_eq!(xa.as_deref(), Some(&b"b"[..]));
        assert_eq!(length, Ok(12));
        assert!(with_head(b"GET / HTTP/1.1\r\n", |_| ()).is_none());
    }

    #[test]
    fn body_length_refuses_garbage_and_oversize() {
        let check = |value: &str| {
            let buf = format!("POST /api/x HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
            with_head(buf.as_bytes(), |head| {
                body_length(head).map_err(|r| r.status)
            })
            .unwrap()
        };
        assert_eq!(check("nope"), Err(400));
        assert_eq!(
            check(&MAX_API_BODY_BYTES.to_string()),
            Ok(MAX_API_BODY_BYTES)
        );
        assert_eq!(check(&(MAX_API_BODY_BYTES + 1).to_string()), Err(413));
    }
}
