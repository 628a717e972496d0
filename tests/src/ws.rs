//! WebSocket clients: [`Client`] (tokio-tungstenite, read continuously in the background so it
//! answers pings) and [`RawWs`] (hand-written frames over a raw socket, for clients that
//! misbehave: zombies, slow consumers, invalid UTF-8, fragments).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::http::{read_response, upgrade_request, HttpResponse};
use crate::util::{assert_timestamp, token, WAIT};
use crate::TestServer;

/// What a [`Client`] received (control frames are handled by tungstenite and not shown).
#[derive(Clone, Debug)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A close frame: code and reason, if it had any.
    Close(Option<(u16, String)>),
    /// The connection ended (after a close handshake, or without one): why.
    Ended(String),
}

static PROBE: AtomicU64 = AtomicU64::new(0);

/// A well-behaved WebSocket client: tokio-tungstenite, its stream read by a background task
/// (which also answers the server's pings), messages queued for the test to take.
pub struct Client {
    /// A name for failure messages.
    pub label: String,
    sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    rx: mpsc::UnboundedReceiver<Incoming>,
    reader: tokio::task::JoinHandle<()>,
    socket: std::net::TcpStream,
    ended: bool,
}

impl Client {
    /// Opens `ws://addr{target}` with extra request headers; the HTTP status on refusal.
    pub async fn try_connect(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
        label: &str,
    ) -> Result<Client, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let std_socket = tcp.into_std().map_err(|e| e.to_string())?;
        let dup = std_socket.try_clone().map_err(|e| e.to_string())?;
        let tcp = TcpStream::from_std(std_socket).map_err(|e| e.to_string())?;
        let mut request = format!("ws://{addr}{target}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let (ws, _response) =
            match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, tcp)).await {
                Ok(Ok(ok)) => ok,
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                    return Err(format!("HTTP {}", response.status().as_u16()))
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no handshake answer within {WAIT:?}")),
            };
        let (sink, mut stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let incoming = match item {
                    Ok(Message::Text(t)) => Incoming::Text(t.as_str().to_owned()),
                    Ok(Message::Binary(b)) => Incoming::Binary(b.to_vec()),
                    Ok(Message::Close(frame)) => Incoming::Close(
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())),
                    ),
                    Ok(_) => continue, // ping / pong: answered by tungstenite
                    Err(e) => {
                        let _ = tx.send(Incoming::Ended(e.to_string()));
                        return;
                    }
                };
                if tx.send(incoming).is_err() {
                    return;
                }
            }
            let _ = tx.send(Incoming::Ended("stream ended".into()));
        });
        Ok(Client {
            label: label.to_string(),
            sink,
            rx,
            reader,
            socket: dup,
            ended: false,
        })
    }

    /// Opens `/ws?{query}` on `server`; panics if the upgrade fails.
    pub async fn connect(server: &TestServer, query: &str, label: &str) -> Client {
        let target = if query.is_empty() {
            "/ws".to_string()
        } else {
            format!("/ws?{query}")
        };
        Client::try_connect(server.addr, &target, &[], label)
            .await
            .unwrap_or_else(|e| panic!("{label}: upgrade to {target} failed: {e}"))
    }

    /// An unauthenticated connection.
    pub async fn anon(server: &TestServer, label: &str) -> Client {
        Client::connect(server, "", label).await
    }

    /// A connection authenticated at the handshake as `user` (`?token=`); returns it with its
    /// first frame, `auth_success`.
    pub async fn authed(server: &TestServer, user: &str) -> (Client, Value) {
        Client::authed_device(server, user, None).await
    }

    /// Like [`Client::authed`], with `?device=`.
    pub async fn authed_device(
        server: &TestServer,
        user: &str,
        device: Option<&str>,
    ) -> (Client, Value) {
        Client::authed_at(server.addr, &server.jwt_secret, user, device, "").await
    }

    /// A connection to the server on `addr` (tokens signed with `secret`) authenticated at
    /// the handshake as `user`, with `?device=` if given; returns it with its first frame,
    /// `auth_success`. `label_suffix` is appended to its name in failure messages (e.g. the
    /// node it is on).
    pub async fn authed_at(
        addr: SocketAddr,
        secret: &[u8],
        user: &str,
        device: Option<&str>,
        label_suffix: &str,
    ) -> (Client, Value) {
        let mut query = format!("token={}", token(secret, user));
        if let Some(device) = device {
            query.push_str(&format!("&device={device}"));
        }
        let label = match device {
            Some(d) => format!("{user}/{d}{label_suffix}"),
            None => format!("{user}{label_suffix}"),
        };
        let target = format!("/ws?{query}");
        let mut client = Client::try_connect(addr, &target, &[], &label)
            .await
            .unwrap_or_else(|e| panic!("{label}: upgrade to {addr} failed: {e}"));
        let first = client.recv_type("auth_success").await;
        assert_eq!(first["userId"], json!(user), "auth_success userId: {first}");
        (client, first)
    }

    /// The next message or event, within `within`; panics on timeout.
    pub async fn next_within(&mut self, within: Duration) -> Incoming {
        match tokio::time::timeout(within, self.rx.recv()).await {
            Ok(Some(incoming)) => {
                if matches!(incoming, Incoming::Ended(_)) {
                    self.ended = true;
                }
                incoming
            }
            Ok(None) => {
                self.ended = true;
                Incoming::Ended("reader gone".into())
            }
            Err(_) => panic!("{}: nothing received within {within:?}", self.label),
        }
    }

    /// The next message or event, if one comes within `within`.
    pub async fn try_next_within(&mut self, within: Duration) -> Option<Incoming> {
        match tokio::time::timeout(within, self.rx.recv()).await {
            Ok(Some(incoming)) => {
                if matches!(incoming, Incoming::Ended(_)) {
                    self.ended = true;
                }
                Some(incoming)
            }
            Ok(None) => {
                self.ended = true;
                Some(Incoming::Ended("reader gone".into()))
            }
            Err(_) => None,
        }
    }

    /// The next message or event, within [`WAIT`].
    pub async fn next(&mut self) -> Incoming {
        self.next_within(WAIT).await
    }

    /// The next message, which must be a text message; its text.
    pub async fn recv_text(&mut self) -> String {
        match self.next().await {
            Incoming::Text(t) => t,
            other => panic!("{}: expected a text message, got {other:?}", self.label),
        }
    }

    /// The next message, which must be a JSON object with a protocol `timestamp`.
    pub async fn recv_json(&mut self) -> Value {
        let text = self.recv_text().await;
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: server sent non-JSON ({e}): {text}", self.label));
        assert!(value.is_object(), "{}: not an object: {text}", self.label);
        assert_timestamp(&value);
        value
    }

    /// The next message, which must be of type `ty`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let value = self.recv_json().await;
        assert_eq!(
            value["type"].as_str(),
            Some(ty),
            "{}: expected a `{ty}` message, got {value}",
            self.label
        );
        value
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: &str) {
        let label = self.label.clone();
        crate::util::within(
            "send",
            WAIT,
            self.sink.send(Message::Text(text.to_string().into())),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: send failed: {e}"));
    }

    /// Sends one text message; an error (e.g. the server closed) is returned, not a panic.
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        match tokio::time::timeout(WAIT, self.sink.send(Message::Text(text.to_string().into())))
            .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("send blocked for {WAIT:?}")),
        }
    }

    /// Sends one JSON message.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends one binary message.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        let label = self.label.clone();
        crate::util::within(
            "send",
            WAIT,
            self.sink.send(Message::Binary(bytes.to_vec().into())),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: send failed: {e}"));
    }

    /// Sends `value` and returns the next message.
    pub async fn request(&mut self, value: &Value) -> Value {
        self.send_json(value).await;
        self.recv_json().await
    }

    /// Sends `value` and expects `error` with `code`, echoing `value`'s `id` if it had one.
    pub async fn expect_error(&mut self, value: &Value, code: u16) -> Value {
        let reply = self.request(value).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_u64()),
            (Some("error"), Some(u64::from(code))),
            "{}: expected error {code} for {value}, got {reply}",
            self.label
        );
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: error without a message: {reply}",
            self.label
        );
        if let Some(id) = value.get("id").filter(|id| id.is_string()) {
            assert_eq!(&reply["id"], id, "{}: error must echo the id", self.label);
        }
        reply
    }

    /// Checks that nothing is pending: a `ping` with a fresh id gets its `pong` as the very
    /// next message (the server answers in order, so anything queued before shows up first).
    pub async fn expect_nothing_pending(&mut self) {
        let id = format!("probe-{}", PROBE.fetch_add(1, Ordering::Relaxed));
        self.send_json(&json!({"type": "ping", "id": id})).await;
        let reply = self.recv_json().await;
        assert_eq!(
            (reply["type"].as_str(), reply["id"].as_str()),
            (Some("pong"), Some(id.as_str())),
            "{}: expected nothing but the pong of the probe, got {reply}",
            self.label
        );
    }

    /// The next event must be a close frame with `code`; returns its reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        self.expect_close_skipping(code, &[]).await
    }

    /// Like [`Client::expect_close`], skipping JSON messages whose `type` is in `skip`.
    pub async fn expect_close_skipping(&mut self, code: u16, skip: &[&str]) -> String {
        loop {
            match self.next().await {
                Incoming::Close(Some((got, reason))) => {
                    assert_eq!(
                        got, code,
                        "{}: expected close {code}, got close {got} ({reason:?})",
                        self.label
                    );
                    return reason;
                }
                Incoming::Close(None) => panic!(
                    "{}: expected close {code}, got a close frame without a code",
                    self.label
                ),
                Incoming::Text(t) => {
                    let ty = serde_json::from_str::<Value>(&t)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned));
                    if ty.as_deref().is_some_and(|ty| skip.contains(&ty)) {
                        continue;
                    }
                    panic!(
                        "{}: expected close {code}, got a message first: {t}",
                        self.label
                    );
                }
                Incoming::Binary(b) => panic!(
                    "{}: expected close {code}, got {} binary bytes",
                    self.label,
                    b.len()
                ),
                Incoming::Ended(why) => panic!(
                    "{}: expected close {code}, the connection ended without one: {why}",
                    self.label
                ),
            }
        }
    }

    /// Closes from the client side (1000) and waits for the end of the connection.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.sink.send(Message::Close(None))).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.ended && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Incoming::Ended(_))) | Ok(None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
        // The reader task may not run again before the runtime ends: end the TCP connection
        // now, so the server sees it go at once.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// One frame read by [`RawWs`].
