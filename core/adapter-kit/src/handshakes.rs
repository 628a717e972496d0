//! How an upgrade request ended, told to the core (which counts it) and to the log.

use std::net::IpAddr;
use std::time::Duration;

use switchboard_core::http::HttpResponse;
use switchboard_core::Switchboard;
use tracing::info;

/// Counts a refused upgrade request (`status` of `response`) in the core and logs it with the
/// reason the core gave; `took` is the time since its socket was accepted.
pub fn refused(sb: &mut Switchboard, peer: IpAddr, response: &HttpResponse, took: Duration) {
    sb.handshake_answered(response.status, took);
    log_refused(peer, response);
}

/// Logs a refused upgrade request: peer, status, reason. For an adapter whose front does not
/// hold the core (it reports the count separately).
pub fn log_refused(peer: IpAddr, response: &HttpResponse) {
    let reason = response.error_message().unwrap_or_default();
    info!(ip = %peer, code = response.status, %reason, "handshake refused");
}
