//! Determinism: the same inputs give byte-identical actions.

use switchboard_core::{Action, Config, Handshake};

use crate::harness::*;

/// A scripted session touching every kind of output; returns every action in order.
fn scripted_run() -> Vec<Action> {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.ping_interval = secs(1);
        config.pong_timeout = ms(2500);
        config.auth_timeout = ms(1500);
        config
    });
    let mut log = Vec::new();
    let mut conns = Vec::new();
    for (i, user) in ["alice", "bob", "carol", "dave", "erin", "frank"]
        .iter()
        .enumerate()
    {
        let device = if i % 2 == 0 { Some("phone") } else { None };
        let conn = h
            .open(Handshake {
                token: Some(token(user)),
                device: device.map(Into::into),
                ..Handshake::default()
            })
            .unwrap();
        conns.push(conn);
    }
    let anon = h.open(Handshake::default()).unwrap();
    for (i, &conn) in conns.iter().enumerate() {
        h.frame(conn, r#"{"type":"subscribe","topic":"chat.*"}"#);
        h.frame(conn, r#"{"type":"subscribe","topic":"presence.*"}"#);
        if i % 2 == 1 {
            h.frame(conn, r#"{"type":"subscribe","topic":"chat.**"}"#);
        }
    }
    h.frame(
        conns[0],
        r#"{"type":"message","topic":"chat.a","data":{"x":1},"id":"1"}"#,
    );
    h.sb.publish(h.now, "chat.b", &raw("2"), None).unwrap();
    h.sb.broadcast(h.now, &raw("3"));
    h.sb.send_to_users(h.now, ["alice", "bob", "alice"], &raw("4"));
    h.open(Handshake {
        token: Some(token("alice")),
        device: Some("phone".into()),
        ..Handshake::default()
    })
    .unwrap();
    h.frame(anon, r#"{"type":"ping"}"#);
    log.extend(h.drain());
    for step in 1..=12 {
        h.advance_to(ms(250 * step));
        if step % 4 == 0 {
            // Odd ones answer and stay online until the shutdown; even ones become zombies.
            for &conn in conns.iter().skip(1).step_by(2) {
                h.sb.handle_pong(h.now, conn);
            }
        }
        log.extend(h.drain());
    }
    h.sb.shutdown(h.now, h.now.instant + secs(1));
    h.advance(secs(2));
    log.extend(h.drain());
    log
}

#[test]
fn the_same_inputs_give_byte_identical_actions() {
    let first = scripted_run();
    let second = scripted_run();
    assert!(first.len() > 50, "the script exercises the core");
    assert_eq!(first, second);
}
