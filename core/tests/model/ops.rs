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
/// `topics` claims tokens carry (`None`: any topic).
pub(crate) const CLAIMS: [Option<&[&str]>; 6] = [
    None,
    Some(&["a.*"]),
    Some(&["a.**", "presence.*"]),
    Some(&["*.b", "presence.u0"]),
    Some(&["x.b", "presence.u2@x%2Ey", "a.b.*"]),
    Some(&[]),
];
pub(crate) const TOPICS: [&str; 4] = ["a.b", "a.c", "x.b", "a.b.c"];

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Open {
        ip: u8,
        token: Option<Tok>,
        handshake_device: Option<usize>,
    },
    Auth {
        conn: usize,
        token: Tok,
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
    /// `frames` `{"type":"ping"}` frames at once, to test the inbound rate limit.
    Burst {
        conn: usize,
        frames: u32,
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
    /// The application's sends (through `Commands`), each to its own selection.
    SendToConnection {
        conn: usize,
    },
    SendToDevice {
        user: usize,
        device: usize,
    },
    SendToUser {
        user: usize,
    },
    /// A list of users, perhaps with repeats.
    SendToUsers {
        users: Vec<usize>,
    },
    Broadcast,
    DisconnectUser {
        user: usize,
    },
    Backlog {
        conn: usize,
        over: bool,
    },
}

/// A token the ops mint, at the time of the step that uses it.
#[derive(Clone, Debug)]
pub(crate) struct Tok {
    pub(crate) user: usize,
    pub(crate) device: Option<usize>,
    pub(crate) exp: Exp,
    /// Its `topics` claim: an index into [`CLAIMS`].
    pub(crate) topics: usize,
}

/// A token's `exp`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exp {
    /// Far beyond any run.
    Far,
    /// This many seconds after the current second (the wall clock's, at minting): expired
    /// already, or expiring within reach of the steps.
    In(i64),
}

fn tok() -> impl Strategy<Value = Tok> {
    let exp = prop_oneof![3 => Just(Exp::Far), 2 => (-1i64..=6).prop_map(Exp::In)];
    let topics = prop_oneof![3 => Just(0), 2 => 1..CLAIMS.len()];
    (0usize..3, proptest::option::of(0usize..2), exp, topics).prop_map(
        |(user, device, exp, topics)| Tok {
            user,
            device,
            exp,
            topics,
        },
    )
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let conn = 0usize..16;
    prop_oneof![
        3 => (0u8..2, proptest::option::of(tok()), proptest::option::of(0usize..2))
            .prop_map(|(ip, token, handshake_device)| Op::Open { ip, token, handshake_device }),
        2 => (conn.clone(), tok(), proptest::option::of(0usize..2))
            .prop_map(|(conn, token, message_device)| Op::Auth { conn, token, message_device }),
        3 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Subscribe { conn, pattern }),
        1 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Unsubscribe { conn, pattern }),
        3 => (conn.clone(), 0usize..TOPICS.len()).prop_map(|(conn, topic)| Op::Publish { conn, topic }),
        1 => (0usize..TOPICS.len()).prop_map(|topic| Op::AppPublish { topic }),
        1 => conn.clone().prop_map(|conn| Op::ClientPing { conn }),
        1 => (conn.clone(), 1u32..=8).prop_map(|(conn, frames)| Op::Burst { conn, frames }),
        2 => conn.clone().prop_map(|conn| Op::Pong { conn }),
        1 => conn.clone().prop_map(|conn| Op::Closed { conn }),
        3 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        3 => prop_oneof![Just(0i64), -5i64..5, -300i64..300]
            .prop_map(|delta_ms| Op::AdvanceToDeadline { delta_ms }),
        1 => prop_oneof![
            conn.clone().prop_map(|conn| Op::SendToConnection { conn }),
            (0usize..3, 0usize..2).prop_map(|(user, device)| Op::SendToDevice { user, device }),
            (0usize..3).prop_map(|user| Op::SendToUser { user }),
            proptest::collection::vec(0usize..3, 0..4).prop_map(|users| Op::SendToUsers { users }),
            Just(Op::Broadcast),
        ],
        1 => (0usize..3).prop_map(|user| Op::DisconnectUser { user }),
        1 => (conn, any::<bool>()).prop_map(|(conn, over)| Op::Backlog { conn, over }),
    ]
}

/// The settings a case runs under.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) policy: SessionPolicy,
    /// `jwt_leeway`, in ms.
    pub(crate) leeway_ms: u64,
    /// `max_messages_per_sec` (0: no limit) and `message_burst`.
    pub(crate) rate: u32,
    pub(crate) burst: u32,
}

pub(crate) fn setup() -> impl Strategy<Value = Setup> {
    let policy = prop_oneof![
        Just(SessionPolicy::Single),
        Just(SessionPolicy::PerDevice),
        Just(SessionPolicy::Multi { max_per_user: 2 }),
    ];
    let leeway_ms = prop_oneof![2 => Just(0u64), 1 => Just(1), 1 => Just(700), 1 => Just(1_500)];
    let rate = prop_oneof![1 => Just(0u32), 3 => 1u32..=10];
    (policy, leeway_ms, rate, 1u32..=6).prop_map(|(policy, leeway_ms, rate, burst)| Setup {
        policy,
        leeway_ms,
        rate,
        burst,
    })
}
