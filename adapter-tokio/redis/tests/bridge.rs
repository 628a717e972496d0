//! The bridge against a real `redis-server`. Every wait is bounded, and generously: the
//! machine may be loaded.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_core::cluster::{BusAction, BusEvent, Channel, Subscription};
use switchboard_redis::test_server::RedisServer;
use switchboard_redis::{Bridge, BridgeConfig, BridgeError};

/// The longest wait for an event that should come.
const WAIT: Duration = Duration::from_secs(10);

/// How long to listen for events that should not come.
const QUIET: Duration = Duration::from_millis(500);

/// A bridge and the events it reports.
struct Node {
    bridge: Bridge,
    events: Receiver<BusEvent>,
}

impl Node {
    fn start(config: BridgeConfig) -> Node {
        let (sender, events) = mpsc::channel();
        let bridge = Bridge::start(config, move |event| {
            let _ = sender.send(event);
        })
        .expect("the bridge starts");
        Node { bridge, events }
    }

    /// A bridge to `server`, once it reported `Up`.
    fn up(server: &RedisServer) -> Node {
        let node = Node::start(BridgeConfig::new(server.url()));
        assert_eq!(node.next(), BusEvent::Up);
        node
    }

    fn next(&self) -> BusEvent {
        self.next_within(WAIT)
    }

    fn next_within(&self, wait: Duration) -> BusEvent {
        match self.events.recv_timeout(wait) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => panic!("no event within {wait:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the bridge thread is gone"),
        }
    }

    /// Every event reported within `wait`.
    fn events_within(&self, wait: Duration) -> Vec<BusEvent> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(event) => events.push(event),
                Err(_) => break,
            }
        }
        events
    }

    fn execute(&self, action: BusAction) {
        self.bridge.execute(action);
    }

    /// Subscribes and waits for the confirmation, which must be the next event.
    fn subscribe(&self, subscription: Subscription) {
        self.execute(BusAction::Subscribe(subscription.clone()));
        assert_eq!(self.next(), BusEvent::Subscribed(subscription));
    }

    fn publish(&self, channel: Channel, message: &'static str) {
        self.execute(BusAction::Publish {
            channel,
            message: Bytes::from_static(message.as_bytes()),
        });
    }

    /// The next event, which must be a message; its channel and text.
    fn next_message(&self) -> (Channel, String) {
        match self.next() {
            BusEvent::Message { channel, message } => {
                (channel, String::from_utf8(message.to_vec()).expect("UTF-8"))
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn topic(name: &str) -> Channel {
    Channel::Topic(Arc::from(name))
}

fn topics(glob: &str) -> Subscription {
    Subscription::Topics(Arc::from(glob))
}

/// A plain connection to `server`, to look at Redis from outside the bridge.
fn redis_cli(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|client| client.get_connection_with_timeout(WAIT))
        .expect("a plain connection to the test server")
}

fn numsub(server: &RedisServer, channel: &str) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut redis_cli(server))
        .expect("PUBSUB NUMSUB");
    count
}

/// Polls `condition` until it holds, for up to [`WAIT`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn up_comes_first_and_subscribed_follows_the_acknowledgement() {
    let server = RedisServer::start();
    let node = Node::start(BridgeConfig::new(server.url()));
    assert_eq!(node.next(), BusEvent::Up, "Up is the first event");
    assert!(node.bridge.stats().connected);

    node.subscribe(Subscription::Members);
    // Redis has it by the time the core hears of it...
    assert_eq!(numsub(&server, "switchboard:members"), 1);
    // ...so a message published from outside right after is delivered.
    let _: i64 = redis::cmd("PUBLISH")
        .arg("switchboard:members")
        .arg("hello")
        .query(&mut redis_cli(&server))
        .unwrap();
    assert_eq!(node.next_message(), (Channel::Members, "hello".to_owned()));

    node.subscribe(topics("chat.*"));
    let patterns: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query(&mut redis_cli(&server))
        .unwrap();
    assert_eq!(patterns, 1);
    let _: i64 = redis::cmd("PUBLISH")
        .arg("switchboard:t:chat.lobby")
        .arg("hi")
        .query(&mut redis_cli(&server))
        .unwrap();
    assert_eq!(node.next_message(), (topic("chat.lobby"), "hi".to_owned()));
}

#[test]
fn a_bridge_started_before_redis_reports_up_once_redis_is_there() {
    let mut server = RedisServer::start();
    server.kill();
    let node = Node::start(BridgeConfig::new(server.url()));
    assert_eq!(
        node.events_within(QUIET),
        [],
        "nothing before Up, not even Lost"
    );
    assert!(!node.bridge.stats().connected);
    server.restart();
    assert_eq!(node.next(), BusEvent::Up);
    assert_eq!(node.bridge.stats().reconnects, 0);
}