#[derive(Clone, Debug)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong, 0 continuation).
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// For a close frame: its code, if any.
    pub fn close_code(&self) -> Option<u16> {
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Why [`RawWs::read_frame`] returned no frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawEnd {
    /// The server closed the TCP connection (FIN).
    Eof,
    /// A transport error (e.g. reset).
    Error(String),
    /// Nothing arrived in time.
    Timeout,
}

/// A WebSocket client with hand-written frames over a raw socket, after a manual upgrade.
/// It does nothing on its own: it answers pings only when told to, and reads only when asked.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Whether [`RawWs::recv_json`] answers the pings it skips.
    pub answer_pings: bool,
}

impl RawWs {
    /// Sends `request` on a new connection (with `SO_RCVBUF` set if asked); `Ok(RawWs)` on
    /// `101`, else the HTTP response.
    pub async fn upgrade_raw(
        addr: SocketAddr,
        request: &[u8],
        recv_buffer: Option<u32>,
    ) -> Result<RawWs, HttpResponse> {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let mut stream = crate::util::within("connect", WAIT, socket.connect(addr))
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.write_all(request).await.expect("write upgrade");
        let mut rest = Vec::new();
        let response = crate::util::within(
            "upgrade response",
            WAIT,
            read_response(&mut stream, &mut rest),
        )
        .await
        .unwrap_or_else(|e| panic!("no upgrade response: {e}"));
        if response.status != 101 {
            return Err(response);
        }
        Ok(RawWs {
            stream,
            buf: rest,
            answer_pings: true,
        })
    }

