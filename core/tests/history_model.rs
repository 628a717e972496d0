//! Model-based test of history and recovery: random publishes (of random sizes), subscribes
//! with and without `since`, unsubscribes, disconnects, reconnects and the passing of time,
//! under small bounds, so that every bound is reached often.
//!
//! A reference log keeps every message ever published, per (topic, epoch). After every step:
//! - what the core keeps (read with [`Switchboard::history`]) is, per topic, a contiguous run
//!   of the log ending at the stream's offset, at most `history_size` long, none of it
//!   `history_ttl` old, and the kept bytes are what the stats say, within `history_max_bytes`;
//! - a subscribe with `since` is `recovered: true` exactly when its epoch is the stream's, its
//!   offset is not ahead, every message after it was still kept just before, and their bytes
//!   fit `max_outbound_bytes`; then the replay is exactly those messages, in order;
//! - every connection receives a topic's messages each once, in offset order, with no gap:
//!   after `subscribed` at offset o, the next is o + 1 of the same epoch (or 1 of a new one,
//!   when the stream was lost), replayed or live alike.
//!
//! 500 cases per run; set `SWITCHBOARD_MODEL_CASES` for more.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{Action, Config, ConnId, Frame, Handshake, Instant, Now, Switchboard};

const SECRET: &[u8] = b"history-model";
const WALL0: u64 = 1_795_428_000_000;
const TOPICS: [&str; 3] = ["a", "b.c", "d"];
const CLIENTS: usize = 3;

#[derive(Clone, Debug)]
enum SinceChoice {
    None,
    /// The last position this client saw on the topic (what a real client sends).
    LastSeen,
    /// Its last position moved back by this many messages.
    Earlier(u64),
    /// Past the stream.
    Ahead,
    /// An epoch no stream has.
    ForeignEpoch,
}

#[derive(Clone, Debug)]
enum Op {
    Connect {
        client: usize,
    },
    Disconnect {
        client: usize,
    },
    Subscribe {
        client: usize,
        topic: usize,
        since: SinceChoice,
    },
    Unsubscribe {
        client: usize,
        topic: usize,
    },
    AppPublish {
        topic: usize,
        size: usize,
    },
    ClientPublish {
        client: usize,
        topic: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    let topic = 0..TOPICS.len();
    let since = prop_oneof![
        1 => Just(SinceChoice::None),
        4 => Just(SinceChoice::LastSeen),
        1 => (1u64..4).prop_map(SinceChoice::Earlier),
        1 => Just(SinceChoice::Ahead),
        1 => Just(SinceChoice::ForeignEpoch),
    ];
    prop_oneof![
        2 => client.clone().prop_map(|client| Op::Connect { client }),
        1 => client.clone().prop_map(|client| Op::Disconnect { client }),
        3 => (client.clone(), topic.clone(), since)
            .prop_map(|(client, topic, since)| Op::Subscribe { client, topic, since }),
        1 => (client.clone(), topic.clone()).prop_map(|(client, topic)| Op::Unsubscribe { client, topic }),
        4 => (topic.clone(), 0usize..200).prop_map(|(topic, size)| Op::AppPublish { topic, size }),
        2 => (client, topic).prop_map(|(client, topic)| Op::ClientPublish { client, topic }),
        2 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Clone, Debug)]
struct Bounds {
    size: usize,
    ttl_ms: u64,
    max_bytes: usize,
    max_outbound: usize,
}

fn bounds() -> impl Strategy<Value = Bounds> {
    (1usize..6, 500u64..6_000, 150usize..1_500, 200usize..3_000).prop_map(
        |(size, ttl_ms, max_bytes, max_outbound)| Bounds {
            size,
            ttl_ms,
            max_bytes,
            max_outbound,
        },
    )
}

/// One published message, as the log remembers it.
#[derive(Clone, Debug)]
struct Logged {
    at_ms: u64,
    data: Value,
    frame_len: usize,
}

/// What one connection was last sent on a topic: the position it continues from.
#[derive(Clone, Debug, Default)]
struct Track {
    /// (offset, epoch) of the last `subscribed` or `message`; None until subscribed.
    at: Option<(u64, String)>,
}

struct Client {
    conn: Option<ConnId>,
    /// Subscribed topics of the current connection, and where each stands.
    tracks: BTreeMap<usize, Track>,
    /// The last position it saw per topic, kept across reconnects.
    last_seen: BTreeMap<usize, (u64, String)>,
}

struct Harness {
    sb: Switchboard,
    bounds: Bounds,
    now_ms: u64,
    clients: Vec<Client>,
    /// (topic, epoch) -> offset -> message.
    log: BTreeMap<(usize, String), BTreeMap<u64, Logged>>,
    /// Which topics were ever used (streams may exist for them).
    used: [bool; TOPICS.len()],
    seq: u64,
}

impl Harness {
    fn now(&self) -> Now {
        Now::new(Instant::from_millis(self.now_ms), WALL0 + self.now_ms)
    }