#[test]
fn a_publish_reaches_every_matching_pattern_subscriber_once_per_pattern() {
    let server = RedisServer::start();
    let a = Node::up(&server);
    let b = Node::up(&server);
    a.subscribe(topics("a.*"));
    a.subscribe(topics("*"));
    a.subscribe(Subscription::Members);
    b.subscribe(topics("b.*"));
    b.subscribe(topics("end"));
    b.subscribe(Subscription::Members);

    b.publish(topic("a.x"), "for a");
    // Matches `*` at A only, and `end` at B: once it is in, everything before it is.
    b.publish(topic("end"), "end");
    let mut at_a = vec![a.next_message(), a.next_message(), a.next_message()];
    at_a.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        at_a,
        [
            (topic("end"), "end".to_owned()),
            (topic("a.x"), "for a".to_owned()),
            (topic("a.x"), "for a".to_owned()),
        ],
        "once per matching pattern"
    );
    assert_eq!(
        b.next_message(),
        (topic("end"), "end".to_owned()),
        "B matched nothing else"
    );

    a.publish(Channel::Members, "announce");
    assert_eq!(a.next_message(), (Channel::Members, "announce".to_owned()));
    assert_eq!(b.next_message(), (Channel::Members, "announce".to_owned()));
    assert_eq!(a.events_within(QUIET), []);
    assert_eq!(b.events_within(QUIET), []);
}

#[test]
fn publishes_arrive_in_order() {
    const COUNT: usize = 1000;
    let server = RedisServer::start();
    let receiver = Node::up(&server);
    let sender = Node::up(&server);
    receiver.subscribe(topics("seq"));
    for i in 0..COUNT {
        sender.execute(BusAction::Publish {
            channel: topic("seq"),
            message: Bytes::from(i.to_string()),
        });
    }
    for i in 0..COUNT {
        assert_eq!(receiver.next_message(), (topic("seq"), i.to_string()));
    }
    eventually("the sender counts its publishes", || {
        sender.bridge.stats().published == COUNT as u64
    });
    assert_eq!(sender.bridge.stats().dropped, 0);
}

#[test]
fn next_epoch_counts_up_per_user_across_bridges() {
    let server = RedisServer::start();
    let a = Node::up(&server);
    let b = Node::up(&server);
    let next_epoch = |node: &Node, user: &str, request: u64| {
        node.execute(BusAction::NextEpoch {
            user: Arc::from(user),
            request,
        });
    };

    next_epoch(&a, "alice", 1);
    assert_eq!(
        a.next(),
        BusEvent::Epoch {
            request: 1,
            epoch: 1
        }
    );
    next_epoch(&b, "alice", 2);
    assert_eq!(
        b.next(),
        BusEvent::Epoch {
            request: 2,
            epoch: 2
        }
    );
    next_epoch(&a, "bob", 3);
    assert_eq!(
        a.next(),
        BusEvent::Epoch {
            request: 3,
            epoch: 1
        }
    );

    // Many at once are answered in order.
    for request in 10..20 {
        next_epoch(&b, "carol", request);
    }
    for request in 10..20 {
        assert_eq!(
            b.next(),
            BusEvent::Epoch {
                request,
                epoch: request - 9
            }
        );
    }

    // The counter expires a day after its last use.
    let ttl: i64 = redis::cmd("TTL")
        .arg("switchboard:epoch:alice")
        .query(&mut redis_cli(&server))
        .unwrap();
    assert!((1..=86_400).contains(&ttl), "TTL {ttl}");
}

#[test]
fn killing_redis_reports_lost_once_and_restarting_it_reports_up_again() {
    let mut server = RedisServer::start();
    let node = Node::up(&server);
    node.subscribe(Subscription::Members);

    server.kill();
    assert_eq!(node.next_within(Duration::from_secs(5)), BusEvent::Lost);
    assert!(!node.bridge.stats().connected);
    // Reconnect attempts fail meanwhile, without another Lost.
    assert_eq!(node.events_within(Duration::from_secs(1)), []);

    server.restart();
    assert_eq!(node.next(), BusEvent::Up);
    let stats = node.bridge.stats();
    assert!(stats.connected);
    assert_eq!(stats.reconnects, 1);

    // A new connection: nothing is subscribed until the core subscribes again.
    assert_eq!(numsub(&server, "switchboard:members"), 0);
    node.subscribe(Subscription::Members);
    node.publish(Channel::Members, "back");
    assert_eq!(node.next_message(), (Channel::Members, "back".to_owned()));
    assert_eq!(node.events_within(QUIET), []);
}

