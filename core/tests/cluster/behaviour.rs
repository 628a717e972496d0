//! One behaviour of cluster mode per test, over the simulated bus.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::value::RawValue;
use switchboard_core::cluster::{BusAction, ClusterStatus, ConnLocation, Subscription};
use switchboard_core::{CloseCode, Instant};

use crate::sim_bus::Cluster;

const TTL: Duration = Duration::from_secs(3);
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

fn subscribe_confirmed(cl: &mut Cluster, c: usize, pattern: &str) {
    cl.subscribe(c, pattern);
    cl.deliver_all();
    assert!(
        cl.clients[c].subscribed_to(pattern),
        "client {c} subscribed to {pattern}: {:?}",
        cl.clients[c].frames
    );
}

/// Every live node's count of `user`.
fn counts(cl: &Cluster, user: &str) -> Vec<usize> {
    (0..cl.nodes.len())
        .filter(|&n| cl.nodes[n].alive())
        .map(|n| cl.sb(n).connection_count(user))
        .collect()
}

fn topic_subscribes(cl: &Cluster, node: usize) -> Vec<String> {
    cl.nodes[node]
        .bus_log
        .iter()
        .filter_map(|a| match a {
            BusAction::Subscribe(Subscription::Topics(g)) => Some(format!("+{g}")),
            BusAction::Unsubscribe(Subscription::Topics(g)) => Some(format!("-{g}")),
            _ => None,
        })
        .collect()
}

fn globs(cl: &Cluster, node: usize) -> Vec<String> {
    cl.bus.topic_globs(node).into_iter().collect()
}

#[test]
fn a_publish_on_one_node_reaches_matching_subscribers_on_every_node_exactly_once() {
    let mut cl = Cluster::joined(3, TTL);
    let publisher = cl.open(A, "pub", None);
    let local = cl.open(A, "u1", None);
    // On b, one connection with three overlapping patterns (three globs, two of them matching
    // twice over on the bus), and others with one each.
    let overlapping = cl.open(B, "u2", None);
    let b_star = cl.open(B, "u3", None);
    let b_deep = cl.open(B, "u3", Some("tablet"));
    let b_other = cl.open(B, "u4", None);
    let c_exact = cl.open(C, "u5", None);
    let c_all = cl.open(C, "u6", None);
    for p in ["chat.*", "chat.**", "**"] {
        subscribe_confirmed(&mut cl, overlapping, p);
    }
    subscribe_confirmed(&mut cl, local, "chat.*");
    subscribe_confirmed(&mut cl, b_star, "chat.*");
    subscribe_confirmed(&mut cl, b_deep, "chat.**");
    subscribe_confirmed(&mut cl, b_other, "news.*");
    subscribe_confirmed(&mut cl, c_exact, "chat.lobby");
    subscribe_confirmed(&mut cl, c_all, "**");

    let lobby = cl.publish(publisher, "chat.lobby");
    let deep = cl.publish(publisher, "chat.lobby.x");
    let server = cl.app_publish(A, "chat.lobby");
    cl.deliver_all();
    cl.assert_ok();

    let expect = |c: usize, tags: &[u64]| (c, tags.to_vec());
    for (c, want) in [
        expect(publisher, &[]),
        expect(local, &[lobby, server]),
        expect(overlapping, &[lobby, deep, server]),
        expect(b_star, &[lobby, server]),
        expect(b_deep, &[lobby, deep, server]),
        expect(b_other, &[]),
        expect(c_exact, &[lobby, server]),
        expect(c_all, &[lobby, deep, server]),
    ] {
        assert_eq!(cl.clients[c].tags(), want, "messages of client {c}");
    }
}

#[test]
fn publishes_arrive_in_the_order_they_were_published() {
    let mut cl = Cluster::joined(3, TTL);
    let publisher = cl.open(A, "pub", None);
    let local = cl.open(A, "u1", None);
    let remote = cl.open(B, "u2", None);
    let far = cl.open(C, "u3", None);
    subscribe_confirmed(&mut cl, local, "chat.**");
    for p in ["chat.*", "**", "chat.**"] {
        subscribe_confirmed(&mut cl, remote, p);
    }
    subscribe_confirmed(&mut cl, far, "*.lobby");
    let mut sent = Vec::new();
    for i in 0..1_000u64 {
        let tag = if i % 3 == 0 {
            cl.app_publish(A, "chat.lobby")
        } else {
            cl.publish(publisher, "chat.lobby")
        };
        sent.push(tag);
        // Deliveries interleave with publishing, unevenly between the nodes.
        if i % 7 == 0 {
            cl.deliver(B);
        }
        if i % 11 == 0 {
            for _ in 0..5 {
                cl.deliver(C);
            }
        }
    }
    cl.deliver_all();
    cl.assert_ok();
    for c in [local, remote, far] {
        assert_eq!(cl.clients[c].tags(), sent, "order at client {c}");
    }
}

