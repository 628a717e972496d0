//! `Config::default()` carries the defaults of the spec.

use std::time::Duration;

use switchboard_core::{Config, SessionPolicy};

use crate::harness::*;

#[test]
fn config_defaults_are_those_of_the_spec() {
    let c = Config::default();
    assert_eq!(c.session_policy, SessionPolicy::PerDevice);
    assert_eq!(c.ping_interval, secs(30));
    assert_eq!(c.pong_timeout, secs(60));
    assert_eq!(c.auth_timeout, secs(10));
    assert_eq!(c.max_connections_per_ip, 100);
    assert_eq!(c.max_message_bytes, 1024 * 1024);
    assert_eq!(c.max_outbound_bytes, 1024 * 1024);
    assert_eq!(c.max_subscriptions, 1000);
    assert_eq!(c.max_messages_per_sec, 100);
    assert_eq!(c.message_burst, 200);
    assert_eq!(c.jwt_leeway, Duration::ZERO);
}
