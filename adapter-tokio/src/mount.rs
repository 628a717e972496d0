//! The axum mount (feature `axum`): the WebSocket endpoint and the HTTP API in an application's
//! own axum `Router`, on its own port, beside its own routes.
//!
//! hyper reads the request head; from there on it is the front door's code path: the head, as
//! the core's [`RequestHead`], is bounded like one read from a socket
//! ([`HeadStatus::of_parsed`]), routed by the core ([`decide`]), and an upgrade is opened
//! ([`open`]) and served ([`connection::serve`]) as on a socket of the server's own.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{any, MethodRouter};
use axum::Router;
use futures_util::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use switchboard_adapter_kit::{Clock, ListenError};
use switchboard_core::http::{
    switching_protocols_headers, HeadStatus, HttpResponse, RequestHead, API_PREFIX,
};
use switchboard_core::Handshake;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use crate::connection;
use crate::driver::{Control, Driver};
use crate::front::{ask, decide, not_upgraded, open, refused, Next};
use crate::handle::Handle;
use crate::server::{assemble, serve_metrics};
use crate::stream::Stream;
use crate::sync::Arc;
use crate::{Context, ServerConfig};

/// Switchboard mounted in an application's axum `Router`: the WebSocket endpoint `/ws`, the
/// HTTP API `/api/*`, `/healthz`, `/metrics`, `/client.js`, `/admin` (and `/demo` with
/// `config.demo`), served on the application's port by the application's `axum::serve`, with
/// the handshake rules of [`Server`](crate::Server): the same origin policy, trusted proxies,
/// per-IP limit, connection cap, 16 KiB / 100-line head limit (431) and statuses, decided by
/// the same code.
///
/// Built from a [`ServerConfig`] without binding: its `listen` is not used (the application
/// binds), and `tls` must be `None` (TLS is the application's server's: `new` refuses it).
/// `metrics_listen`, if set, is bound by `new` and served by [`run`](Self::run), as the server
/// does. Then:
///
/// - [`router`](Self::router): the routes to [`merge`](Router::merge) into the application's
///   (their paths must not be the application's own: axum refuses overlapping routes);
/// - [`fallback`](Self::fallback), optionally: answers every other request as the server would
///   (a JSON 404), for an application that has no fallback of its own;
/// - [`handle`](Self::handle): send, publish, query, shut down, as with `Server`;
/// - [`run`](Self::run): the driver that owns the core; spawn it, and it returns when a
///   [`shutdown`](Handle::shutdown) has drained.
///
/// **Peer addresses**: serve the application with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the per-IP limit and the trusted
/// proxies need the peer's address. Without it the gateway's routes answer a 500 JSON error.
///
/// **What belongs to the application's HTTP server** in a mount: how long a client may take
/// to send its request head (`handshake_timeout` is not applied to it; hyper's
/// `header_read_timeout` is, where the server sets a timer, which `axum::serve` does not) and
/// malformed requests hyper refuses itself (its own 400s, and its 431 over its own header
/// limit). `handshake_timeout` still bounds the reading of an `/api` request's body (408).
/// Every HTTP answer of the gateway carries `Connection: close`, as the server's do.
///
/// **Graceful drain**: [`Handle::shutdown`] drains like the server's: close 1001 to everyone,
/// new upgrades 503, `/healthz` 503; `run` returns when everyone left or the drain deadline
/// passed (then every request to the gateway's routes is a 503). Ending the application's
/// `axum::serve` is the application's: e.g. `with_graceful_shutdown` on the end of `run`.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use axum::routing::get;
/// use axum::Router;
/// use switchboard_tokio::{Gateway, ServerConfig};
///
/// # async fn serve() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// // `listen` is unused in a mount: the application binds its own port.
/// let mut config = ServerConfig::new(listener.local_addr()?, "secret");
/// config.api_key = Some("dev-key".into());
/// let gateway = Gateway::new(config)?;
/// let handle = gateway.handle(); // send, publish, query, shut down
/// let app = Router::new()
///     .route("/", get(|| async { "the application's own page" }))
///     .merge(gateway.router());
/// tokio::spawn(gateway.run());
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<SocketAddr>(),
/// )
/// .await
/// # }
/// ```
pub struct Gateway {
    driver: Driver,
    context: Arc<Context>,
    handle: Handle,
    /// `metrics_listen`: bound by `new`, served by `run`.
    metrics_listener: Option<std::net::TcpListener>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listener", &self.context.main_listener)
            .field("metrics_listener", &self.metrics_listener)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway serving `config` (its `listen` unused; `tls` refused with
    /// [`io::ErrorKind::InvalidInput`]; `metrics_listen` bound here, a busy port failing with
    /// the [`ListenError`] inside the `io::Error`; in cluster mode the Redis bridge starts
    /// here, as in [`Server::bind`](crate::Server::bind)).
    pub fn new(config: ServerConfig) -> io::Result<Gateway> {
        Self::with_clock(config, Clock::system())
    }

    /// [`new`](Self::new), reading time from `clock` (e.g. a [`Clock::manual`] in a test, to
    /// reach a deadline without sleeping until it).
    pub fn with_clock(config: ServerConfig, clock: Clock) -> io::Result<Gateway> {
        if config.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a mounted gateway does not terminate TLS: the application's HTTP server does \
                 (leave ServerConfig::tls unset)",
            ));
        }
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr)
                    .map_err(ListenError::wrap("--metrics-listen", addr))?;
                listener.set_nonblocking(true)?;
                Some(listener)
            }
            None => None,
        };
        let (driver, context, handle) = assemble(config, clock, None)?;
        Ok(Gateway {
            driver,
            context,
            handle,
            metrics_listener,
        })
    }

    /// The gateway's routes, for [`Router::merge`] (or [`Router::nest`], which serves them
    /// under a prefix: `/prefix/ws`): every path the server serves on its main port
    /// ([`Listener::paths`](switchboard_core::http::Listener::paths), and every path under
    /// `/api/`), any method, each answered as the server answers it. Generic over the
    /// application's state, which the gateway does not use.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let listener = self.context.main_listener;
        // `/api/` itself and every path below it (a wildcard needs at least one character).
        let api = format!("{API_PREFIX}{{*rest}}");
        let api = [API_PREFIX, api.as_str()].into_iter();
        let paths = listener.paths().iter().copied();
        let paths = paths.chain(api.filter(|_| listener.serves_api()));
        let router = paths.fold(Router::new(), |router, path| {
            router.route(path, any(serve_request))
        });
        router.with_state(self.context.clone())
    }

    /// A handler for [`Router::fallback_service`]: answers any request as the server would, so
    /// a path neither the application nor the gateway serves gets the server's JSON 404 (and
    /// `Connection: close`) instead of axum's empty one. Optional; an application with a
    /// fallback of its own keeps it.
    pub fn fallback(&self) -> MethodRouter {
        any(serve_request).with_state(self.context.clone())
    }

    /// A handle for the application: send, publish, query, shut down.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The address `/metrics` has of its own (`metrics_listen`), once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let listener = self.metrics_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound TCP listener has a local address"),
        )
    }

    /// Runs the driver that owns the core (and serves `metrics_listen`), until a shutdown has
    /// drained: everyone gone, or the drain deadline passed. Spawn it before serving the
    /// router: until it runs, the gateway's requests wait for it.
    pub fn run(self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let Gateway {
            driver,
            context,
            handle,
            metrics_listener,
        } = self;
        async move {
            if let Some(metrics) = metrics_listener {
                let metrics = tokio::net::TcpListener::from_std(metrics)?;
                info!(addr = %metrics.local_addr()?, "serving /metrics");
                tokio::spawn(serve_metrics(metrics, context));
            }
            info!("mounted gateway running");
            driver.run().await;
            drop(handle);
            info!("stopped");
            Ok(())
        }
    }
}

