//! Routing a parsed request head: which status for which request, decided once for every
//! adapter.

use crate::http::{assets, HttpResponse, OriginPolicy};
use crate::protocol::handshake::path_of;
use crate::Handshake;

/// Longest request line plus headers, in bytes; over it the adapter answers 431 (it enforces
/// this while reading, before a head exists to route).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most header lines in one request; over it the adapter answers 431.
pub const MAX_HEADERS: usize = 100;

/// The HTTP API's paths: every path that starts with this, on a listener that
/// [serves the API](Listener::serves_api).
pub const API_PREFIX: &str = "/api/";

/// Largest `/api/*` body, in bytes; over it the adapter answers 413 without reading it.
pub const MAX_API_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A parsed request line and headers (names case-insensitive; values raw bytes).
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The method, case-sensitive as HTTP defines it (`GET`, not `get`).
    pub method: &'a str,
    /// The request target, e.g. `/ws?token=…` (origin form) or `http://host/ws` (absolute form).
    pub target: &'a str,
    /// Every header line in order: (name, value with surrounding blanks removed by the parser).
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> RequestHead<'a> {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers_named(name).next()
    }

    /// Every header with this name (case-insensitive), in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket upgrade to `/ws` that passed every HTTP-level check. Next the adapter checks
    /// its connection cap (503), calls `Switchboard::open` with this handshake (answering
    /// `OpenError::http_status()` with `HttpResponse::error` on refusal), then answers 101 with
    /// `Sec-WebSocket-Accept` derived from `key`.
    Upgrade {
        /// The application's inputs: token, device, device name, user agent.
        handshake: Handshake,
        /// The `Sec-WebSocket-Key`, blanks trimmed: 24 characters of base64.
        key: String,
    },
    /// `GET /healthz`: answer with [`health`](crate::http::health).
    Health,
    /// `GET /metrics`: answer with the exporter's rendering of [`Stats`](crate::Stats) and
    /// [`Telemetry`](crate::telemetry::Telemetry) (`switchboard-adapter-kit`'s `metrics`).
    Metrics,
    /// `/api/...`: read the body (Content-Length; over MAX_API_BODY_BYTES: 413), then answer
    /// with [`handle_api`](crate::http::handle_api).
    Api,
    /// An upgrade request to `/ws` refused before the core saw it (400, 403, 405, 426, …):
    /// answer this and close, and count it with
    /// [`Switchboard::handshake_answered`](crate::Switchboard::handshake_answered).
    RefuseUpgrade(HttpResponse),
    /// Any other request refused (404, 405 on `/healthz`, …): answer this and close.
    Reject(HttpResponse),
    /// A static file (`GET /client.js`, the browser client; `GET /admin` and `GET /demo`, the
    /// pages), or the refusal of a method other than GET or HEAD on one: answer this and close,
    /// as for `Reject`.
    Asset(HttpResponse),
}

/// Decides per PROTOCOL.md "Endpoint": for `/ws` (query allowed): method other than GET -> 405
/// (header `Allow: GET`); missing/invalid upgrade headers (`Upgrade: websocket` token,
/// `Connection` containing the `upgrade` token, `Sec-WebSocket-Key` present and base64 of 16
/// bytes) -> 400; `Sec-WebSocket-Version` other than 13 -> 426 with header
/// `Sec-WebSocket-Version: 13`; an `Origin` outside the policy -> 403; then
/// `Handshake::from_request` (its errors -> their `http_status()`). `/healthz` and `/metrics`:
/// GET (HEAD may be treated as GET) else 405. Paths under `/api/` -> Api (method checks happen
/// in handle_api). `/client.js`: the browser client ([`CLIENT_JS`](crate::http::CLIENT_JS)),
/// `text/javascript; charset=utf-8` with a `Cache-Control` (GET; HEAD without the body; else
/// 405) -> Asset; `/admin` ([`ADMIN_HTML`](crate::http::ADMIN_HTML)) and, when the listener
/// serves it, `/demo` ([`DEMO_HTML`](crate::http::DEMO_HTML)): `text/html; charset=utf-8`, same
/// methods -> Asset. Anything else -> 404. Error answers use `HttpResponse::error` with a
/// message naming the problem.
///
/// Details: tokens of `Upgrade` and `Connection` are read across all their header lines; two
/// `Sec-WebSocket-Key` lines are a 400; a missing `Sec-WebSocket-Version` is a 426 (it is not
/// 13); with several `Origin` lines each must be allowed. HEAD on `/healthz` and `/metrics` is
/// routed like GET (the adapter may omit the body). Paths compare byte for byte, undecoded.
pub fn route(head: &RequestHead<'_>, origins: &OriginPolicy) -> Route {
    let listener = Listener::Main {
        metrics: true,
        demo: false,
    };
    route_on(listener, head, origins)
}

/// Which of the server's listeners a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listener {
    /// `--listen`: `/ws`, the HTTP API, `/healthz`, `/client.js` and `/admin`; `/metrics` too
    /// unless `metrics` is false (it has a listener of its own), and `/demo` only if `demo` is
    /// true (`--demo`); what is not served is a 404 like any unknown path.
    Main {
        /// Whether `/metrics` is served here.
        metrics: bool,
        /// Whether `/demo` is served here.
        demo: bool,
    },
    /// `--metrics-listen`: `/metrics` and `/healthz` only (what a scraper and a probe need);
    /// every other path is a 404, so the WebSocket and the API are not reachable through it.
    Metrics,
}

