//! The inputs the model drives: the settings, the names it picks from, and the ops.

use switchboard_core::SessionPolicy;

pub const SECRET: &[u8] = b"model-secret";
pub const WALL0: u64 = 1_795_428_000_000;
pub const PING_MS: u64 = 1_000;
pub const PONG_TIMEOUT_MS: u64 = 2_500;
pub const AUTH_TIMEOUT_MS: u64 = 1_500;
pub const MAX_PER_IP: usize = 3;
pub const MAX_SUBS: usize = 3;
/// `max_outbound_bytes`: a backlog over it closes with 4009.
pub const MAX_OUTBOUND: usize = 64 * 1024;
pub const USERS: [&str; 3] = ["u0", "u1", "u2@x.y"];
pub const DEVICES: [&str; 3] = ["d0", "d1", "d:2"];
/// Subscription patterns; the last two are malformed (`error` 400).
pub const PATTERNS: [&str; 11] = [
    "a.b",
    "a.*",
    "a.**",
    "*.b",
    "**",
    "presence.u0",
    "presence.*",
    "presence.u2@x%2Ey",
    "x.b",
    "a..b",
    "**.a",
];
/// `topics` claims tokens carry (`None`: any topic).
pub const CLAIMS: [Option<&[&str]>; 7] = [
    None,
    Some(&["a.*"]),
    Some(&["a.**", "presence.*"]),
    Some(&["*.b", "presence.u0"]),
    Some(&["x.b", "presence.u2@x%2Ey", "a.b.*"]),
    Some(&[]),
    Some(&["a.*", "presence.**"]),
];
/// Topics published to: a presence topic is reserved (403), a wildcard is no topic (400).
pub const TOPICS: [&str; 7] = ["a.b", "a.c", "x.b", "a.b.c", "presence.u0", "a.*", "a"];
/// Close codes the application may try; 1000, 1008 and 4000..=4999 are valid.
pub const APP_CODES: [u16; 8] = [1000, 1008, 4000, 4999, 4001, 1001, 999, 5000];

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
    /// A client publish; `with_id`: with an `id`, which an `ack` echoes.
    Publish {
        conn: usize,
        topic: usize,
        with_id: bool,
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
    /// The application closes a user's connections (on one device, or all) with `code`.
    DisconnectUser {
        user: usize,
        device: Option<usize>,
        code: u16,
    },
    /// The application closes one connection with `code`.
    DisconnectConnection {
        conn: usize,
        code: u16,
    },
    Backlog {
        conn: usize,
        over: bool,
    },
    /// The transport saw invalid UTF-8 (1007) or a message too big (1009).
    Violation {
        conn: usize,
        invalid_utf8: bool,
    },
    /// Graceful shutdown: every connection closes with 1001 at once, `Stop` is owed at
    /// `drain_ms` from now (the first shutdown's; a later one changes nothing).
    Shutdown {
        drain_ms: u64,
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
    /// Signed with another secret: refused like an expired one.
    pub bad_signature: bool,
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
    /// The `Switchboard`'s hash seed.
    pub hash_seed: u64,
}
