//! The drive contract through `execute`: a transport's backlog report closes a slow consumer
//! right away, and nothing queued for it afterwards reaches the transport.

use std::borrow::Cow;
use std::collections::HashMap;

use switchboard_core::{CloseCode, CloseMode, Config, ConnId, Payload, Transport};

use crate::harness::*;

/// What a transport was asked to do, in order.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    Send(ConnId),
    Close(ConnId, CloseCode, CloseMode),
    Other,
}

/// A transport whose clients never read: every frame stays in its backlog.
#[derive(Default)]
struct Stalled {
    backlog: HashMap<ConnId, usize>,
    calls: Vec<Call>,
}

impl Transport for Stalled {
    fn send(&mut self, conn: ConnId, payload: Payload) -> Option<usize> {
        self.calls.push(Call::Send(conn));
        let backlog = self.backlog.entry(conn).or_default();
        *backlog += payload.len();
        Some(*backlog)
    }
    fn ping(&mut self, _: ConnId) {
        self.calls.push(Call::Other);
    }
    fn close(&mut self, conn: ConnId, code: CloseCode, _: Cow<'static, str>, mode: CloseMode) {
        self.calls.push(Call::Close(conn, code, mode));
    }
    fn evict(&mut self, _: ConnId) {
        self.calls.push(Call::Other);
    }
    fn stop(&mut self) {
        self.calls.push(Call::Other);
    }
}

fn naming(calls: &[Call], conn: ConnId) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| matches!(c, Call::Send(id) | Call::Close(id, ..) if *id == conn))
        .collect()
}

#[test]
fn no_send_reaches_a_connection_after_the_one_that_took_its_backlog_over_the_limit() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_outbound_bytes = 400;
        config
    });
    let slow = h.open_with_token("slow", None);
    let other = h.open_with_token("other", None);
    h.subscribe(slow, "news");
    h.subscribe(other, "news");
    h.drain();
    let mut transport = Stalled::default();
    // One command, many frames: each message is ~150 bytes, so the third crosses 400.
    for i in 0..6 {
        let data = raw(&format!("\"{}\"", "n".repeat(40 + i)));
        h.sb.publish(h.now, "news", &data, None).unwrap();
    }
    h.sb.execute(h.now, &mut transport);

    let to_slow = naming(&transport.calls, slow);
    assert_eq!(
        to_slow,
        vec![
            &Call::Send(slow),
            &Call::Send(slow),
            &Call::Send(slow),
            &Call::Close(slow, CloseCode::SLOW_CONSUMER, CloseMode::Discard),
        ],
        "the frames up to the one over the limit, then the 4009 that discards them"
    );
    assert!(!h.is_open(slow));
    // The other transport's client is equally stalled but was judged on its own backlog.
    let to_other = naming(&transport.calls, other);
    assert_eq!(to_other.len(), 4, "{to_other:?}");
    assert_eq!(
        to_other[3],
        &Call::Close(other, CloseCode::SLOW_CONSUMER, CloseMode::Discard)
    );
}

#[test]
fn a_backlog_report_made_mid_drain_takes_effect_once_the_drain_is_done() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_outbound_bytes = 100;
        config
    });
    let conn = h.open_with_token("alice", None);
    h.subscribe(conn, "news");
    h.drain();
    for _ in 0..3 {
        h.sb.publish(h.now, "news", &raw("1"), None).unwrap();
    }
    let first = h.sb.poll_action().expect("a send");
    assert_eq!(first.conn(), Some(conn));
    // An adapter that reports the backlog before the drain is over does not change the core
    // under it: the queued frames are still the connection's, and the close comes after them.
    h.sb.handle_backlog(h.now, conn, 101);
    assert!(h.is_open(conn));
    let rest = h.drain();
    assert_eq!(
        rest.len(),
        2 + 2,
        "two sends, the close, the presence: {rest:?}"
    );
    assert_eq!(
        closes(&rest),
        vec![(conn, 4009, "slow consumer".to_string())]
    );
    assert!(matches!(
        rest[2],
        switchboard_core::Action::Close {
            mode: CloseMode::Discard,
            ..
        }
    ));
    assert!(!h.is_open(conn));
}

#[test]
fn a_close_decided_by_the_core_flushes_what_is_queued_unless_it_is_a_slow_consumer() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    h.sb.disconnect_connection(h.now, conn, CloseCode(4000), "bye")
        .unwrap();
    let actions = h.drain();
    assert!(matches!(
        actions.as_slice(),
        [
            switchboard_core::Action::Close {
                code: CloseCode(4000),
                mode: CloseMode::Flush,
                ..
            },
            ..
        ]
    ));
}