    fn token(&self, client: usize) -> String {
        sign_hs256(
            SECRET,
            &Claims {
                sub: format!("user{client}"),
                exp: WALL0 / 1000 + 86_400,
                device: None,
                topics: None,
                info: None,
            },
        )
    }

    fn step(&mut self, op: &Op) {
        let now = self.now();
        match op {
            Op::Connect { client } => {
                if self.clients[*client].conn.is_none() {
                    let handshake = Handshake {
                        token: Some(self.token(*client)),
                        ..Handshake::default()
                    };
                    let ip = "192.0.2.1".parse().unwrap();
                    let id = self.sb.open(now, ip, handshake).expect("open");
                    self.clients[*client].conn = Some(id);
                }
            }
            Op::Disconnect { client } => {
                if let Some(id) = self.clients[*client].conn.take() {
                    self.sb.handle_closed(now, id);
                    self.clients[*client].tracks.clear();
                }
            }
            Op::Subscribe {
                client,
                topic,
                since,
            } => self.subscribe(*client, *topic, since),
            Op::Unsubscribe { client, topic } => {
                if let Some(id) = self.clients[*client].conn {
                    let frame = serde_json::json!({"type":"unsubscribe","topic":TOPICS[*topic]});
                    self.sb
                        .handle_frame(now, id, Frame::Text(&frame.to_string()));
                    self.clients[*client].tracks.remove(topic);
                }
            }
            Op::AppPublish { topic, size } => {
                self.seq += 1;
                let data = format!(r#"{{"seq":{},"pad":"{}"}}"#, self.seq, "x".repeat(*size));
                let raw = RawValue::from_string(data.clone()).unwrap();
                let published = self.sb.publish(now, TOPICS[*topic], &raw, None).unwrap();
                let position = published.position.expect("history is on");
                self.check_deliveries(None);
                self.record(*topic, position.offset, position.epoch.as_str(), &data);
            }
            Op::ClientPublish { client, topic } => {
                if let Some(id) = self.clients[*client].conn {
                    self.seq += 1;
                    let data = format!(r#"{{"seq":{}}}"#, self.seq);
                    let frame = format!(
                        r#"{{"type":"message","topic":"{}","data":{data},"id":"m"}}"#,
                        TOPICS[*topic]
                    );
                    self.sb.handle_frame(now, id, Frame::Text(&frame));
                    // The ack is the first reply, before the fan-out.
                    let acked = self.peek_ack(id);
                    self.record(*topic, acked.0, &acked.1, &data);
                }
            }
            Op::Advance { ms } => {
                self.now_ms += ms;
                let now = self.now();
                self.sb.handle_timeout(now);
            }
        }
        self.check_deliveries(None);
        self.check_kept();
    }

    /// Logs a publish; its frame's length is read back from what the core keeps, when it
    /// keeps it (a frame dropped at once by the byte bound is never replayed, so its length
    /// does not matter).
    fn record(&mut self, topic: usize, offset: u64, epoch: &str, data: &str) {
        self.used[topic] = true;
        let page = self.sb.history(self.now(), TOPICS[topic], 1, None).unwrap();
        let frame_len = page
            .messages
            .last()
            .filter(|m| m.offset() == offset)
            .map_or(0, |m| m.frame().len());
        let entry = self.log.entry((topic, epoch.to_owned())).or_default();
        let previous = entry.keys().next_back().copied().unwrap_or(0);
        assert_eq!(offset, previous + 1, "offsets of an epoch run 1, 2, 3, …");
        entry.insert(
            offset,
            Logged {
                at_ms: self.now_ms,
                data: serde_json::from_str(data).unwrap(),
                frame_len,
            },
        );
    }

    /// Takes the `ack` from the actions queued for `id`, leaving the rest to the delivery check.
    fn peek_ack(&mut self, id: ConnId) -> (u64, String) {
        let actions: Vec<Action> = std::iter::from_fn(|| self.sb.poll_action()).collect();
        let mut ack = None;
        let mut rest = Vec::new();
        for a in actions {
            match &a {
                Action::Send { conn, payload } if *conn == id && ack.is_none() => {
                    let v: Value = serde_json::from_slice(payload).unwrap();
                    if v["type"] == "ack" {
                        ack = Some((
                            v["offset"].as_u64().unwrap(),
                            v["epoch"].as_str().unwrap().to_owned(),
                        ));
                        continue;
                    }
                    rest.push(a);
                }
                _ => rest.push(a),
            }
        }
        self.check_deliveries(Some(rest));
        ack.expect("a message with an id is acked")
    }

    fn subscribe(&mut self, client: usize, topic: usize, choice: &SinceChoice) {
        let Some(id) = self.clients[client].conn else {
            return;
        };
        self.used[topic] = true;
        let now = self.now();
        // What is kept just before: the truth `recovered` must agree with.
        let before = self.sb.history(now, TOPICS[topic], 1000, None).unwrap();
        let last = self.clients[client].last_seen.get(&topic).cloned();
        let since = match (choice, last) {
            (SinceChoice::None, _) | (_, None) => None,
            (SinceChoice::LastSeen, Some(p)) => Some(p),
            (SinceChoice::Earlier(n), Some((o, e))) => Some((o.saturating_sub(*n), e)),
            (SinceChoice::Ahead, Some(_)) => Some((
                before.position.offset + 1,
                before.position.epoch.to_string(),
            )),
            (SinceChoice::ForeignEpoch, Some((o, _))) => Some((o, "foreign".to_owned())),
        };
        let mut frame = serde_json::json!({"type":"subscribe","topic":TOPICS[topic]});
        if let Some((offset, epoch)) = &since {
            frame["since"] = serde_json::json!({"offset": offset, "epoch": epoch});
        }
        self.sb
            .handle_frame(now, id, Frame::Text(&frame.to_string()));
        let actions: Vec<Action> = std::iter::from_fn(|| self.sb.poll_action()).collect();
        let mine: Vec<Value> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn, payload } if *conn == id => {
                    Some(serde_json::from_slice(payload).unwrap())
                }
                _ => None,
            })
            .collect();
        let reply = &mine[0];
        assert_eq!(reply["type"], "subscribed", "{reply}");
        let (offset, epoch) = (
            reply["offset"].as_u64().unwrap(),
            reply["epoch"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            (offset, epoch.as_str()),
            (before.position.offset, before.position.epoch.as_str()),
            "subscribed names where the stream stands"
        );
        let replayed: Vec<u64> = mine[1..]
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect();
        match &since {
            None => {
                assert!(reply.get("recovered").is_none());
                assert!(replayed.is_empty());
            }
            Some((s, e)) => {
                let kept: Vec<u64> = before.messages.iter().map(|m| m.offset()).collect();
                let missed: Vec<u64> = (s + 1..=offset).collect();
                let covered = missed.iter().all(|o| kept.contains(o));
                let bytes: usize = before
                    .messages
                    .iter()
                    .filter(|m| m.offset() > *s)
                    .map(|m| m.frame().len())
                    .sum();
                let expect =
                    *e == epoch && *s <= offset && covered && bytes <= self.bounds.max_outbound;
                assert_eq!(
                    reply["recovered"], expect,
                    "since {s}/{e} on {offset}/{epoch}, kept {kept:?}, {bytes} bytes"
                );
                if expect {
                    assert_eq!(replayed, missed, "exactly the missed messages, in order");
                    let log = &self.log[&(topic, epoch.clone())];
                    for m in &mine[1..] {
                        let o = m["offset"].as_u64().unwrap();
                        assert_eq!(m["data"], log[&o].data, "the replay is what was published");
                    }
                } else {
                    assert!(
                        replayed.is_empty(),
                        "nothing is replayed when not recovered"
                    );
                }
            }
        }
        // The new position: the replayed messages are checked as deliveries below.
        let start = match (&since, reply["recovered"].as_bool()) {
            (Some((s, e)), Some(true)) => (*s, e.clone()),
            _ => (offset, epoch),
        };
        self.clients[client]
            .tracks
            .insert(topic, Track { at: Some(start) });
        let rest: Vec<Action> = actions
            .into_iter()
            .filter(|a| {
                !matches!(a, Action::Send { conn, payload } if *conn == id
                && serde_json::from_slice::<Value>(payload).unwrap()["type"] == "subscribed")
            })
            .collect();
        self.check_deliveries(Some(rest));
    }

