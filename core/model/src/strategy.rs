//! The proptest strategies of the ops and settings (feature `proptest`).

use proptest::prelude::*;
use switchboard_core::SessionPolicy;

use crate::ops::*;

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

pub fn op() -> impl Strategy<Value = Op> {
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

pub fn setup() -> impl Strategy<Value = Setup> {
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
