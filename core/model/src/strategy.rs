//! The proptest strategies of the ops and settings (feature `proptest`).

use proptest::prelude::*;
use switchboard_core::SessionPolicy;

use crate::ops::*;

fn device() -> impl Strategy<Value = usize> {
    0..DEVICES.len()
}

fn tok() -> impl Strategy<Value = Tok> {
    let exp = prop_oneof![3 => Just(Exp::Far), 2 => (-1i64..=6).prop_map(Exp::In)];
    let topics = prop_oneof![3 => Just(0), 2 => 1..CLAIMS.len()];
    let bad_signature = prop_oneof![9 => Just(false), 1 => Just(true)];
    (
        0..USERS.len(),
        proptest::option::of(device()),
        exp,
        topics,
        bad_signature,
    )
        .prop_map(|(user, device, exp, topics, bad_signature)| Tok {
            user,
            device,
            exp,
            topics,
            bad_signature,
        })
}

/// One op; [`Op::Shutdown`] only from [`ops`], so that most cases run without one.
pub fn op() -> impl Strategy<Value = Op> {
    let conn = 0usize..16;
    let user = 0..USERS.len();
    let code = (0..APP_CODES.len()).prop_map(|i| APP_CODES[i]);
    prop_oneof![
        3 => (0u8..3, proptest::option::of(tok()), proptest::option::of(device()))
            .prop_map(|(ip, token, handshake_device)| Op::Open { ip, token, handshake_device }),
        2 => (conn.clone(), tok(), proptest::option::of(device()))
            .prop_map(|(conn, token, message_device)| Op::Auth { conn, token, message_device }),
        3 => (conn.clone(), 0..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Subscribe { conn, pattern }),
        1 => (conn.clone(), 0..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Unsubscribe { conn, pattern }),
        3 => (conn.clone(), 0..TOPICS.len(), any::<bool>())
            .prop_map(|(conn, topic, with_id)| Op::Publish { conn, topic, with_id }),
        1 => (0..TOPICS.len()).prop_map(|topic| Op::AppPublish { topic }),
        1 => conn.clone().prop_map(|conn| Op::ClientPing { conn }),
        1 => (conn.clone(), 1u32..=8).prop_map(|(conn, frames)| Op::Burst { conn, frames }),
        2 => conn.clone().prop_map(|conn| Op::Pong { conn }),
        1 => conn.clone().prop_map(|conn| Op::Closed { conn }),
        3 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        3 => prop_oneof![Just(0i64), -5i64..5, -300i64..300]
            .prop_map(|delta_ms| Op::AdvanceToDeadline { delta_ms }),
        1 => prop_oneof![
            conn.clone().prop_map(|conn| Op::SendToConnection { conn }),
            (user.clone(), device()).prop_map(|(user, device)| Op::SendToDevice { user, device }),
            user.clone().prop_map(|user| Op::SendToUser { user }),
            proptest::collection::vec(user.clone(), 0..4).prop_map(|users| Op::SendToUsers { users }),
            Just(Op::Broadcast),
        ],
        1 => prop_oneof![
            (user, proptest::option::of(device()), code.clone())
                .prop_map(|(user, device, code)| Op::DisconnectUser { user, device, code }),
            (conn.clone(), code).prop_map(|(conn, code)| Op::DisconnectConnection { conn, code }),
        ],
        1 => (conn.clone(), any::<bool>()).prop_map(|(conn, over)| Op::Backlog { conn, over }),
        1 => (conn, any::<bool>()).prop_map(|(conn, invalid_utf8)| Op::Violation { conn, invalid_utf8 }),
    ]
}

/// 1 to 79 ops; one case in five has a [`Op::Shutdown`] somewhere among them.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let shutdown = proptest::option::weighted(0.2, (any::<prop::sample::Index>(), 0u64..3_000));
    (proptest::collection::vec(op(), 1..80), shutdown).prop_map(|(mut ops, shutdown)| {
        if let Some((at, drain_ms)) = shutdown {
            ops.insert(at.index(ops.len() + 1), Op::Shutdown { drain_ms });
        }
        ops
    })
}

/// The settings a case runs under.
pub fn setup() -> impl Strategy<Value = Setup> {
    let policy = prop_oneof![
        Just(SessionPolicy::Single),
        Just(SessionPolicy::PerDevice),
        (1usize..=3).prop_map(|max_per_user| SessionPolicy::Multi { max_per_user }),
    ];
    let leeway_ms = prop_oneof![2 => Just(0u64), 1 => Just(1), 1 => Just(700), 1 => Just(1_500)];
    let rate = prop_oneof![1 => Just(0u32), 3 => 1u32..=10];
    (policy, leeway_ms, rate, 1u32..=6, any::<u64>()).prop_map(
        |(policy, leeway_ms, rate, burst, hash_seed)| Setup {
            policy,
            leeway_ms,
            rate,
            burst,
            hash_seed,
        },
    )
}