#[test]
fn subscribed_is_answered_only_once_the_bus_confirmed_the_glob() {
    let mut cl = Cluster::joined(2, TTL);
    let publisher = cl.open(A, "pub", None);
    let first = cl.open(B, "u1", None);
    let second = cl.open(B, "u2", None);
    cl.deliver_all();

    cl.subscribe(first, "chat.*");
    assert!(
        !cl.clients[first].subscribed_to("chat.*"),
        "before the bus confirmed"
    );
    assert_eq!(topic_subscribes(&cl, B), ["+chat.*"]);
    // The bus confirms; from then on what is published reaches it.
    assert!(cl.deliver(B));
    assert!(cl.clients[first].subscribed_to("chat.*"));
    let tag = cl.publish(publisher, "chat.lobby");
    cl.deliver_all();
    assert_eq!(cl.clients[first].tags(), [tag]);

    // A glob confirmed already answers at once.
    cl.subscribe(second, "chat.**");
    assert!(cl.clients[second].subscribed_to("chat.**"));
    assert_eq!(topic_subscribes(&cl, B), ["+chat.*"]);

    // A presence topic needs no glob: each node derives its pushes.
    cl.subscribe(second, "presence.u1");
    assert!(cl.clients[second].subscribed_to("presence.u1"));

    // While the bus is lost, a subscription is routed as far as it can be, here: at once. And
    // one waiting for the bus when it is lost is answered then.
    cl.subscribe(first, "news.*");
    assert!(!cl.clients[first].subscribed_to("news.*"));
    cl.lose(B);
    assert!(cl.clients[first].subscribed_to("news.*"));
    cl.subscribe(first, "sport.*");
    assert!(cl.clients[first].subscribed_to("sport.*"));
    // Back on the bus, a new glob waits for its confirmation again.
    cl.restore(B);
    cl.subscribe(second, "weather.*");
    assert!(!cl.clients[second].subscribed_to("weather.*"));
    cl.deliver_all();
    assert!(cl.clients[second].subscribed_to("weather.*"));
    cl.assert_ok();
}

