//! The HTTP front door of every accepted socket: read the request head, let the core's router
//! decide, then upgrade to a WebSocket or answer over HTTP and close.
//!
//! The decision ([`decide`]), the opening of a connection ([`open`]), the counting of refusals
//! ([`refused`]) and the questions to the driver ([`ask`]) are shared with the axum mount
//! (`mount.rs`), which gets its request heads from hyper instead of reading them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use switchboard_core::http::{
    body_length, route_on, switching_protocols, with_head, HeadStatus, HttpResponse, Listener,
    RequestHead, Route,
};
use switchboard_core::{ConnId, Handshake, CLOSE_GRACE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use switchboard_adapter_kit::handshakes;

use crate::connection::{self, Mailbox};
use crate::driver::{ConnEvent, Control};
use crate::stream::Stream;
use crate::sync::Arc;
use crate::Context;

/// What to do with a request, decided from its head and owned, so that no parsing state is
/// held across the awaits that follow.
pub(crate) enum Next {
    Answer(HttpResponse),
    /// A refused upgrade request (or a request whose head could not be read): counted.
    RefuseUpgrade(HttpResponse),
    Health,
    Metrics,
    Api {
        method: String,
        target: String,
        authorization: Option<Vec<u8>>,
        length: usize,
    },
    Upgrade {
        handshake: Handshake,
        key: String,
        ip: IpAddr,
    },
}

/// Serves one accepted socket from its first byte to its last.
pub(crate) async fn serve_socket(
    socket: TcpStream,
    peer: SocketAddr,
    listener: Listener,
    ctx: Arc<Context>,
) {
    let accepted = Instant::now();
    // The TLS handshake and the request head share the handshake timeout.
    let deadline = accepted + ctx.handshake_timeout;
    let tls = ctx.tls.as_ref().filter(|_| listener.uses_tls());
    let Some(mut stream) = accept_tls(socket, peer, deadline, tls, &ctx.events).await else {
        return;
    };
    let mut buf = Vec::new();
    let head_len = match tokio::time::timeout_at(deadline, read_head(&mut stream, &mut buf)).await {
        Ok(Ok(len)) => len,
        Ok(Err(Some(refusal))) => {
            return refuse(&mut stream, peer.ip(), accepted, refusal, &ctx).await
        }
        Ok(Err(None)) => return,
        Err(_) => {
            let refusal = HttpResponse::head_timeout();
            return refuse(&mut stream, peer.ip(), accepted, refusal, &ctx).await;
        }
    };
    let next = with_head(&buf[..head_len], |head| decide(listener, head, peer, &ctx))
        .unwrap_or_else(|| Next::RefuseUpgrade(HttpResponse::malformed_request()));
    match next {
        Next::Answer(response) => respond(&mut stream, response).await,
        Next::RefuseUpgrade(response) => {
            refuse(&mut stream, peer.ip(), accepted, response, &ctx).await
        }
        Next::Health => {
            let response = ask(&ctx, Control::Health).await;
            respond(&mut stream, response).await
        }
        Next::Metrics => {
            let response = ask(&ctx, Control::Metrics).await;
            respond(&mut stream, response).await
        }
        Next::Api {
            method,
            target,
            authorization,
            length,
        } => {
            let within = ctx.handshake_timeout;
            let body = match read_body(&mut stream, length, &buf[head_len..], within).await {
                Ok(body) => body,
                Err(response) => return respond(&mut stream, response).await,
            };
            let response = ask(&ctx, |reply| Control::Api {
                method,
                target,
                authorization,
                body,
                reply,
            })
            .await;
            respond(&mut stream, response).await
        }
        Next::Upgrade { handshake, key, ip } => {
            let leftover = buf[head_len..].to_vec();
            drop(buf);
            upgrade(stream, ip, accepted, handshake, &key, leftover, ctx).await
        }
    }
}

/// The socket as the stream the front door reads: plain, or TLS once its handshake completed
/// by `deadline`. A failed TLS handshake (e.g. a plain-HTTP client) closes the socket.
async fn accept_tls(
    socket: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    events: &tokio::sync::mpsc::Sender<ConnEvent>,
) -> Option<Stream> {
    let Some(acceptor) = tls else {
        return Some(Stream::Plain(socket));
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(socket)).await {
        Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => {
            debug!(ip = %peer.ip(), error = %e, "TLS handshake failed");
            let _ = events.send(ConnEvent::TlsFailed).await;
            None
        }
        Err(_) => {
            debug!(ip = %peer.ip(), "TLS handshake timed out");
            let _ = events.send(ConnEvent::TlsFailed).await;
            None
        }
    }
}

/// The core's routing of a request head, and what the adapter needs of it afterwards.
pub(crate) fn decide(
    listener: Listener,
    head: &RequestHead<'_>,
    peer: SocketAddr,
    ctx: &Context,
) -> Next {
    match route_on(listener, head, &ctx.allowed_origins) {
        Route::RefuseUpgrade(response) => Next::RefuseUpgrade(response),
        Route::Reject(response) => Next::Answer(response),
        Route::Asset(response) => Next::Answer(response),
        Route::Health => Next::Health,
        Route::Metrics => Next::Metrics,
        Route::Api => match body_length(head) {
            Ok(length) => Next::Api {
                method: head.method.to_owned(),
                target: head.target.to_owned(),
                authorization: head.header("authorization").map(<[u8]>::to_vec),
                length,
            },
            Err(response) => Next::Answer(response),
        },
        Route::Upgrade { handshake, key } => {
            let forwarded = head.headers_named("x-forwarded-for");
            let ip = ctx.trusted_proxies.client_ip(peer.ip(), forwarded);
            Next::Upgrade { handshake, key, ip }
        }
    }
}

async fn upgrade(
    mut stream: Stream,
    ip: IpAddr,
    accepted: Instant,
    handshake: Handshake,
    key: &str,
    leftover: Vec<u8>,
    ctx: Arc<Context>,
) {
    let (id, mailbox) = match open(&ctx, ip, accepted, handshake).await {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&mut stream, ip, accepted, refusal, &ctx).await,
    };
    if stream.write_all(&switching_protocols(key)).await.is_err() {
        return not_upgraded(&ctx, id).await;
    }
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(ctx.websocket))
            .await;
    // A task of its own for the connection's life: this one, with the request head's buffers
    // in its state, ends here, so an idle connection holds only what it needs.
    tokio::spawn(connection::serve(
        ws,
        id,
        mailbox,
        ctx.events.clone(),
        ctx.cap.clone(),
    ));
}