#[test]
fn actions_while_down_are_dropped_not_queued_for_later() {
    let mut server = RedisServer::start();
    let node = Node::up(&server);
    server.kill();
    assert_eq!(node.next_within(Duration::from_secs(5)), BusEvent::Lost);

    let dropped = node.bridge.stats().dropped;
    node.execute(BusAction::Subscribe(Subscription::Commands));
    node.publish(Channel::Commands, "stale");
    node.execute(BusAction::NextEpoch {
        user: Arc::from("dave"),
        request: 7,
    });
    assert_eq!(node.bridge.stats().dropped, dropped + 3);

    server.restart();
    assert_eq!(node.next(), BusEvent::Up);
    assert_eq!(
        node.events_within(QUIET),
        [],
        "no Subscribed nor Epoch for what was asked while down"
    );
    assert_eq!(numsub(&server, "switchboard:commands"), 0);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("switchboard:epoch:dave")
        .query(&mut redis_cli(&server))
        .unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn publishes_beyond_the_queue_bound_are_dropped() {
    let server = RedisServer::start();
    let listener = Node::up(&server);
    listener.subscribe(Subscription::Members);
    let sender = Node::start(BridgeConfig::new(server.url()).with_max_queued_bytes(4));
    assert_eq!(sender.next(), BusEvent::Up);

    sender.publish(Channel::Members, "too long");
    assert_eq!(sender.bridge.stats().dropped, 1);
    sender.publish(Channel::Members, "fits");
    assert_eq!(
        listener.next_message(),
        (Channel::Members, "fits".to_owned())
    );
    assert_eq!(listener.events_within(QUIET), []);
}

#[test]
fn bridges_with_different_prefixes_do_not_hear_each_other() {
    let server = RedisServer::start();
    let blue = Node::start(BridgeConfig::new(server.url()).with_prefix("blue:"));
    let green = Node::start(BridgeConfig::new(server.url()).with_prefix("green:"));
    assert_eq!(blue.next(), BusEvent::Up);
    assert_eq!(green.next(), BusEvent::Up);
    blue.subscribe(topics("*"));
    green.subscribe(topics("*"));

    green.publish(topic("x"), "green");
    assert_eq!(green.next_message(), (topic("x"), "green".to_owned()));
    assert_eq!(blue.events_within(QUIET), []);
    assert_eq!(numsub(&server, "blue:t:x"), 0);
}

#[test]
fn dropping_the_bridge_closes_its_connections() {
    let server = RedisServer::start();
    let mut cli = redis_cli(&server);
    let mut clients = move || -> usize {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut cli).unwrap();
        list.lines().count()
    };
    assert_eq!(clients(), 1, "only the plain connection");
    let node = Node::up(&server);
    assert_eq!(clients(), 3, "a pub/sub and a command connection");
    node.bridge.stop();
    eventually("the bridge's connections close", || clients() == 1);
    // The bridge thread is gone, and with it the callback.
    assert!(matches!(
        node.events.recv_timeout(WAIT),
        Err(RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn a_bad_url_is_refused_at_start() {
    for url in [
        "not a url",
        "http://127.0.0.1:6379/",
        "redis://:hunter2@[::1",
    ] {
        match Bridge::start(BridgeConfig::new(url), |_| {}) {
            Err(error @ BridgeError::InvalidUrl { .. }) => {
                let text = error.to_string();
                assert!(!text.contains("hunter2"), "the password shows in {text:?}");
                if !url.contains("hunter2") {
                    assert!(text.contains(url), "{text:?} names {url:?}");
                }
            }
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[test]
fn a_prefix_with_glob_metacharacters_is_refused_at_start() {
    let config = BridgeConfig::new("redis://127.0.0.1:1/").with_prefix("sb*:");
    assert!(matches!(
        Bridge::start(config, |_| {}),
        Err(BridgeError::InvalidPrefix { .. })
    ));
}

#[test]
fn a_frozen_redis_is_found_by_the_health_check() {
    let server = RedisServer::start();
    let node = Node::up(&server);
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &server.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {name}");
    };
    // Stopped, Redis keeps its sockets open: only the unanswered PING tells.
    signal("-STOP");
    let lost = node.next_within(WAIT);
    signal("-CONT");
    assert_eq!(lost, BusEvent::Lost);
    assert_eq!(node.next(), BusEvent::Up);
    node.subscribe(Subscription::Members);
}
