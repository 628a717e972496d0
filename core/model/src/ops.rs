//! The inputs the model drives: the settings, the names it picks from, and the ops.

use switchboard_core::SessionPolicy;

pub const SECRET: &[u8] = b"model-secret";
pub const WALL0: u64 = 1_795_428_000_000;
pub const PING_MS: u64 = 1_000;
pub const PONG_TIMEOUT_MS: u64 = 2_500;
pub const AUTH_TIMEOUT_MS: u64 = 1_500;
pub const MAX_PER_IP: usize = 3;
pub const MAX_SUBS: usize = 3;
pub const USERS: [&str; 3] = ["u0", "u1", "u2@x.y"];
pub const DEVICES: [&str; 2] = ["d0", "d1"];
pub const PATTERNS: [&str; 8] = [
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
pub const CLAIMS: [Option<&[&str]>; 6] = [
    None,
    Some(&["a.*"]),
    Some(&["a.**", "presence.*"]),
    Some(&["*.b", "presence.u0"]),
    Some(&["x.b", "presence.u2@x%2Ey", "a.b.*"]),
    Some(&[]),
];
pub const TOPICS: [&str; 4] = ["a.b", "a.c", "x.b", "a.b.c"];

#[derive(Clone, Debug)]
pub enum Op {
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
pub struct Tok {
    pub user: usize,
    pub device: Option<usize>,
    pub exp: Exp,
    /// Its `topics` claim: an index into [`CLAIMS`].
    pub topics: usize,
}

/// A token's `exp`.
#[derive(Clone, Copy, Debug)]
pub enum Exp {
    /// Far beyond any run.
    Far,
    /// This many seconds after the current second (the wall clock's, at minting): expired
    /// already, or expiring within reach of the steps.
    In(i64),
}

/// The settings a case runs under.
#[derive(Clone, Debug)]
pub struct Setup {
    pub policy: SessionPolicy,
    /// `jwt_leeway`, in ms.
    pub leeway_ms: u64,
    /// `max_messages_per_sec` (0: no limit) and `message_burst`.
    pub rate: u32,
    pub burst: u32,
}