/// Opens a WebSocket connection in the core for an upgrade the router admitted: a place under
/// the connection cap, then `Switchboard::open` in the driver. On success the caller answers
/// 101 and serves the connection (or, when the 101 cannot be delivered, calls
/// [`not_upgraded`]); a refusal is what to answer, not yet counted (see [`refused`]).
pub(crate) async fn open(
    ctx: &Context,
    ip: IpAddr,
    accepted: Instant,
    handshake: Handshake,
) -> Result<(ConnId, Arc<Mailbox>), HttpResponse> {
    // Count this socket among the WebSocket connections before anything else can.
    if !ctx.cap.try_acquire() {
        return Err(HttpResponse::at_connection_limit());
    }
    let (reply, answer) = oneshot::channel();
    let open = ConnEvent::Open {
        ip,
        handshake,
        accepted,
        reply,
    };
    let opened = match ctx.events.send(open).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    match opened {
        Some(Ok(opened)) => Ok(opened),
        Some(Err(refused)) => {
            ctx.cap.release();
            Err(HttpResponse::open_refused(&refused))
        }
        None => {
            ctx.cap.release();
            Err(HttpResponse::shutting_down())
        }
    }
}

/// An opened connection whose 101 never reached the client: its place and its core state go.
pub(crate) async fn not_upgraded(ctx: &Context, id: ConnId) {
    ctx.cap.release();
    let _ = ctx.events.send(ConnEvent::Closed(id, None)).await;
}

/// Answers a refused upgrade request, counted by the core and logged with its reason.
async fn refuse(
    stream: &mut Stream,
    ip: IpAddr,
    accepted: Instant,
    response: HttpResponse,
    ctx: &Context,
) {
    refused(ctx, ip, accepted, &response).await;
    respond(stream, response).await
}

/// Logs a refused upgrade request with its reason and tells the core, for its counts of
/// handshake results.
pub(crate) async fn refused(ctx: &Context, ip: IpAddr, accepted: Instant, response: &HttpResponse) {
    handshakes::log_refused(ip, response);
    let status = response.status;
    let took = accepted.elapsed();
    let _ = ctx.events.send(ConnEvent::Handshake { status, took }).await;
}

/// Reads until the end of the request head; returns its length (bytes after it stay in `buf`),
/// or the answer refusing it (`None`: the peer went away).
async fn read_head(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<usize, Option<HttpResponse>> {
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        match HeadStatus::of(buf) {
            HeadStatus::Complete(len) => return Ok(len),
            HeadStatus::Partial => {}
            refused => return Err(refused.rejection()),
        }
    }
}

/// Reads an API request's body of `length` bytes, some of which may have come with the head.
async fn read_body(
    stream: &mut Stream,
    length: usize,
    already: &[u8],
    within: Duration,
) -> Result<Vec<u8>, HttpResponse> {
    let mut body = already[..already.len().min(length)].to_vec();
    let missing = length - body.len();
    if missing > 0 {
        body.resize(length, 0);
        let start = length - missing;
        match tokio::time::timeout(within, stream.read_exact(&mut body[start..])).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(HttpResponse::body_ended_early()),
            Err(_) => return Err(HttpResponse::body_timeout()),
        }
    }
    Ok(body)
}

/// Sends a control message that carries a reply channel, and waits for the answer.
pub(crate) async fn ask(
    ctx: &Context,
    make: impl FnOnce(oneshot::Sender<HttpResponse>) -> Control,
) -> HttpResponse {
    let (reply, answer) = oneshot::channel();
    if ctx.control.send(make(reply)).is_err() {
        return HttpResponse::shutting_down();
    }
    answer
        .await
        .unwrap_or_else(|_| HttpResponse::shutting_down())
}

/// Time an HTTP answer has to reach a client, and then to let the connection wind down.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes an HTTP answer and closes the connection. A client that does not read cannot hold
/// the socket: the write is bounded in time.
async fn respond(stream: &mut Stream, response: HttpResponse) {
    let written =
        tokio::time::timeout(ANSWER_TIMEOUT, stream.write_all(&response.to_bytes())).await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = stream.shutdown().await;
    // Read what the client still sends, briefly: closing a socket with unread input makes the
    // kernel reset the connection, which can destroy the answer before the client reads it
    // (e.g. a 431 while the client is still sending its oversized head).
    let mut discard = [0u8; 1024];
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(n) = stream.read(&mut discard).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