/// Serves one request to a gateway route: the front door's steps, from a head hyper parsed.
async fn serve_request(State(ctx): State<Arc<Context>>, mut request: Request) -> Response {
    let accepted = Instant::now();
    let Some(&ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        warn!("the mounted gateway has no peer address: serve the Router with into_make_service_with_connect_info::<SocketAddr>()");
        return answer(HttpResponse::error(
            500,
            "server misconfigured: the gateway needs the peer address \
             (into_make_service_with_connect_info::<SocketAddr>)",
        ));
    };
    let next = with_request_head(&request, |head| match HeadStatus::of_parsed(head) {
        HeadStatus::Complete(_) => decide(ctx.main_listener, head, peer, &ctx),
        refused => Next::RefuseUpgrade(
            refused
                .rejection()
                .unwrap_or_else(HttpResponse::malformed_request),
        ),
    });
    match next {
        Next::Answer(response) => answer(response),
        Next::RefuseUpgrade(response) => {
            refused(&ctx, peer.ip(), accepted, &response).await;
            answer(response)
        }
        Next::Health => answer(ask(&ctx, Control::Health).await),
        Next::Metrics => answer(ask(&ctx, Control::Metrics).await),
        Next::Api {
            method,
            target,
            authorization,
            length,
        } => {
            let within = ctx.handshake_timeout;
            let body = match read_body(request.into_body(), length, within).await {
                Ok(body) => body,
                Err(response) => return answer(response),
            };
            let response = ask(&ctx, |reply| Control::Api {
                method,
                target,
                authorization,
                body,
                reply,
            })
            .await;
            answer(response)
        }
        Next::Upgrade { handshake, key, ip } => {
            if request.extensions().get::<OnUpgrade>().is_none() {
                warn!("the mounted gateway got an upgrade its HTTP server cannot hand over (serve with axum::serve, or hyper's serve_connection_with_upgrades)");
                return answer(HttpResponse::error(
                    500,
                    "server misconfigured: its HTTP server does not support upgrades",
                ));
            }
            let on_upgrade = hyper::upgrade::on(&mut request);
            upgrade(ctx, on_upgrade, ip, accepted, handshake, &key).await
        }
    }
}

