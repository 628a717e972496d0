//! The inputs the model drives: the settings, the names it picks from, and the random ops.

use proptest::prelude::*;
use switchboard_core::SessionPolicy;

pub(crate) const SECRET: &[u8] = b"model-secret";
pub(crate) const WALL0: u64 = 1_795_428_000_000;
pub(crate) const PING_MS: u64 = 1_000;
pub(crate) const PONG_TIMEOUT_MS: u64 = 2_500;
pub(crate) const AUTH_TIMEOUT_MS: u64 = 1_500;
pub(crate) const MAX_PER_IP: usize = 3;
pub(crate) const MAX_SUBS: usize = 3;
pub(crate) const USERS: [&str; 3] = ["u0", "u1", "u2@x.y"];
pub(crate) const DEVICES: [&str; 2] = ["d0", "d1"];
pub(crate) const PATTERNS: [&str; 8] = [
    "a.b",
    "a.*",
    "a.**",
    "*.b",
    "**",
    "presence.u0",
    "presence.*",
    "presence.u2@x%2Ey",
];
pub(crate) const TOPICS: [&str; 4] = ["a.b", "a.c", "x.b", "a.b.c"];

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Open {
        ip: u8,
        token: Option<(usize, Option<usize>)>,
        handshake_device: Option<usize>,
    },
    Auth {
        conn: usize,
        user: usize,
        token_device: Option<usize>,
        message_device: Option<usize>,
    },
    Subscribe {
        conn: usize,
        pattern: usize,
    },
    Unsubscribe {
        conn: usize,
        pattern: usize,
    },
    Publish {
        conn: usize,
        topic: usize,
    },
    AppPublish {
        topic: usize,
    },
    ClientPing {
        conn: usize,
    },
    Pong {
        conn: usize,
    },
    Closed {
        conn: usize,
    },
    Advance {
        ms: u64,
    },
    /// Time moves to the core's `poll_timeout`, shifted by `delta_ms` (an adapter that wakes a
    /// little early or late).
    AdvanceToDeadline {
        delta_ms: i64,
    },
    SendToUser {
        user: usize,
    },
    DisconnectUser {
        user: usize,
    },
    Backlog {
        conn: usize,
        over: bool,
    },
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let conn = 0usize..16;
    prop_oneof![
        3 => (0u8..2, proptest::option::of((0usize..3, proptest::option::of(0usize..2))), proptest::option::of(0usize..2))
            .prop_map(|(ip, token, handshake_device)| Op::Open { ip, token, handshake_device }),
        2 => (conn.clone(), 0usize..3, proptest::option::of(0usize..2), proptest::option::of(0usize..2))
            .prop_map(|(conn, user, token_device, message_device)| Op::Auth { conn, user, token_device, message_device }),
        3 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Subscribe { conn, pattern }),
        1 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Unsubscribe { conn, pattern }),
        3 => (conn.clone(), 0usize..TOPICS.len()).prop_map(|(conn, topic)| Op::Publish { conn, topic }),
        1 => (0usize..TOPICS.len()).prop_map(|topic| Op::AppPublish { topic }),
        1 => conn.clone().prop_map(|conn| Op::ClientPing { conn }),
        2 => conn.clone().prop_map(|conn| Op::Pong { conn }),
        1 => conn.clone().prop_map(|conn| Op::Closed { conn }),
        3 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        3 => prop_oneof![Just(0i64), -5i64..5, -300i64..300]
            .prop_map(|delta_ms| Op::AdvanceToDeadline { delta_ms }),
        1 => (0usize..3).prop_map(|user| Op::SendToUser { user }),
        1 => (0usize..3).prop_map(|user| Op::DisconnectUser { user }),
        1 => (conn, any::<bool>()).prop_map(|(conn, over)| Op::Backlog { conn, over }),
    ]
}

pub(crate) fn policy() -> impl Strategy<Value = SessionPolicy> {
    prop_oneof![
        Just(SessionPolicy::Single),
        Just(SessionPolicy::PerDevice),
        Just(SessionPolicy::Multi { max_per_user: 2 }),
    ]
}
