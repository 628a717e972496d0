//! Session policies (per-device, single, multi): which connections a new one replaces.

use switchboard_core::{Action, CloseCode, CloseMode, Config, Gone, SessionPolicy};

use crate::harness::*;

#[test]
fn per_device_is_the_default_session_policy() {
    assert_eq!(Config::default().session_policy, SessionPolicy::PerDevice);
}

#[test]
fn per_device_new_connection_on_the_same_device_replaces_the_old_with_4001() {
    let mut h = Harness::new();
    let phone = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    h.drain();
    let phone2 = h.open_with_token("alice", Some("phone"));
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(phone, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[laptop, phone2]);
    // Another user's same device name is another device.
    h.open_with_token("bob", Some("phone"));
    assert!(closes(&h.drain()).is_empty());
}

#[test]
fn single_policy_new_connection_replaces_every_other() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.session_policy = SessionPolicy::Single;
        config
    });
    let a = h.open_with_token("alice", Some("phone"));
    h.drain();
    let b = h.open_with_token("alice", Some("laptop"));
    assert_eq!(
        closes(&h.drain()),
        vec![(a, 4001, "session replaced".to_string())]
    );
    let c = h.open_with_token("alice", None);
    assert_eq!(
        closes(&h.drain()),
        vec![(b, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[c]);
}

#[test]
fn multi_policy_allows_max_per_user_and_over_the_cap_replaces_the_oldest() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.session_policy = SessionPolicy::Multi { max_per_user: 2 };
        config
    });
    let a = h.open_with_token("alice", Some("tab"));
    let b = h.open_with_token("alice", Some("tab"));
    assert!(closes(&h.drain()).is_empty(), "exactly the cap is allowed");
    let c = h.open_with_token("alice", None);
    assert_eq!(
        closes(&h.drain()),
        vec![(a, 4001, "session replaced".to_string())]
    );
    let d = h.open_with_token("alice", Some("other"));
    assert_eq!(
        closes(&h.drain()),
        vec![(b, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[c, d]);
}

#[test]
fn replaced_connection_gets_exactly_one_close_4001_and_no_later_action() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.ping_interval = secs(1);
        config
    });
    let old = h.open_with_token("alice", Some("phone"));
    h.subscribe(old, "chat.*");
    h.drain();
    let new = h.open_with_token("alice", Some("phone"));
    let mut actions = h.drain();
    assert_eq!(
        naming(&actions, old),
        vec![&Action::Close {
            conn: old,
            code: CloseCode::SESSION_REPLACED,
            reason: "session replaced".into(),
            mode: CloseMode::Flush,
        }]
    );
    // Nothing that follows names it.
    h.sb.send_to_user(h.now, "alice", &raw("1"));
    h.sb.broadcast(h.now, &raw("2"));
    h.sb.publish(h.now, "chat.a", &raw("3"), None).unwrap();
    h.frame(old, r#"{"type":"ping"}"#);
    h.sb.handle_backlog(h.now, old, usize::MAX);
    h.sb.disconnect_user(h.now, "bob", None, CloseCode::NORMAL, "x")
        .unwrap();
    h.advance(secs(3));
    h.sb.shutdown(h.now, h.now.instant);
    h.advance(secs(1));
    actions = h.drain();
    assert!(naming(&actions, old).is_empty(), "{actions:?}");
    assert!(!naming(&actions, new).is_empty());
    assert_eq!(h.sb.send_to_connection(h.now, old, &raw("1")), Err(Gone));
}

#[test]
fn replacement_emits_no_presence_action_and_no_presence_push() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "presence.alice");
    let star_watcher = h.open_with_token("watcher2", None);
    h.subscribe(star_watcher, "presence.*");
    h.open_with_token("alice", Some("phone"));
    h.drain();
    h.open_with_token("alice", Some("phone"));
    let actions = h.drain();
    assert_eq!(closes(&actions).len(), 1);
    assert!(presences(&actions).is_empty(), "{actions:?}");
    assert!(naming(&actions, watcher).is_empty());
    assert!(naming(&actions, star_watcher).is_empty());
    assert!(h.sb.is_online("alice"));
    assert_eq!(h.sb.user_connections("alice").len(), 1);
}

#[test]
fn per_device_never_replaces_connections_without_a_device() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("alice", None);
    let c = h.open_with_token("alice", Some("phone"));
    let d = h.open_with_token("alice", None);
    assert!(closes(&h.drain()).is_empty());
    assert_eq!(h.sb.user_connections("alice"), &[a, b, c, d]);
}