    /// Upgrades `target` with extra headers; panics unless the answer is 101.
    pub async fn connect(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> RawWs {
        match RawWs::upgrade_raw(addr, &upgrade_request(target, headers), recv_buffer).await {
            Ok(ws) => ws,
            Err(r) => panic!(
                "upgrade of {target} refused: HTTP {} {:?}",
                r.status,
                r.text()
            ),
        }
    }

    /// Writes one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = masked_frame(fin, opcode, payload);
        self.send_bytes(&frame).await;
    }

    /// Writes these bytes with one `write_all`, as a client that pipelines its frames does.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may close while we write (e.g. 1009): a failed write is not our failure.
        let _ = tokio::time::timeout(WAIT, self.stream.write_all(bytes)).await;
    }

    /// Skips data frames (and answers pings) until a close frame, which must carry `code`;
    /// returns its reason.
    pub async fn expect_close_skipping_data(&mut self, code: u16) -> String {
        loop {
            let f = self.recv_data().await;
            if f.opcode == 8 {
                assert_eq!(f.close_code(), Some(code), "raw client: close frame {f:?}");
                return String::from_utf8_lossy(&f.payload[2..]).into_owned();
            }
        }
    }

    /// Ends the connection abruptly, as a lost network does: no close frame, and with
    /// `SO_LINGER` 0 the close sends a TCP reset instead of a FIN (whatever the server sent
    /// and this client did not read is discarded).
    pub fn reset(self) {
        use std::os::fd::AsRawFd;

        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt(2) on this stream's own open socket, with a `linger` value and
        // its exact size.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::from_ref(&linger).cast::<libc::c_void>(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
        drop(self);
    }

    /// Writes one unfragmented text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(true, 1, text.as_bytes()).await;
    }

    /// Writes one JSON text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    fn parse_frame(&mut self) -> Option<RawFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let fin = b[0] & 0x80 != 0;
        let opcode = b[0] & 0x0F;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        let mask = if masked {
            if b.len() < at + 4 {
                return None;
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        if b.len() < at + len {
            return None;
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(m) = mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= m[i % 4];
            }
        }
        self.buf.drain(..at + len);
        Some(RawFrame {
            fin,
            opcode,
            payload,
        })
    }

    /// The next frame within `within`, or why there is none.
    pub async fn read_frame(&mut self, within: Duration) -> Result<RawFrame, RawEnd> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(frame) = self.parse_frame() {
                return Ok(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(RawEnd::Timeout),
                Ok(Ok(0)) => return Err(RawEnd::Eof),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(RawEnd::Error(e.to_string())),
            }
        }
    }

    /// The next data frame (pings answered if `answer_pings`, pongs skipped) within [`WAIT`].
    pub async fn recv_data(&mut self) -> RawFrame {
        loop {
            match self.read_frame(WAIT).await {
                Ok(f) if f.opcode == 9 => {
                    if self.answer_pings {
                        let payload = f.payload.clone();
                        self.send_frame(true, 10, &payload).await;
                    }
                }
                Ok(f) if f.opcode == 10 => {}
                Ok(f) => return f,
                Err(end) => panic!("raw client: expected a frame, got {end:?}"),
            }
        }
    }

    /// The next data frame, which must be a JSON text message.
    pub async fn recv_json(&mut self) -> Value {
        let f = self.recv_data().await;
        assert_eq!(
            f.opcode,
            1,
            "raw client: expected a text frame, got opcode {} (close code {:?})",
            f.opcode,
            f.close_code()
        );
        let value: Value = serde_json::from_slice(&f.payload).unwrap_or_else(|e| {
            panic!(
                "raw client: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&f.payload)
            )
        });
        assert_timestamp(&value);
        value
    }

    /// The next data frame must be a close frame with `code`; returns the reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        let f = self.recv_data().await;
        assert_eq!(
            (f.opcode, f.close_code()),
            (8, Some(code)),
            "raw client: expected close {code}, got opcode {} payload {:?}",
            f.opcode,
            String::from_utf8_lossy(&f.payload)
        );
        String::from_utf8_lossy(&f.payload[2..]).into_owned()
    }
}

/// One masked client frame, as bytes.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
