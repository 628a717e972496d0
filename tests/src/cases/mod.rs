//! The cases of the suite, one `async fn case<A: Adapter>()` each, grouped by PROTOCOL.md
//! section. Every case starts its own server(s).

pub mod auth;
pub mod closes;
pub mod cluster;
pub mod drain;
pub mod frames;
pub mod handshake;
pub mod history;
pub mod http_api;
pub mod limits;
pub mod liveness;
pub mod metrics;
pub mod presence;
pub mod topics;
