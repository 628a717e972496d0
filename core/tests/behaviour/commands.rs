//! Application commands: send, broadcast, publish, disconnect, and the connection/stats queries.

use serde_json::json;
use switchboard_core::{
    CloseCode, Config, ConnId, DisconnectError, Gone, Handshake, PublishError, SessionPolicy,
};

use crate::harness::*;

#[test]
fn send_to_connection_pushes_data_and_a_closed_connection_is_gone() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    assert_eq!(
        h.sb.send_to_connection(h.now, conn, &raw(r#"{"n":1.0}"#)),
        Ok(())
    );
    assert_eq!(
        h.sent_raw(conn),
        vec![format!(
            r#"{{"type":"push","data":{{"n":1.0}},"timestamp":"{TS0}"}}"#
        )]
    );
    h.close(conn);
    h.drain();
    assert_eq!(h.sb.send_to_connection(h.now, conn, &raw("1")), Err(Gone));
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_device_reaches_only_that_devices_connections() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.session_policy = SessionPolicy::Multi { max_per_user: 16 };
        config
    });
    let p1 = h.open_with_token("alice", Some("phone"));
    let p2 = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    let bobs = h.open_with_token("bob", Some("phone"));
    h.drain();
    assert_eq!(h.sb.send_to_device(h.now, "alice", "phone", &raw("1")), 2);
    assert_eq!(h.sent_to(p1).len(), 1);
    assert_eq!(h.sent_to(p2).len(), 1);
    assert!(h.sent_to(laptop).is_empty());
    assert!(h.sent_to(bobs).is_empty());
    assert_eq!(h.sb.send_to_device(h.now, "alice", "tablet", &raw("1")), 0);
    assert_eq!(h.sb.send_to_device(h.now, "carol", "phone", &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_user_reaches_every_authenticated_connection_of_the_user() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", Some("phone"));
    let b = h.open_with_token("alice", None);
    let bob = h.open_with_token("bob", None);
    h.drain();
    assert_eq!(h.sb.send_to_user(h.now, "alice", &raw(r#""hi""#)), 2);
    for conn in [a, b] {
        assert_eq!(
            h.sent_to(conn),
            vec![json!({"type":"push","data":"hi","timestamp":TS0})]
        );
    }
    assert!(h.sent_to(bob).is_empty());
    assert_eq!(h.sb.send_to_user(h.now, "nobody", &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_users_reaches_a_user_listed_twice_once_and_counts_connections() {
    let mut h = Harness::new();
    let a1 = h.open_with_token("alice", Some("phone"));
    let a2 = h.open_with_token("alice", Some("laptop"));
    let b = h.open_with_token("bob", None);
    let c = h.open_with_token("carol", None);
    h.drain();
    let n =
        h.sb.send_to_users(h.now, ["alice", "bob", "alice", "nobody"], &raw("1"));
    assert_eq!(n, 3);
    for conn in [a1, a2, b] {
        assert_eq!(h.sent_to(conn).len(), 1);
    }
    assert!(h.sent_to(c).is_empty());
    assert_eq!(h.sb.send_to_users(h.now, [], &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn broadcast_reaches_authenticated_connections_only() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("bob", None);
    let anon = h.open_anonymous();
    assert_eq!(h.sb.broadcast(h.now, &raw("[1]")), 2);
    for conn in [a, b] {
        assert_eq!(
            h.sent_to(conn),
            vec![json!({"type":"push","data":[1],"timestamp":TS0})]
        );
    }
    assert!(h.sent_to(anon).is_empty());
}

#[test]
fn app_publish_sets_sender_id_server_keeps_metadata_and_counts_recipients() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    h.subscribe(a, "chat.*");
    let b = h.open_with_token("bob", None);
    h.subscribe(b, "chat.room");
    let c = h.open_with_token("carol", None);
    h.subscribe(c, "news.*");
    let n =
        h.sb.publish(
            h.now,
            "chat.room",
            &raw(r#"{"x":1}"#),
            Some(&raw(r#"{"senderId":"spoof","m":true}"#)),
        )
        .unwrap()
        .delivered;
    assert_eq!(n, 2);
    let to_a = h.sent_to(a);
    let epoch = to_a[0]["epoch"].clone();
    let expected = json!({"type":"message","topic":"chat.room","data":{"x":1},
        "metadata":{"m":true,"senderId":"server"},"offset":1,"epoch":epoch,"timestamp":TS0});
    assert_eq!(to_a, vec![expected.clone()]);
    assert_eq!(h.sent_to(b), vec![expected]);
    assert!(h.sent_to(c).is_empty());
    assert_eq!(
        h.sb.publish(h.now, "empty.topic", &raw("1"), None)
            .map(|p| p.delivered),
        Ok(0)
    );
    assert_eq!(
        h.sb.publish(h.now, "chat.room", &raw("1"), Some(&raw("[]"))),
        Err(PublishError::InvalidMetadata)
    );
    assert!(matches!(
        h.sb.publish(h.now, "chat..room", &raw("1"), None),
        Err(PublishError::InvalidTopic(_))
    ));
}

#[test]
fn disconnect_refuses_codes_other_than_1000_1008_and_4000_to_4999() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    for code in [0, 999, 1001, 1007, 1009, 1011, 3999, 5000, u16::MAX] {
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "x"),
            Err(DisconnectError::InvalidCode(code))
        );
        assert_eq!(
            h.sb.disconnect_user(h.now, "alice", None, CloseCode(code), "x"),
            Err(DisconnectError::InvalidCode(code))
        );
    }
    assert!(h.drain().is_empty());
    assert!(h.is_open(conn));
}

#[test]
fn disconnect_accepts_1000_1008_4000_and_4999() {
    let mut h = Harness::new();
    for code in [1000, 1008, 4000, 4999] {
        let conn = h.open_with_token("alice", None);
        h.drain();
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "bye now"),
            Ok(())
        );
        let actions = h.drain();
        assert_eq!(closes(&actions), vec![(conn, code, "bye now".to_string())]);
        assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
        assert!(!h.is_open(conn));
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "again"),
            Err(DisconnectError::Gone(Gone))
        );
    }
}

#[test]
fn disconnect_user_closes_every_connection_or_one_devices_and_counts_them() {
    let mut h = Harness::new();
    let phone = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    let nodev = h.open_with_token("alice", None);
    let bob = h.open_with_token("bob", None);
    h.drain();
    let n =
        h.sb.disconnect_user(h.now, "alice", Some("phone"), CloseCode(4000), "kicked")
            .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        closes(&h.drain()),
        vec![(phone, 4000, "kicked".to_string())]
    );
    let n =
        h.sb.disconnect_user(h.now, "alice", None, CloseCode::POLICY, "banned")
            .unwrap();
    assert_eq!(n, 2);
    let actions = h.drain();
    let mut closed: Vec<_> = closes(&actions).into_iter().map(|c| c.0).collect();
    closed.sort();
    assert_eq!(closed, vec![laptop, nodev]);
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
    assert!(h.is_open(bob));
    assert_eq!(
        h.sb.disconnect_user(h.now, "alice", None, CloseCode::NORMAL, "x"),
        Ok(0)
    );
}

#[test]
fn connection_query_reports_its_metadata() {
    let mut h = Harness::new();
    h.set_time(ms(5_000));
    let conn = h
        .open_from(
            ip("2001:db8::7"),
            Handshake {
                token: Some(token("alice")),
                device: Some("phone-1".into()),
                device_name: Some("Alice's phone".into()),
                user_agent: Some("TestAgent/1.0".into()),
            },
        )
        .unwrap();
    assert_eq!(h.sent_to(conn)[0]["type"], "auth_success");
    h.subscribe(conn, "chat.*");
    h.subscribe(conn, "news.**");
    let info = h.sb.connection(conn).unwrap();
    assert_eq!(info.id(), conn);
    assert_eq!(info.user(), Some("alice"));
    assert!(info.is_authenticated());
    assert_eq!(info.device(), Some("phone-1"));
    assert_eq!(info.device_name(), Some("Alice's phone"));
    assert_eq!(info.user_agent(), Some("TestAgent/1.0"));
    assert_eq!(info.ip(), ip("2001:db8::7"));
    assert_eq!(info.connected_at_unix_millis(), WALL0 + 5_000);
    let mut subs: Vec<&str> = info.subscriptions().collect();
    subs.sort_unstable();
    assert_eq!(subs, ["chat.*", "news.**"]);

    let anon = h.open_anonymous();
    let info = h.sb.connection(anon).unwrap();
    assert_eq!(info.user(), None);
    assert_eq!(info.device(), None);
    assert!(!info.is_authenticated());
    assert_eq!(info.device_name(), None);
    assert_eq!(info.user_agent(), None);
}

#[test]
fn user_connections_are_oldest_first_and_device_connections_filter_by_device() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.session_policy = SessionPolicy::Multi { max_per_user: 16 };
        config
    });
    let a = h.open_with_token("alice", Some("phone"));
    let b = h.open_with_token("alice", Some("laptop"));
    let c = h.open_with_token("alice", Some("phone"));
    let d = h.open_with_token("alice", None);
    assert_eq!(h.sb.user_connections("alice"), &[a, b, c, d]);
    h.close(b);
    let e = h.open_with_token("alice", Some("laptop"));
    assert_eq!(h.sb.user_connections("alice"), &[a, c, d, e]);
    let phones: Vec<ConnId> = h.sb.device_connections("alice", "phone").collect();
    assert_eq!(phones, vec![a, c]);
    assert_eq!(h.sb.device_connections("alice", "tv").count(), 0);
    assert_eq!(h.sb.device_connections("bob", "phone").count(), 0);
    assert!(h.sb.user_connections("bob").is_empty());
}

