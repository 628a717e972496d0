//! The HTTP side of the server, decided in the core so that every adapter answers alike:
//! routing of the upgrade request and its refusals ([`route`]), the JSON API of SPEC.md
//! ([`handle_api`]), `/healthz` ([`health`]) and `/metrics` ([`metrics`]), and the
//! `--allowed-origins` and `--trusted-proxies` policies.
//!
//! Adapters parse the request head (bounded by [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`]), call
//! [`route`], read an `/api` body (bounded by [`MAX_API_BODY_BYTES`]), and write
//! [`HttpResponse::to_bytes`]; every answer here closes the connection. Nothing in this module
//! performs IO or reads a clock.

mod api;
mod metrics;
mod origin;
mod proxy;
mod request;
mod response;

pub use api::{handle_api, health, ApiRequest};
pub use metrics::{adapter_gauges, metrics};
pub use origin::{InvalidOrigin, OriginPolicy};
pub use proxy::{InvalidCidr, TrustedProxies};
pub use request::{route, RequestHead, Route, MAX_API_BODY_BYTES, MAX_HEADERS, MAX_HEAD_BYTES};
pub use response::HttpResponse;
