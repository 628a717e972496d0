//! The HTTP side of the server, decided in the core so that every adapter answers alike:
//! routing of the upgrade request and its refusals ([`route`]), the JSON API of SPEC.md
//! ([`handle_api`]), `/healthz` ([`health`]), the browser client at `/client.js`
//! ([`CLIENT_JS`]), the admin page at `/admin` ([`ADMIN_HTML`]) and the demo page at `/demo`
//! ([`DEMO_HTML`], with `--demo`), and the `--allowed-origins` and `--trusted-proxies` policies.
//!
//! Adapters find the request head in what they read ([`HeadStatus::of`], bounded by
//! [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`]), call [`route`] on it ([`with_head`]), read an `/api`
//! body of [`body_length`] bytes (bounded by [`MAX_API_BODY_BYTES`]), and write
//! [`HttpResponse::to_bytes`]; every answer here closes the connection. Nothing in this module
//! performs IO or reads a clock.
//!
//! Behind the cargo feature `gateway`: an embedder of the connection manager alone does not
//! build it.

mod answers;
mod api;
mod assets;
mod head;
mod origin;
mod proxy;
mod request;
pub(crate) mod response;
mod server_config;

pub use answers::{admit, switching_protocols, switching_protocols_headers};
pub use api::{handle_api, health, ApiRequest};
pub use assets::{ADMIN_HTML, CLIENT_JS, DEMO_HTML};
pub use head::{body_length, with_head, HeadStatus};
pub use origin::{InvalidOrigin, OriginPolicy};
pub use proxy::{InvalidCidr, TrustedProxies};
pub use request::{
    route, route_on, Listener, RequestHead, Route, API_PREFIX, MAX_API_BODY_BYTES, MAX_HEADERS,
    MAX_HEAD_BYTES,
};
pub use response::HttpResponse;
pub use server_config::{ClusterSettings, ServerConfig, TlsFiles};