impl Listener {
    /// The exact paths served here (compared byte for byte with the target's path, before its
    /// query); besides them, every path under [`API_PREFIX`] when
    /// [`serves_api`](Self::serves_api). Any other path is a 404. For an adapter mounted beside
    /// an application's own routes, which hands the server these paths only.
    pub fn paths(self) -> &'static [&'static str] {
        match self {
            Listener::Main {
                metrics: true,
                demo: true,
            } => &[
                "/ws",
                "/healthz",
                "/metrics",
                "/client.js",
                "/admin",
                "/demo",
            ],
            Listener::Main {
                metrics: true,
                demo: false,
            } => &["/ws", "/healthz", "/metrics", "/client.js", "/admin"],
            Listener::Main {
                metrics: false,
                demo: true,
            } => &["/ws", "/healthz", "/client.js", "/admin", "/demo"],
            Listener::Main {
                metrics: false,
                demo: false,
            } => &["/ws", "/healthz", "/client.js", "/admin"],
            Listener::Metrics => &["/metrics", "/healthz"],
        }
    }

    /// Whether the HTTP API (every path under [`API_PREFIX`]) is served here: on the main
    /// listener.
    pub fn serves_api(self) -> bool {
        matches!(self, Listener::Main { .. })
    }

    fn serves(self, path: &str) -> bool {
        self.paths().contains(&path) || (self.serves_api() && path.starts_with(API_PREFIX))
    }

    /// Whether its sockets speak TLS when the server has a certificate: the main listener
    /// does; the metrics listener stays plain HTTP (a scraper on a private network).
    pub fn uses_tls(self) -> bool {
        !matches!(self, Listener::Metrics)
    }
}

/// [`route`] for a request that arrived on `listener`.
pub fn route_on(listener: Listener, head: &RequestHead<'_>, origins: &OriginPolicy) -> Route {
    let path = path_of(head.target);
    if !listener.serves(path) {
        return Route::Reject(HttpResponse::error(404, "not found"));
    }
    match path {
        "/ws" => match route_upgrade(head, origins) {
            Route::Reject(refusal) => Route::RefuseUpgrade(refusal),
            upgrade => upgrade,
        },
        "/healthz" | "/metrics" if !matches!(head.method, "GET" | "HEAD") => Route::Reject(
            HttpResponse::error(405, "method not allowed: use GET").header("Allow", "GET, HEAD"),
        ),
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        "/client.js" => Route::Asset(assets::serve(
            head.method,
            "text/javascript; charset=utf-8",
            assets::CLIENT_JS,
        )),
        "/admin" => Route::Asset(assets::serve_page(head.method, assets::ADMIN_HTML)),
        "/demo" => Route::Asset(assets::serve_page(head.method, assets::DEMO_HTML)),
        path if path.starts_with(API_PREFIX) => Route::Api,
        _ => Route::Reject(HttpResponse::error(404, "not found")),
    }
}

fn route_upgrade(head: &RequestHead<'_>, origins: &OriginPolicy) -> Route {
    let reject = |status, message: &str| Route::Reject(HttpResponse::error(status, message));
    if head.method != "GET" {
        return Route::Reject(
            HttpResponse::error(405, "method not allowed: a WebSocket upgrade uses GET")
                .header("Allow", "GET"),
        );
    }
    if !has_token(head, "upgrade", b"websocket") {
        return reject(
            400,
            "not a WebSocket upgrade: missing `Upgrade: websocket` header",
        );
    }
    if !has_token(head, "connection", b"upgrade") {
        return reject(
            400,
            "not a WebSocket upgrade: `Connection` header lacks `Upgrade`",
        );
    }
    let mut keys = head.headers_named("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (None, _) => return reject(400, "missing Sec-WebSocket-Key header"),
        (Some(_), Some(_)) => return reject(400, "more than one Sec-WebSocket-Key header"),
        (Some(key), None) => trim_blanks(key),
    };
    if !is_base64_of_16_bytes(key) {
        return reject(
            400,
            "invalid Sec-WebSocket-Key: must be the base64 of 16 bytes",
        );
    }
    let mut versions = head.headers_named("sec-websocket-version").peekable();
    let version_ok = versions.peek().is_some() && versions.all(|v| trim_blanks(v) == b"13");
    if !version_ok {
        return Route::Reject(
            HttpResponse::error(
                426,
                "unsupported Sec-WebSocket-Version: this server speaks 13",
            )
            .header("Sec-WebSocket-Version", "13"),
        );
    }
    if head
        .headers_named("origin")
        .any(|o| !origins.allows(Some(o)))
    {
        return reject(403, "origin not allowed");
    }
    match Handshake::from_request(head.target, head.headers.iter().copied()) {
        Ok(handshake) => Route::Upgrade {
            handshake,
            // Checked above: 24 ASCII characters.
            key: String::from_utf8_lossy(key).into_owned(),
        },
        Err(e) => reject(e.http_status(), &e.to_string()),
    }
}

/// Whether any line of header `name` lists `token` (comma-separated, case-insensitive).
fn has_token(head: &RequestHead<'_>, name: &str, token: &[u8]) -> bool {
    head.headers_named(name).any(|value| {
        value
            .split(|&b| b == b',')
            .any(|t| trim_blanks(t).eq_ignore_ascii_case(token))
    })
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// 16 bytes in padded base64 are 22 alphabet characters and `==`. The unused low bits of
/// the last character are not checked: lenient decoders accept them, and so do we.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/');
    key.len() == 24 && key[..22].iter().all(is_b64) && &key[22..] == b"=="
}

#[cfg(test)]
mod tests;