/// The request's method, target and headers as the core's [`RequestHead`], lent to `f`.
fn with_request_head<R>(request: &Request, f: impl FnOnce(&RequestHead<'_>) -> R) -> R {
    let uri = request.uri();
    // Origin form as it came (`/ws?token=…`); the absolute form whole, as the core reads it.
    let target = match (uri.scheme(), uri.path_and_query()) {
        (None, Some(origin_form)) => Cow::Borrowed(origin_form.as_str()),
        _ => Cow::Owned(uri.to_string()),
    };
    let headers: Vec<(&str, &[u8])> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    f(&RequestHead {
        method: request.method().as_str(),
        target: &target,
        headers: &headers,
    })
}

/// Opens the connection in the core and answers 101; hyper hands the connection over once the
/// 101 is written, and it is served like one of the server's own.
async fn upgrade(
    ctx: Arc<Context>,
    on_upgrade: OnUpgrade,
    ip: std::net::IpAddr,
    accepted: Instant,
    handshake: Handshake,
    key: &str,
) -> Response {
    // In a task of its own: hyper drops this handler's future when the client goes away, and a
    // connection opened in the core must then still be closed (and its place freed).
    let (decided, decision) = oneshot::channel();
    tokio::spawn(async move {
        let (id, mailbox) = match open(&ctx, ip, accepted, handshake).await {
            Ok(opened) => opened,
            Err(refusal) => {
                refused(&ctx, ip, accepted, &refusal).await;
                let _ = decided.send(Err(refusal));
                return;
            }
        };
        if decided.send(Ok(())).is_err() {
            return not_upgraded(&ctx, id).await;
        }
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(%ip, error = %e, "the 101 did not reach the client");
                return not_upgraded(&ctx, id).await;
            }
        };
        let stream = Stream::Mounted(TokioIo::new(upgraded));
        let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ctx.websocket)).await;
        connection::serve(ws, id, mailbox, ctx.events.clone(), ctx.cap.clone()).await;
    });
    match decision.await {
        Ok(Ok(())) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            for (name, value) in switching_protocols_headers(key) {
                insert(&mut response, name, &value);
            }
            response
        }
        Ok(Err(refusal)) => answer(refusal),
        Err(_) => answer(HttpResponse::shutting_down()),
    }
}

/// Reads an API request's body of `length` bytes (its `Content-Length`, checked by the core),
/// within `within`.
async fn read_body(body: Body, length: usize, within: Duration) -> Result<Vec<u8>, HttpResponse> {
    let read = async {
        let mut chunks = body.into_data_stream();
        let mut body = Vec::with_capacity(length);
        while body.len() < length {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    let wanted = chunk.len().min(length - body.len());
                    body.extend_from_slice(&chunk[..wanted]);
                }
                Some(Err(_)) | None => return Err(HttpResponse::body_ended_early()),
            }
        }
        Ok(body)
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| Err(HttpResponse::body_timeout()))
}

/// The core's answer as axum's: its status, `Content-Type`, `Content-Length`,
/// `Connection: close` (hyper then closes the connection, as the server does after every
/// answer) and its headers. For a HEAD request hyper leaves the body out.
fn answer(response: HttpResponse) -> Response {
    let HttpResponse {
        status,
        content_type,
        headers,
        body,
        head_only: _,
    } = response;
    let length = body.len();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let fixed = out.headers_mut();
    fixed.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    fixed.insert(CONTENT_LENGTH, HeaderValue::from(length));
    fixed.insert(CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in headers {
        insert(&mut out, name, &value);
    }
    out
}

/// Appends a header of the core's. CR and LF become spaces, as `HttpResponse::to_bytes`
/// writes them; a name or value axum cannot carry is left out.
fn insert(response: &mut Response, name: &str, value: &str) {
    let clean: Vec<u8> = value
        .bytes()
        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(&clean),
    ) {
        (Ok(name), Ok(value)) => {
            response.headers_mut().append(name, value);
        }
        _ => debug!(header = name, "header left out of a mounted answer"),
    }
}