#[test]
fn a_subscribed_held_for_one_pattern_is_not_released_by_unsubscribing_another_of_the_same_glob() {
    let mut cl = Cluster::joined(2, TTL);
    let c = cl.open(B, "u1", None);
    cl.deliver_all();
    // `news.*` and `news.**` share the glob `news.*`.
    cl.subscribe(c, "news.*");
    cl.subscribe(c, "news.**");
    cl.unsubscribe(c, "news.*");
    let kinds: Vec<(String, String)> = cl.clients[c]
        .frames
        .iter()
        .skip(1)
        .map(|f| (f["type"].to_string(), f["topic"].to_string()))
        .collect();
    assert_eq!(
        kinds,
        [
            (r#""subscribed""#.into(), r#""news.*""#.into()),
            (r#""unsubscribed""#.into(), r#""news.*""#.into()),
        ],
        "the one given up is answered; `news.**` still waits for the bus"
    );
    cl.deliver_all();
    assert!(cl.clients[c].subscribed_to("news.**"));
    cl.assert_ok();
}

#[test]
fn a_confirmation_of_a_subscribe_made_before_an_unsubscribe_answers_no_later_subscribe() {
    let mut cl = Cluster::joined(2, TTL);
    let c = cl.open(B, "u1", None);
    let other = cl.open(B, "u2", None);
    cl.deliver_all();
    cl.subscribe(c, "x.y");
    cl.unsubscribe(c, "x.y");
    cl.subscribe(other, "x.y");
    assert_eq!(topic_subscribes(&cl, B), ["+x.y", "-x.y", "+x.y"]);
    // The bus answers the first Subscribe: the second is not confirmed yet (the bus may not have
    // processed it, and it processed an Unsubscribe in between).
    assert!(cl.deliver(B));
    assert!(
        !cl.clients[other].subscribed_to("x.y"),
        "{:?}",
        cl.clients[other].frames
    );
    assert!(cl.deliver(B));
    assert!(cl.clients[other].subscribed_to("x.y"));
    cl.assert_ok();
}

#[test]
fn subscribing_again_to_a_pattern_still_waiting_for_the_bus_waits_too() {
    let mut cl = Cluster::joined(2, TTL);
    let c = cl.open(B, "u1", None);
    cl.deliver_all();
    cl.subscribe(c, "chat.*");
    cl.subscribe(c, "chat.*");
    assert!(
        cl.clients[c].of_type("subscribed").is_empty(),
        "{:?}",
        cl.clients[c].frames
    );
    cl.deliver_all();
    assert_eq!(cl.clients[c].of_type("subscribed").len(), 2);
    cl.assert_ok();
}

#[test]
fn a_node_listens_only_to_globs_its_connections_need_from_first_holder_to_last() {
    let mut cl = Cluster::joined(2, TTL);
    let x = cl.open(B, "u1", None);
    let y = cl.open(B, "u2", None);
    assert!(globs(&cl, B).is_empty());
    subscribe_confirmed(&mut cl, x, "chat.*");
    assert_eq!(globs(&cl, B), ["chat.*"]);
    // A second holder of the same glob (another pattern, another connection) adds nothing.
    subscribe_confirmed(&mut cl, y, "chat.**");
    subscribe_confirmed(&mut cl, x, "chat.**");
    // Presence topics have no glob.
    subscribe_confirmed(&mut cl, y, "presence.u1");
    subscribe_confirmed(&mut cl, y, "presence.*");
    assert_eq!(topic_subscribes(&cl, B), ["+chat.*"]);
    cl.unsubscribe(x, "chat.*");
    cl.unsubscribe(x, "chat.**");
    assert_eq!(globs(&cl, B), ["chat.*"], "y still needs it");
    // The last holder leaves (by closing): the node stops listening.
    cl.close(y);
    assert!(globs(&cl, B).is_empty());
    assert_eq!(topic_subscribes(&cl, B), ["+chat.*", "-chat.*"]);
    assert!(globs(&cl, A).is_empty(), "a needs no glob");
    cl.assert_ok();
}

#[test]
fn a_newer_login_on_another_node_replaces_the_older_with_4001_once() {
    let mut cl = Cluster::joined(3, TTL);
    let old = cl.open(A, "u", Some("phone"));
    let laptop = cl.open(A, "u", Some("laptop"));
    let bare = cl.open(C, "u", None);
    cl.deliver_all();
    cl.advance(ms(5));
    let new = cl.open(B, "u", Some("phone"));
    cl.deliver_all();
    cl.run_for(TTL);
    cl.assert_ok();
    assert_eq!(cl.clients[old].closes, [CloseCode::SESSION_REPLACED.0]);
    for c in [new, laptop, bare] {
        assert!(
            cl.clients[c].live(),
            "client {c}: {:?}",
            cl.clients[c].closes
        );
    }
    assert_eq!(counts(&cl, "u"), [3, 3, 3]);
    assert_eq!(cl.live_of("u"), [laptop, bare, new]);
}

#[test]
fn simultaneous_logins_on_two_nodes_leave_exactly_one_winner_on_every_node() {
    for first in [A, B] {
        let mut cl = Cluster::joined(2, TTL);
        let a = cl.open(A, "u", Some("phone"));
        let b = cl.open(B, "u", Some("phone"));
        // Both authenticated in the same millisecond on the same device; each asked for its
        // epoch (a first).
        assert_eq!(
            cl.clients[a].authenticated_at,
            cl.clients[b].authenticated_at
        );
        assert_eq!(cl.clients[a].device, cl.clients[b].device);
        assert_eq!(cl.bus.ports[A].queue.len(), 1);
        assert_eq!(cl.bus.ports[B].queue.len(), 1);
        let second = 1 - first;
        assert!(cl.deliver(first));
        assert!(cl.deliver(second));
        cl.deliver_all();
        cl.assert_ok();
        // The rank decides, whatever the order of delivery: b took the later epoch.
        assert_eq!(
            cl.clients[a].closes,
            [4001],
            "epochs delivered {first} first"
        );
        assert!(cl.clients[b].live());
        assert_eq!(counts(&cl, "u"), [1, 1]);
        let b_text = cl.clients[b].conn_text.clone();
        let seen_on_a: Vec<String> = cl
            .sb(A)
            .remote_connections("u")
            .map(|r| r.id().to_owned())
            .collect();
        assert_eq!(seen_on_a, [b_text]);
        assert_eq!(cl.sb(B).remote_connections("u").count(), 0);
    }
}

#[test]
fn presence_counts_are_cluster_wide_in_pushes_and_snapshots() {
    let mut cl = Cluster::joined(3, TTL);
    let watcher_c = cl.open(C, "w", None);
    subscribe_confirmed(&mut cl, watcher_c, "presence.u");
    assert_eq!(cl.clients[watcher_c].presence_counts("u"), [0]);
    let phone = cl.open(A, "u", Some("phone"));
    cl.deliver_all();
    let laptop = cl.open(B, "u", Some("laptop"));
    cl.deliver_all();
    assert_eq!(cl.clients[watcher_c].presence_counts("u"), [0, 1, 2]);
    let watcher_a = cl.open(A, "w", None);
    subscribe_confirmed(&mut cl, watcher_a, "presence.u");
    assert_eq!(
        cl.clients[watcher_a].presence_counts("u"),
        [2],
        "the snapshot"
    );
    assert_eq!(counts(&cl, "u"), [2, 2, 2]);
    for n in [A, B, C] {
        assert!(cl.sb(n).online_users().any(|u| u == "u"));
    }
    cl.close(phone);
    cl.deliver_all();
    assert_eq!(counts(&cl, "u"), [1, 1, 1]);
    cl.close(laptop);
    cl.deliver_all();
    assert_eq!(counts(&cl, "u"), [0, 0, 0]);
    assert_eq!(cl.clients[watcher_c].presence_counts("u"), [0, 1, 2, 1, 0]);
    assert_eq!(cl.clients[watcher_a].presence_counts("u"), [2, 1, 0]);
    // The application on each node heard u come online once and go offline once.
    for n in [A, B, C] {
        let events: Vec<bool> = cl.nodes[n]
            .presence
            .iter()
            .filter(|(u, _, _)| u == "u")
            .map(|(_, online, _)| *online)
            .collect();
        assert_eq!(events, [true, false], "node {n}");
        assert!(!cl.sb(n).is_online("u"));
    }
    cl.assert_ok();
}

#[test]
fn a_dead_node_users_go_offline_on_the_others_within_the_ttl_with_one_offline_push() {
    let mut cl = Cluster::joined(3, TTL);
    cl.open(A, "u", Some("phone"));
    cl.open(A, "u", Some("laptop"));
    cl.deliver_all();
    let watcher = cl.open(B, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    cl.run_for(TTL);
    assert_eq!(counts(&cl, "u"), [2, 2, 2]);
    let died = cl.t_ms;
    cl.kill(A);
    let step = ms(50);
    let mut offline_at = None;
    for _ in 0..200 {
        cl.advance(step);
        cl.deliver_all();
        if counts(&cl, "u") == [0, 0] {
            offline_at = Some(cl.t_ms);
            break;
        }
        assert_eq!(counts(&cl, "u"), [2, 2], "at {} ms", cl.t_ms);
    }
    let offline_at = offline_at.expect("u went offline");
    let ttl = TTL.as_millis() as u64;
    assert!(
        offline_at - died <= ttl,
        "{} ms after the death",
        offline_at - died
    );
    assert!(
        offline_at - died >= ttl - ttl / 3 - 50,
        "not before a heartbeat was missed"
    );
    cl.run_for(TTL * 2);
    assert_eq!(cl.clients[watcher].presence_counts("u"), [2, 0]);
    for n in [B, C] {
        let offline: Vec<_> = cl.nodes[n]
            .presence
            .iter()
            .filter(|(u, online, _)| u == "u" && !online)
            .collect();
        assert_eq!(offline.len(), 1, "node {n}: {:?}", cl.nodes[n].presence);
        assert_eq!(cl.sb(n).node_count(), 2);
    }
    cl.settle();
    assert_eq!(cl.clients[watcher].presence_counts("u"), [2, 0]);
    cl.assert_ok();
}

#[test]
fn a_node_wrongly_expired_while_its_messages_were_late_is_relearned_when_heard_again() {
    let mut cl = Cluster::joined(2, TTL);
    cl.open(A, "u", Some("phone"));
    cl.open(A, "u", None);
    cl.deliver_all();
    let watcher = cl.open(B, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    assert_eq!(counts(&cl, "u"), [2, 2]);
    // b's events are held back (a stall, a lagging bus) while its clock runs past the ttl: it
    // takes a for dead, and a, hearing b, just as wrongly takes b for dead.
    cl.advance(TTL + ms(1));
    assert_eq!(counts(&cl, "u"), [2, 0]);
    // Everything late arrives: a is heard again, and b learns a's connections anew.
    cl.deliver_all();
    cl.run_for(TTL * 2);
    assert_eq!(counts(&cl, "u"), [2, 2]);
    assert_eq!(cl.sb(B).node_count(), 2);
    assert_eq!(cl.clients[watcher].presence_counts("u"), [2, 0, 2]);
    cl.assert_ok();
}

#[test]
fn a_publish_whose_copies_straddle_an_expiry_is_still_delivered_once() {
    let mut cl = Cluster::joined(2, TTL);
    let publisher = cl.open(A, "p", None);
    let sub = cl.open(B, "s", None);
    // Two globs match the topic: the bus carries each publish to b twice.
    subscribe_confirmed(&mut cl, sub, "chat.*");
    subscribe_confirmed(&mut cl, sub, "*.lobby");
    assert_eq!(globs(&cl, B), ["*.lobby", "chat.*"]);
    cl.deliver_all();
    let tag = cl.publish(publisher, "chat.lobby");
    assert_eq!(cl.bus.ports[B].queue.len(), 2);
    assert!(cl.deliver(B));
    assert_eq!(cl.clients[sub].tags(), [tag]);
    // b's clock runs past the ttl before the second copy: it takes a for dead meanwhile.
    cl.advance(TTL + ms(1));
    cl.deliver_all();
    cl.run_for(TTL);
    let next = cl.publish(publisher, "chat.lobby");
    cl.deliver_all();
    assert_eq!(cl.clients[sub].tags(), [tag, next]);
    cl.assert_ok();
}

#[test]
fn a_user_who_reconnects_elsewhere_counts_only_the_new_connection() {
    // The old connection closed first (the client's side closed, its node noticed).
    let mut cl = Cluster::joined(3, TTL);
    let watcher = cl.open(C, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    let old = cl.open(A, "u", Some("phone"));
    cl.deliver_all();
    cl.close(old);
    let new = cl.open(B, "u", Some("phone"));
    cl.deliver_all();
    assert!(cl.clients[new].live());
    assert_eq!(counts(&cl, "u"), [1, 1, 1]);
    cl.assert_ok();

    // The old connection is a zombie its node has not noticed yet: the new one replaces it.
    let mut cl = Cluster::joined(3, TTL);
    let watchers: Vec<usize> = [A, B, C]
        .into_iter()
        .map(|n| {
            let w = cl.open(n, "w", None);
            subscribe_confirmed(&mut cl, w, "presence.u");
            w
        })
        .collect();
    let old = cl.open(A, "u", Some("phone"));
    cl.deliver_all();
    cl.advance(ms(20));
    let new = cl.open(B, "u", Some("phone"));
    cl.deliver_all();
    assert_eq!(cl.clients[old].closes, [4001]);
    assert!(cl.clients[new].live());
    assert_eq!(counts(&cl, "u"), [1, 1, 1]);
    for (n, &w) in watchers.iter().enumerate() {
        let pushes = cl.clients[w].presence_counts("u");
        assert!(
            pushes.iter().all(|&k| k <= 1) && pushes.last() == Some(&1),
            "node {n}: u's count went {pushes:?}"
        );
        assert!(
            cl.nodes[n]
                .presence
                .iter()
                .all(|(u, online, _)| u != "u" || *online),
            "node {n} never heard u go offline: {:?}",
            cl.nodes[n].presence
        );
    }
    cl.assert_ok();

    // The old connection's node died: the user reconnects elsewhere before it expires.
    let mut cl = Cluster::joined(3, TTL);
    let watcher = cl.open(C, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    cl.open(A, "u", Some("phone"));
    cl.deliver_all();
    cl.advance(ms(20));
    cl.kill(A);
    let new = cl.open(B, "u", Some("phone"));
    cl.deliver_all();
    assert_eq!(
        counts(&cl, "u"),
        [1, 1],
        "at once, not once a's ttl is over"
    );
    cl.settle();
    assert!(cl.clients[new].live());
    assert_eq!(counts(&cl, "u"), [1, 1]);
    assert_eq!(cl.clients[watcher].presence_counts("u"), [0, 1]);
    cl.assert_ok();
}

#[test]
fn while_the_bus_is_lost_each_node_serves_its_own_clients_and_nothing_is_delivered_twice() {
    let mut cl = Cluster::joined(2, TTL);
    let pa = cl.open(A, "pa", None);
    let pb = cl.open(B, "pb", None);
    let sa = cl.open(A, "sa", None);
    let sb = cl.open(B, "sb", None);
    for p in ["chat.*", "chat.**"] {
        subscribe_confirmed(&mut cl, sa, p);
        subscribe_confirmed(&mut cl, sb, p);
    }
    let before = cl.publish(pa, "chat.lobby");
    cl.deliver_all();

    cl.lose_all();
    assert_eq!(cl.sb(A).cluster_status(), ClusterStatus::Degraded);
    let from_a = cl.publish(pa, "chat.lobby");
    let from_b = cl.publish(pb, "chat.lobby");
    // Logins and subscriptions are served alone meanwhile.
    let late = cl.open(B, "late", None);
    cl.subscribe(late, "chat.*");
    assert!(cl.clients[late].subscribed_to("chat.*"));
    let local_b = cl.publish(pb, "chat.lobby");
    assert_eq!(cl.clients[late].tags(), [local_b]);

    cl.restore_all();
    cl.deliver_all();
    assert_eq!(cl.sb(A).cluster_status(), ClusterStatus::Joined);
    let after = cl.publish(pa, "chat.lobby");
    cl.deliver_all();
    let after_b = cl.app_publish(B, "chat.lobby");
    cl.deliver_all();
    cl.assert_ok();
    assert_eq!(cl.clients[sa].tags(), [before, from_a, after, after_b]);
    assert_eq!(
        cl.clients[sb].tags(),
        [before, from_b, local_b, after, after_b]
    );
    assert_eq!(cl.clients[late].tags(), [local_b, after, after_b]);
}

#[test]
fn what_a_node_publishes_between_the_bus_returning_and_joining_reaches_the_others() {
    let mut cl = Cluster::joined(2, TTL);
    let sub = cl.open(A, "s", None);
    subscribe_confirmed(&mut cl, sub, "chat.*");
    let user = cl.open(A, "u", None);
    let publisher = cl.open(B, "p", None);
    cl.deliver_all();
    cl.lose(B);
    cl.restore(B);
    // b is on the bus again, but has not heard its subscriptions confirmed yet.
    assert_eq!(cl.sb(B).cluster_status(), ClusterStatus::Degraded);
    let tag = cl.publish(publisher, "chat.lobby");
    cl.input(B, |sb, now| sb.send_to_user(now, "u", &raw("7")));
    cl.deliver_all();
    assert_eq!(cl.sb(B).cluster_status(), ClusterStatus::Joined);
    assert_eq!(cl.clients[sub].tags(), [tag]);
    assert_eq!(cl.clients[user].of_type("push").len(), 1);

    // Its goodbye too: drained before joining, its users leave the others' presence at once.
    assert_eq!(cl.sb(A).connection_count("p"), 1);
    cl.lose(B);
    cl.restore(B);
    let deadline = Instant::from_millis(cl.t_ms + 1_000);
    cl.input(B, |sb, now| sb.shutdown(now, deadline));
    cl.deliver_all();
    assert_eq!(cl.sb(A).connection_count("p"), 0);
    assert_eq!(cl.sb(A).node_count(), 1);
    cl.assert_ok();
}

#[test]
fn a_long_outage_does_not_make_the_nodes_take_each_other_for_dead_when_the_bus_returns() {
    let mut cl = Cluster::joined(2, TTL);
    cl.open(A, "u", None);
    cl.deliver_all();
    let watcher = cl.open(B, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    cl.lose_all();
    // Nobody is judged while nobody can be heard.
    cl.run_for(TTL * 3);
    assert_eq!(counts(&cl, "u"), [1, 1]);
    // b is back and joined before a's snapshot reaches it, and its timers run meanwhile: a
    // gets a full ttl to be heard again.
    cl.restore_all();
    assert!(cl.deliver(B) && cl.deliver(B));
    assert_eq!(cl.sb(B).cluster_status(), ClusterStatus::Joined);
    cl.advance(ms(1));
    assert_eq!(counts(&cl, "u"), [1, 1]);
    cl.deliver_all();
    cl.run_for(TTL * 2);
    assert_eq!(counts(&cl, "u"), [1, 1]);
    assert_eq!(cl.clients[watcher].presence_counts("u"), [1]);
    cl.assert_ok();
}

#[test]
fn after_the_bus_returns_nodes_resubscribe_reannounce_and_repair_a_broken_session_policy() {
    for first in [A, B] {
        let mut cl = Cluster::joined(2, TTL);
        let laptop = cl.open(A, "u", Some("laptop"));
        let sub_a = cl.open(A, "s", None);
        subscribe_confirmed(&mut cl, sub_a, "chat.*");
        cl.deliver_all();

        cl.lose_all();
        cl.advance(ms(10));
        let older = cl.open(A, "u", Some("phone"));
        cl.advance(ms(10));
        let newer = cl.open(B, "u", Some("phone"));
        let v = cl.open(B, "v", None);
        cl.close(laptop);
        // Each side alone sees no conflict.
        assert!(cl.clients[older].live() && cl.clients[newer].live());

        // The bus returns, one node after the other; each resubscribes, announces, claims.
        cl.restore(first);
        cl.deliver_all();
        cl.restore(1 - first);
        cl.deliver_all();
        cl.assert_ok();
        assert_eq!(globs(&cl, A), ["chat.*"], "a resubscribed");
        assert_eq!(cl.clients[older].closes, [4001], "restored {first} first");
        assert!(cl.clients[newer].live() && cl.clients[v].live());
        assert_eq!(counts(&cl, "u"), [1, 1]);
        assert_eq!(counts(&cl, "v"), [1, 1]);
        assert_eq!(counts(&cl, "s"), [1, 1]);
        let p = cl.open(B, "p", None);
        let tag = cl.publish(p, "chat.x");
        cl.deliver_all();
        assert_eq!(cl.clients[sub_a].tags(), [tag]);
        cl.run_for(TTL * 2);
        assert_eq!(cl.clients[older].closes, [4001]);
        cl.assert_ok();
    }
}

#[test]
fn a_draining_node_withdraws_its_presence_at_once() {
    let mut cl = Cluster::joined(3, TTL);
    let u = cl.open(A, "u", None);
    let both = cl.open(A, "v", Some("phone"));
    cl.open(C, "v", Some("laptop"));
    cl.deliver_all();
    let watcher = cl.open(B, "w", None);
    subscribe_confirmed(&mut cl, watcher, "presence.u");
    assert_eq!(counts(&cl, "u"), [1, 1, 1]);
    let deadline = Instant::from_millis(cl.t_ms + 5_000);
    cl.input(A, |sb, now| sb.shutdown(now, deadline));
    assert_eq!(cl.clients[u].closes, [1001]);
    assert_eq!(cl.clients[both].closes, [1001]);
    cl.deliver_all();
    assert_eq!(cl.sb(B).connection_count("u"), 0);
    assert_eq!(cl.sb(C).connection_count("u"), 0);
    assert_eq!(cl.sb(B).connection_count("v"), 1);
    assert_eq!(cl.sb(B).node_count(), 2);
    assert_eq!(cl.clients[watcher].presence_counts("u"), [1, 0]);
    cl.assert_ok();
}

#[test]
fn sends_broadcasts_and_disconnects_reach_connections_on_every_node() {
    let mut cl = Cluster::joined(3, TTL);
    let phone = cl.open(A, "u", Some("phone"));
    let laptop = cl.open(B, "u", Some("laptop"));
    let v = cl.open(C, "v", None);
    let w = cl.open(A, "w", None);
    cl.deliver_all();
    let pushes = |cl: &Cluster, c: usize| -> Vec<String> {
        cl.clients[c]
            .of_type("push")
            .iter()
            .map(|f| f["data"].to_string())
            .collect()
    };

    let n = cl.input(C, |sb, now| sb.send_to_user(now, "u", &raw("1")));
    assert_eq!(n, 0, "none of u's connections is on c");
    cl.deliver_all();
    let n = cl.input(A, |sb, now| {
        sb.send_to_device(now, "u", "laptop", &raw("2"))
    });
    assert_eq!(n, 0);
    cl.deliver_all();
    cl.input(B, |sb, now| {
        sb.send_to_users(now, ["u", "v", "u"], &raw("3"))
    });
    cl.deliver_all();
    let n = cl.input(A, |sb, now| sb.broadcast(now, &raw("4")));
    assert_eq!(n, 2);
    cl.deliver_all();
    let laptop_id = cl.clients[laptop].conn_text.clone();
    let r = cl.input(C, |sb, now| sb.send_to_conn_id(now, &laptop_id, &raw("5")));
    assert_eq!(r, Ok(false), "on another node");
    cl.deliver_all();
    assert_eq!(pushes(&cl, phone), ["1", "3", "4"]);
    assert_eq!(pushes(&cl, laptop), ["1", "2", "3", "4", "5"]);
    assert_eq!(pushes(&cl, v), ["3", "4"]);
    assert_eq!(pushes(&cl, w), ["4"]);

    let n = cl.input(C, |sb, now| {
        sb.disconnect_user(now, "u", Some("laptop"), CloseCode(4000), "bye")
    });
    assert_eq!(n, Ok(0));
    cl.deliver_all();
    assert_eq!(cl.clients[laptop].closes, [4000]);
    assert!(cl.clients[phone].live());
    let n = cl.input(C, |sb, now| {
        sb.disconnect_user(now, "u", None, CloseCode(4000), "bye")
    });
    assert_eq!(n, Ok(0));
    cl.deliver_all();
    assert_eq!(cl.clients[phone].closes, [4000]);
    assert!(cl.clients[v].live() && cl.clients[w].live());
    assert_eq!(counts(&cl, "u"), [0, 0, 0]);
    cl.assert_ok();
}

#[test]
fn connection_ids_are_unique_across_nodes_and_runs() {
    let mut cl = Cluster::joined(2, TTL);
    let mut opened = Vec::new();
    for i in 0..4 {
        opened.push(cl.open(A, "u", None));
        opened.push(cl.open(B, "u", None));
        if i % 2 == 0 {
            cl.close(opened[opened.len() - 2]);
        }
    }
    cl.deliver_all();
    let old_run = cl.clients[opened[2]].conn_text.clone();
    assert_eq!(
        cl.sb(B).locate_conn(&old_run),
        ConnLocation::Elsewhere("a"),
        "{old_run}"
    );
    let old_boot = cl.nodes[A].boot;
    cl.kill(A);
    cl.restart(A);
    assert_ne!(cl.nodes[A].boot, old_boot);
    cl.deliver_all();
    for _ in 0..4 {
        opened.push(cl.open(A, "u", None));
    }
    cl.deliver_all();
    let texts: Vec<&str> = opened
        .iter()
        .map(|&c| cl.clients[c].conn_text.as_str())
        .collect();
    let unique: BTreeSet<&str> = texts.iter().copied().collect();
    assert_eq!(unique.len(), texts.len(), "{texts:?}");
    for &c in &opened {
        let client = &cl.clients[c];
        let prefix = format!("{}.", cl.nodes[client.node].name);
        assert!(
            client.conn_text.starts_with(&prefix),
            "{}",
            client.conn_text
        );
    }
    // The old run's ids name no connection on the new run, nor elsewhere once it is forgotten.
    assert_eq!(cl.sb(A).locate_conn(&old_run), ConnLocation::Nowhere);
    assert_eq!(cl.sb(B).locate_conn(&old_run), ConnLocation::Nowhere);
    let new_id = cl.clients[*opened.last().unwrap()].conn_text.clone();
    assert!(matches!(
        cl.sb(A).locate_conn(&new_id),
        ConnLocation::Here(_)
    ));
    assert_eq!(cl.sb(B).locate_conn(&new_id), ConnLocation::Elsewhere("a"));
    cl.assert_ok();
}

#[test]
fn no_message_on_a_held_subscription_comes_before_its_subscribed() {
    let mut cl = Cluster::joined(2, TTL);
    let local = cl.open(B, "pub-b", None);
    let watcher = cl.open(B, "watcher", None);
    cl.deliver_all();
    // Held until the bus confirms `*`; meanwhile a local publish and a presence change that
    // `**` matches happen on the same node.
    cl.subscribe(watcher, "**");
    assert!(!cl.clients[watcher].subscribed_to("**"));
    cl.publish(local, "chat.lobby");
    cl.open(B, "newcomer", None);
    cl.deliver_all();
    let frames = &cl.clients[watcher].frames;
    let first = frames
        .iter()
        .position(|f| f["type"] == "subscribed" && f["topic"] == "**")
        .expect("subscribed once the bus confirmed");
    let early: Vec<_> = frames[..first]
        .iter()
        .filter(|f| f["type"] == "message" || f["type"] == "presence")
        .collect();
    assert!(early.is_empty(), "before its subscribed: {early:?}");
    // From `subscribed` on, it hears what matches.
    let tag = cl.publish(local, "chat.lobby");
    cl.deliver_all();
    assert!(cl.clients[watcher].tags().contains(&tag));
}
