//! `event_sequences`: arbitrary sequences of transport events, client messages, time steps and
//! application commands against one `Switchboard`, run through the reference model of
//! `switchboard-model` (`core/model/`, the one the proptest model test runs): every invariant
//! is checked after every step, and every reply, close, ping, publish, push and presence push
//! is predicted exactly. The fuzzer's bytes decode into the small types here (`arbitrary`),
//! which map onto the model's ops.

use arbitrary::Arbitrary;
use switchboard_core::SessionPolicy;
use switchboard_model::ops::{self as model, Exp, Setup, Tok, APP_CODES, CLAIMS, DEVICES};
use switchboard_model::ops::{PATTERNS, TOPICS, USERS};

use crate::enc::{pick, Encode, Encoder};

/// A token presented at the handshake or in an `auth` message.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Token {
    pub user: u8,
    pub device: Option<u8>,
    /// By `kind % 8`: 0..=3 valid for good, 4 expiring in 2 s, 5 expired, 6 restricted topics
    /// (`a.*`, `presence.**`), 7 a bad signature; `kind / 8` picks the `topics` claim of the
    /// others (0: none).
    pub kind: u8,
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Op {
    Open {
        ip: u8,
        token: Option<Token>,
        device: Option<u8>,
    },
    Auth {
        conn: u8,
        token: Token,
        device: Option<u8>,
    },
    Subscribe {
        conn: u8,
        pattern: u8,
    },
    Unsubscribe {
        conn: u8,
        pattern: u8,
    },
    Publish {
        conn: u8,
        topic: u8,
        with_id: bool,
    },
    ClientPing {
        conn: u8,
    },
    Pong {
        conn: u8,
    },
    Closed {
        conn: u8,
    },
    Backlog {
        conn: u8,
        over: bool,
    },
    Violation {
        conn: u8,
        invalid_utf8: bool,
    },
    /// `ms % 5001` ms pass, then `handle_timeout`.
    Advance {
        ms: u16,
    },
    SendToUser {
        user: u8,
    },
    SendToUsers {
        users: Vec<u8>,
    },
    SendToDevice {
        user: u8,
        device: u8,
    },
    SendToConnection {
        conn: u8,
    },
    Broadcast,
    AppPublish {
        topic: u8,
    },
    DisconnectUser {
        user: u8,
        device: Option<u8>,
        code: u8,
    },
    DisconnectConnection {
        conn: u8,
        code: u8,
    },
    Shutdown {
        drain_ms: u16,
    },
    /// Time moves to the core's `poll_timeout`, `delta_ms % 301` off, then `handle_timeout`.
    AdvanceToDeadline {
        delta_ms: i16,
    },
    /// `1 + frames % 8` `{"type":"ping"}` frames at once.
    Burst {
        conn: u8,
        frames: u8,
    },
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Input {
    /// By `policy % 4`: 0 single, 1 per-device, else multi with `max_per_user` 1 to 3; by
    /// `policy / 8 % 4`, a `jwt_leeway` of 0, 1, 700 or 1,500 ms.
    pub policy: u8,
    /// Inbound rate limit of 5 frames/s (burst 8) instead of none.
    pub rate_limited: bool,
    pub hash_seed: u64,
    pub ops: Vec<Op>,
}

impl Input {
    /// The model's settings.
    pub fn setup(&self) -> Setup {
        Setup {
            policy: self.policy(),
            leeway_ms: [0, 1, 700, 1_500][usize::from(self.policy / 8 % 4)],
            rate: if self.rate_limited { 5 } else { 0 },
            burst: 8,
            hash_seed: self.hash_seed,
        }
    }

    /// The model's ops (at most 512).
    pub fn ops(&self) -> Vec<model::Op> {
        self.ops.iter().take(512).map(Op::to_model).collect()
    }

    fn policy(&self) -> SessionPolicy {
        match self.policy % 4 {
            0 => SessionPolicy::Single,
            1 => SessionPolicy::PerDevice,
            n => SessionPolicy::Multi {
                max_per_user: usize::from(n - 1) + usize::from(self.policy / 4 % 2),
            },
        }
    }
}

impl Token {
    fn to_model(&self) -> Tok {
        let kind = self.kind % 8;
        Tok {
            user: usize::from(self.user) % USERS.len(),
            device: self.device.map(|d| usize::from(d) % DEVICES.len()),
            exp: match kind {
                4 => Exp::In(2),
                5 => Exp::In(-1),
                _ => Exp::Far,
            },
            topics: match kind {
                // The last claim: `a.*`, `presence.**`.
                6 => CLAIMS.len() - 1,
                _ => usize::from(self.kind / 8) % CLAIMS.len(),
            },
            bad_signature: kind == 7,
        }
    }
}

impl Op {
    fn to_model(&self) -> model::Op {
        let device = |d: u8| usize::from(d) % DEVICES.len();
        let user = |u: u8| usize::from(u) % USERS.len();
        let conn = |c: u8| usize::from(c);
        let code = |c: u8| pick(&APP_CODES, c);
        match *self {
            Op::Open {
                ip,
                ref token,
                device: d,
            } => model::Op::Open {
                ip: ip % 4,
                token: token.as_ref().map(Token::to_model),
                handshake_device: d.map(device),
            },
            Op::Auth {
                conn: c,
                ref token,
                device: d,
            } => model::Op::Auth {
                conn: conn(c),
                token: token.to_model(),
                message_device: d.map(device),
            },
            Op::Subscribe { conn: c, pattern } => model::Op::Subscribe {
                conn: conn(c),
                pattern: usize::from(pattern) % PATTERNS.len(),
            },
            Op::Unsubscribe { conn: c, pattern } => model::Op::Unsubscribe {
                conn: conn(c),
                pattern: usize::from(pattern) % PATTERNS.len(),
            },
            Op::Publish {
                conn: c,
                topic,
                with_id,
            } => model::Op::Publish {
                conn: conn(c),
                topic: usize::from(topic) % TOPICS.len(),
                with_id,
            },
            Op::ClientPing { conn: c } => model::Op::ClientPing { conn: conn(c) },
            Op::Pong { conn: c } => model::Op::Pong { conn: conn(c) },
            Op::Closed { conn: c } => model::Op::Closed { conn: conn(c) },
            Op::Backlog { conn: c, over } => model::Op::Backlog {
                conn: conn(c),
                over,
            },
            Op::Violation {
                conn: c,
                invalid_utf8,
            } => model::Op::Violation {
                conn: conn(c),
                invalid_utf8,
            },
            Op::Advance { ms } => model::Op::Advance {
                ms: u64::from(ms % 5001),
            },
            Op::SendToUser { user: u } => model::Op::SendToUser { user: user(u) },
            Op::SendToUsers { ref users } => model::Op::SendToUsers {
                users: users.iter().map(|&u| user(u)).collect(),
            },
            Op::SendToDevice { user: u, device: d } => model::Op::SendToDevice {
                user: user(u),
                device: device(d),
            },
            Op::SendToConnection { conn: c } => model::Op::SendToConnection { conn: conn(c) },
            Op::Broadcast => model::Op::Broadcast,
            Op::AppPublish { topic } => model::Op::AppPublish {
                topic: usize::from(topic) % TOPICS.len(),
            },
            Op::DisconnectUser {
                user: u,
                device: d,
                code: c,
            } => model::Op::DisconnectUser {
                user: user(u),
                device: d.map(device),
                code: code(c),
            },
            Op::DisconnectConnection { conn: c, code: k } => model::Op::DisconnectConnection {
                conn: conn(c),
                code: code(k),
            },
            Op::Shutdown { drain_ms } => model::Op::Shutdown {
                drain_ms: u64::from(drain_ms % 5001),
            },
            Op::AdvanceToDeadline { delta_ms } => model::Op::AdvanceToDeadline {
                delta_ms: i64::from(delta_ms % 301),
            },
            Op::Burst { conn: c, frames } => model::Op::Burst {
                conn: conn(c),
                frames: u32::from(frames % 8) + 1,
            },
        }
    }
}

/// Drives one input through the shared model; panics when an invariant fails.
pub fn run(input: &Input) {
    switchboard_model::run(&input.setup(), &input.ops());
}

// ---- seeds --------------------------------------------------------------------------------

impl Encode for Token {
    fn encode(&self, e: &mut Encoder) {
        self.user.encode(e);
        self.device.encode(e);
        self.kind.encode(e);
    }
}

impl Encode for Op {
    fn encode(&self, e: &mut Encoder) {
        const N: usize = 22;
        match self {
            Op::Open { ip, token, device } => {
                e.tag(0, N);
                ip.encode(e);
                token.encode(e);
                device.encode(e);
            }
            Op::Auth {
                conn,
                token,
                device,
            } => {
                e.tag(1, N);
                conn.encode(e);
                token.encode(e);
                device.encode(e);
            }
            Op::Subscribe { conn, pattern } => {
                e.tag(2, N);
                conn.encode(e);
                pattern.encode(e);
            }
            Op::Unsubscribe { conn, pattern } => {
                e.tag(3, N);
                conn.encode(e);
                pattern.encode(e);
            }
            Op::Publish {
                conn,
                topic,
                with_id,
            } => {
                e.tag(4, N);
                conn.encode(e);
                topic.encode(e);
                with_id.encode(e);
            }
            Op::ClientPing { conn } => {
                e.tag(5, N);
                conn.encode(e);
            }
            Op::Pong { conn } => {
                e.tag(6, N);
                conn.encode(e);
            }
            Op::Closed { conn } => {
                e.tag(7, N);
                conn.encode(e);
            }
            Op::Backlog { conn, over } => {
                e.tag(8, N);
                conn.encode(e);
                over.encode(e);
            }
            Op::Violation { conn, invalid_utf8 } => {
                e.tag(9, N);
                conn.encode(e);
                invalid_utf8.encode(e);
            }
            Op::Advance { ms } => {
                e.tag(10, N);
                ms.encode(e);
            }
            Op::SendToUser { user } => {
                e.tag(11, N);
                user.encode(e);
            }
            Op::SendToUsers { users } => {
                e.tag(12, N);
                users.encode(e);
            }
            Op::SendToDevice { user, device } => {
                e.tag(13, N);
                user.encode(e);
                device.encode(e);
            }
            Op::SendToConnection { conn } => {
                e.tag(14, N);
                conn.encode(e);
            }
            Op::Broadcast => e.tag(15, N),
            Op::AppPublish { topic } => {
                e.tag(16, N);
                topic.encode(e);
            }
            Op::DisconnectUser { user, device, code } => {
                e.tag(17, N);
                user.encode(e);
                device.encode(e);
                code.encode(e);
            }
            Op::DisconnectConnection { conn, code } => {
                e.tag(18, N);
                conn.encode(e);
                code.encode(e);
            }
            Op::Shutdown { drain_ms } => {
                e.tag(19, N);
                drain_ms.encode(e);
            }
            Op::AdvanceToDeadline { delta_ms } => {
                e.tag(20, N);
                delta_ms.encode(e);
            }
            Op::Burst { conn, frames } => {
                e.tag(21, N);
                conn.encode(e);
                frames.encode(e);
            }
        }
    }
}

impl Encode for Input {
    fn encode(&self, e: &mut Encoder) {
        self.policy.encode(e);
        self.rate_limited.encode(e);
        self.hash_seed.encode(e);
        self.ops.encode(e);
    }
}

/// A token for the seeds.
fn tok(user: u8, device: Option<u8>, kind: u8) -> Option<Token> {
    Some(Token { user, device, kind })
}

/// Seed inputs: every op, under each session policy.
pub fn seeds() -> Vec<(String, Input)> {
    use Op::*;
    let session = vec![
        Open {
            ip: 0,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 0,
            token: tok(0, Some(1), 0),
            device: None,
        },
        Open {
            ip: 1,
            token: None,
            device: Some(2),
        },
        Open {
            ip: 1,
            token: tok(1, None, 6),
            device: None,
        },
        Subscribe {
            conn: 0,
            pattern: 1,
        },
        Subscribe {
            conn: 1,
            pattern: 2,
        },
        Subscribe {
            conn: 3,
            pattern: 0,
        },
        Subscribe {
            conn: 3,
            pattern: 6,
        },
        Subscribe {
            conn: 0,
            pattern: 5,
        },
        Subscribe {
            conn: 0,
            pattern: 9,
        },
        Subscribe {
            conn: 2,
            pattern: 0,
        },
        Auth {
            conn: 2,
            token: Token {
                user: 2,
                device: Some(1),
                kind: 1,
            },
            device: Some(0),
        },
        Subscribe {
            conn: 2,
            pattern: 7,
        },
        Subscribe {
            conn: 2,
            pattern: 4,
        },
        Publish {
            conn: 0,
            topic: 0,
            with_id: true,
        },
        Publish {
            conn: 3,
            topic: 1,
            with_id: false,
        },
        Publish {
            conn: 3,
            topic: 2,
            with_id: true,
        },
        Publish {
            conn: 1,
            topic: 4,
            with_id: true,
        },
        Publish {
            conn: 1,
            topic: 5,
            with_id: false,
        },
        AppPublish { topic: 0 },
        AppPublish { topic: 1 },
        AppPublish { topic: 2 },
        AppPublish { topic: 3 },
        AppPublish { topic: 4 },
        AppPublish { topic: 5 },
        AppPublish { topic: 6 },
        Publish {
            conn: 0,
            topic: 6,
            with_id: false,
        },
        Unsubscribe {
            conn: 0,
            pattern: 1,
        },
        Unsubscribe {
            conn: 0,
            pattern: 1,
        },
        ClientPing { conn: 1 },
        Pong { conn: 0 },
        SendToUser { user: 0 },
        SendToUsers {
            users: vec![0, 1, 0],
        },
        SendToDevice { user: 0, device: 1 },
        SendToConnection { conn: 2 },
        Broadcast,
        Open {
            ip: 2,
            token: tok(2, None, 0),
            device: Some(0),
        },
        Open {
            ip: 2,
            token: tok(0, None, 5),
            device: None,
        },
        Open {
            ip: 2,
            token: tok(0, None, 7),
            device: None,
        },
        Advance { ms: 900 },
        Advance { ms: 900 },
        Pong { conn: 0 },
        Advance { ms: 2000 },
        Backlog {
            conn: 1,
            over: false,
        },
        Backlog {
            conn: 1,
            over: true,
        },
        Violation {
            conn: 0,
            invalid_utf8: true,
        },
        DisconnectUser {
            user: 2,
            device: None,
            code: 2,
        },
        DisconnectUser {
            user: 1,
            device: Some(0),
            code: 5,
        },
        DisconnectConnection { conn: 3, code: 1 },
        Closed { conn: 0 },
        Closed { conn: 0 },
        Shutdown { drain_ms: 1000 },
        Open {
            ip: 3,
            token: None,
            device: None,
        },
        Advance { ms: 500 },
        Advance { ms: 600 },
        Shutdown { drain_ms: 0 },
    ];
    let timers = vec![
        Open {
            ip: 0,
            token: None,
            device: None,
        },
        Open {
            ip: 0,
            token: tok(1, None, 4),
            device: None,
        },
        Open {
            ip: 0,
            token: tok(1, None, 0),
            device: None,
        },
        Open {
            ip: 0,
            token: None,
            device: None,
        },
        Subscribe {
            conn: 2,
            pattern: 6,
        },
        ClientPing { conn: 1 },
        ClientPing { conn: 2 },
        Advance { ms: 1600 },
        ClientPing { conn: 1 },
        Advance { ms: 1000 },
        Auth {
            conn: 0,
            token: Token {
                user: 0,
                device: None,
                kind: 0,
            },
            device: None,
        },
        Advance { ms: 5000 },
        Open {
            ip: 1,
            token: tok(2, Some(2), 4),
            device: None,
        },
        AdvanceToDeadline { delta_ms: 0 },
        AdvanceToDeadline { delta_ms: -3 },
        AdvanceToDeadline { delta_ms: 250 },
    ];
    let replace = vec![
        Open {
            ip: 0,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 1,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 2,
            token: tok(0, Some(1), 0),
            device: None,
        },
        Open {
            ip: 3,
            token: tok(0, None, 0),
            device: None,
        },
        Open {
            ip: 0,
            token: None,
            device: Some(1),
        },
        Subscribe {
            conn: 2,
            pattern: 5,
        },
        Auth {
            conn: 4,
            token: Token {
                user: 0,
                device: Some(0),
                kind: 0,
            },
            device: None,
        },
        Auth {
            conn: 4,
            token: Token {
                user: 0,
                device: Some(0),
                kind: 0,
            },
            device: None,
        },
        Auth {
            conn: 0,
            token: Token {
                user: 1,
                device: None,
                kind: 5,
            },
            device: None,
        },
        DisconnectUser {
            user: 0,
            device: Some(1),
            code: 0,
        },
    ];
    let flood: Vec<Op> = std::iter::once(Open {
        ip: 0,
        token: tok(0, None, 0),
        device: None,
    })
    .chain(std::iter::repeat(ClientPing { conn: 0 }).take(12))
    .chain([
        Open {
            ip: 1,
            token: tok(1, None, 0),
            device: None,
        },
        Burst { conn: 1, frames: 9 },
        Advance { ms: 300 },
        Burst { conn: 1, frames: 3 },
    ])
    .collect();
    let mut out = Vec::new();
    for (policy, name) in [
        (0u8, "single"),
        (1, "per_device"),
        (2, "multi1"),
        (3, "multi2"),
        (7, "multi3"),
    ] {
        for (what, ops) in [
            ("session", &session),
            ("timers", &timers),
            ("replace", &replace),
        ] {
            out.push((
                format!("{what}_{name}"),
                Input {
                    policy,
                    rate_limited: false,
                    hash_seed: 7,
                    ops: ops.clone(),
                },
            ));
        }
    }
    out.push((
        "rate_limited".into(),
        Input {
            policy: 1,
            rate_limited: true,
            hash_seed: 0,
            ops: flood,
        },
    ));
    out
}