    /// Every `message` sent continues its connection's position on the topic by one.
    fn check_deliveries(&mut self, actions: Option<Vec<Action>>) {
        let actions =
            actions.unwrap_or_else(|| std::iter::from_fn(|| self.sb.poll_action()).collect());
        for action in actions {
            let Action::Send { conn, payload } = action else {
                continue;
            };
            let v: Value = serde_json::from_slice(&payload).unwrap();
            if v["type"] != "message" {
                continue;
            }
            let topic = TOPICS.iter().position(|t| v["topic"] == *t).unwrap();
            let client = self
                .clients
                .iter_mut()
                .find(|c| c.conn == Some(conn))
                .expect("sent to a live connection");
            let track = client
                .tracks
                .get_mut(&topic)
                .expect("sent on a subscribed topic");
            let offset = v["offset"].as_u64().unwrap();
            let epoch = v["epoch"].as_str().unwrap().to_owned();
            let (last, last_epoch) = track.at.clone().expect("subscribed first");
            if epoch == last_epoch {
                assert_eq!(
                    offset,
                    last + 1,
                    "no gap and no duplicate on {}",
                    TOPICS[topic]
                );
            } else {
                assert_eq!(offset, 1, "a stream that started again starts at 1");
            }
            track.at = Some((offset, epoch.clone()));
            client.last_seen.insert(topic, (offset, epoch));
        }
    }