#[test]
fn user_of_is_online_and_online_users_follow_authenticated_connections() {
    let mut h = Harness::new();
    let anon = h.open_anonymous();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("bob@example.com", None);
    assert_eq!(h.sb.user_of(anon), None);
    assert_eq!(h.sb.user_of(a), Some("alice"));
    assert_eq!(h.sb.user_of(b), Some("bob@example.com"));
    assert!(h.sb.is_online("alice"));
    assert!(!h.sb.is_online("carol"));
    let mut users: Vec<&str> = h.sb.online_users().collect();
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob@example.com"]);
    h.close(a);
    assert!(!h.sb.is_online("alice"));
    assert_eq!(h.sb.online_users().collect::<Vec<_>>(), ["bob@example.com"]);
    assert_eq!(h.sb.user_of(a), None);
}

#[test]
fn stats_count_connections_users_subscriptions_and_totals() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_connections_per_ip = 5;
        config
    });
    let a = h.open_with_token("alice", Some("phone"));
    let a2 = h.open_with_token("alice", Some("laptop"));
    let b = h.open_with_token("bob", None);
    let anon = h.open_anonymous();
    h.subscribe(a, "chat.*");
    h.subscribe(a2, "chat.*");
    h.subscribe(b, "news.**");
    h.open_with_token("alice", Some("phone")); // replaces `a`
    h.open(Handshake {
        token: Some("bad".into()),
        ..Handshake::default()
    })
    .unwrap_err();
    h.frame(anon, r#"{"type":"ping"}"#);
    h.drain();
    let s = h.sb.stats();
    assert_eq!(s.connections, 4);
    assert_eq!(s.authenticated, 3);
    assert_eq!(s.users, 2);
    assert_eq!(s.subscriptions, 2);
    assert_eq!(s.topics, 2);
    assert_eq!(s.opened_total, 5);
    assert_eq!(s.rejected_total, 1);
    assert_eq!(s.replaced_total, 1);
    assert_eq!(s.evicted_total, 0);
    assert_eq!(s.frames_in_total, 4);
    // auth_success x4, subscribed x3, pong x1
    assert_eq!(s.sends_total, 8);
}
