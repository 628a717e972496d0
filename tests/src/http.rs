//! A raw HTTP/1.1 client over `tokio::net::TcpStream`: writes a request exactly as given and
//! reads the status line, headers and body, so statuses before any upgrade can be checked.

use std::io;
use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::WAIT;
use crate::TestServer;

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Panics unless the status is `status`.
    pub fn assert_status(&self, status: u16, what: &str) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{what}: expected HTTP {status}, got {} with body {:?}",
            self.status,
            self.text()
        );
        self
    }

    /// Panics unless the body is `{"error":{"code":<status>,"message":"…"}}`.
    pub fn assert_api_error(&self, status: u16, what: &str) {
        self.assert_status(status, what);
        let body = self.json();
        assert_eq!(
            body["error"]["code"].as_u64(),
            Some(u64::from(status)),
            "{what}: error body should carry the status as error.code: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: error body should carry a message: {body}"
        );
    }
}

/// Reads bytes into `buf` until it holds a complete response head; returns the parsed status,
/// headers and the head's length. `Ok(None)` if the peer closed first.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(u16, Vec<(String, String)>, usize)>> {
    loop {
        {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let headers = response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    return Ok(Some((status, headers, len)));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "unparsable HTTP response ({e}): {:?}",
                            String::from_utf8_lossy(buf)
                        ),
                    ))
                }
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A reset right after the response (the server closed with our bytes unread) still
            // leaves what arrived before it readable; anything else is an error.
            Err(e) => return Err(e),
        }
    }
}

/// Reads one response from `stream`. For `101` the bytes after the head are left in `rest`.
pub async fn read_response(stream: &mut TcpStream, rest: &mut Vec<u8>) -> io::Result<HttpResponse> {
    let mut buf = std::mem::take(rest);
    let Some((status, headers, head_len)) = read_head(stream, &mut buf).await? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "connection closed before a complete response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        ));
    };
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let mut body = buf.split_off(head_len);
    if status == 101 {
        *rest = body;
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = response
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut chunk = [0u8; 8192];
    if chunked {
        loop {
            if let Some(decoded) = dechunk(&body) {
                response.body = decoded;
                return Ok(response);
            }
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        response.body = body;
        return Ok(response);
    }
    match length {
        Some(len) => {
            while body.len() < len {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            body.truncate(len);
        }
        None if status == 204 || status == 304 => {}
        None => loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        },
    }
    response.body = body;
    Ok(response)
}

/// Decodes a complete chunked body; `None` if incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sends `request` (bytes exactly as given) on a new connection and reads the response.
/// Errors (refused connection, reset before a response) are returned, not panics.
pub async fn try_exchange(addr: SocketAddr, request: &[u8]) -> io::Result<HttpResponse> {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        let mut rest = Vec::new();
        read_response(&mut stream, &mut rest).await
    };
    match tokio::time::timeout(WAIT, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no HTTP response within {WAIT:?}"),
        )),
    }
}

/// Like [`try_exchange`], but panics on any transport error.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    try_exchange(addr, request).await.unwrap_or_else(|e| {
        panic!(
            "HTTP exchange with {addr} failed: {e}; request head: {:?}",
            String::from_utf8_lossy(&request[..request.len().min(200)])
        )
    })
}

/// Sends `request` and reads the response, then checks that the server closes the TCP
/// connection (as it must after every HTTP error answer). Returns the response.
pub async fn exchange_then_closed(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = crate::util::within("connect", WAIT, TcpStream::connect(addr))
        .await
        .expect("connect");
    // The server may answer and close before it has read all of a large request: a write
    // error is fine as long as the response arrives.
    let _ = stream.write_all(request).await;
    let mut rest = Vec::new();
    let response =
        crate::util::within("HTTP response", WAIT, read_response(&mut stream, &mut rest))
            .await
            .unwrap_or_else(|e| panic!("no HTTP response: {e}"));
    let closed = tokio::time::timeout(WAIT, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the TCP connection open after answering HTTP {}",
        response.status
    );
    response
}

/// A GET request with `Connection: close` and the given extra header lines.
pub fn get_request(path: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A POST request with a body, `Connection: close` and the given extra header lines.
pub fn post_request(path: &str, extra_headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A WebSocket upgrade request for `target` with the given extra header lines.
pub fn upgrade_request(target: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra_headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

impl TestServer {
    /// `Authorization: apikey <key>` for this server's key.
    fn api_auth(&self) -> String {
        format!(
            "apikey {}",
            self.api_key
                .as_deref()
                .expect("this server was started without an API key")
        )
    }

    /// GET `path` with the API key.
    pub async fn api_get(&self, path: &str) -> HttpResponse {
        let auth = self.api_auth();
        exchange(self.addr, &get_request(path, &[("Authorization", &auth)])).await
    }

    /// POST `body` (JSON) to `path` with the API key.
    pub async fn api_post(&self, path: &str, body: &Value) -> HttpResponse {
        self.api_post_raw(path, body.to_string().as_bytes()).await
    }

    /// POST raw `body` bytes to `path` with the API key.
    pub async fn api_post_raw(&self, path: &str, body: &[u8]) -> HttpResponse {
        let auth = self.api_auth();
        exchange(
            self.addr,
            &post_request(path, &[("Authorization", &auth)], body),
        )
        .await
    }

    /// GET `path` without credentials.
    pub async fn get(&self, path: &str) -> HttpResponse {
        exchange(self.addr, &get_request(path, &[])).await
    }

    /// `GET /api/presence/{user}` (the user id percent-encoded), expecting 200; the JSON.
    pub async fn presence(&self, user: &str) -> Value {
        let path = format!("/api/presence/{}", crate::util::query_encode(user));
        let r = self.api_get(&path).await;
        r.assert_status(200, "GET /api/presence");
        r.json()
    }

    /// `GET /api/stats`, expecting 200; the JSON.
    pub async fn stats(&self) -> Value {
        let r = self.api_get("/api/stats").await;
        r.assert_status(200, "GET /api/stats");
        r.json()
    }
}