    /// The bounds hold, and what is kept is the log's.
    fn check_kept(&mut self) {
        let now = self.now();
        let mut bytes = 0;
        for (t, topic) in TOPICS.iter().enumerate().filter(|(t, _)| self.used[*t]) {
            let page = self.sb.history(now, topic, 1000, None).unwrap();
            let kept: Vec<u64> = page.messages.iter().map(|m| m.offset()).collect();
            assert!(
                kept.len() <= self.bounds.size,
                "{topic}: {kept:?} over history_size"
            );
            if let Some(&first) = kept.first() {
                let expected: Vec<u64> = (first..=page.position.offset).collect();
                assert_eq!(
                    kept, expected,
                    "{topic}: a contiguous run ending at the offset"
                );
                let log = &self.log[&(t, page.position.epoch.to_string())];
                for m in &page.messages {
                    let logged = &log[&m.offset()];
                    assert!(
                        self.now_ms < logged.at_ms + self.bounds.ttl_ms,
                        "{topic}: offset {} is history_ttl old",
                        m.offset()
                    );
                    assert_eq!(m.frame().len(), logged.frame_len);
                    bytes += m.frame().len();
                }
            }
        }
        assert_eq!(
            self.sb.stats().history_bytes,
            bytes,
            "the stats count the kept frames"
        );
        assert!(
            bytes <= self.bounds.max_bytes,
            "{bytes} over history_max_bytes"
        );
    }
}

fn cases() -> u32 {
    std::env::var("SWITCHBOARD_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn recovery_replays_exactly_what_was_missed_and_the_bounds_hold_at_every_step(
        bounds in bounds(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut config = Config::default();
        config.history_size = bounds.size;
        config.history_ttl = Duration::from_millis(bounds.ttl_ms);
        config.history_max_bytes = bounds.max_bytes;
        config.max_outbound_bytes = bounds.max_outbound;
        config.max_messages_per_sec = 0;
        config.ping_interval = Duration::from_secs(3600);
        config.pong_timeout = Duration::from_secs(7200);
        let mut h = Harness {
            sb: Switchboard::new(config, Hs256Verifier::new(SECRET), 7),
            bounds,
            now_ms: 0,
            clients: (0..CLIENTS)
                .map(|_| Client { conn: None, tracks: BTreeMap::new(), last_seen: BTreeMap::new() })
                .collect(),
            log: BTreeMap::new(),
            used: [false; TOPICS.len()],
            seq: 0,
        };
        for op in &ops {
            h.step(op);
        }
    }
}
