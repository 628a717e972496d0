//! One live session: both connections up, actions executed, messages delivered, until either
//! connection fails.
//!
//! Each kind of work (publishes, epochs, (un)subscriptions, health checks) has a queue and at
//! most one batch in flight. Batches of one kind run one after another, which keeps their
//! order; the kinds run alongside each other. What waits while a batch is in flight goes into
//! the next one, so a flood is sent in few round trips.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{ErrorKind, Msg, Pipeline, RedisError, RedisResult, ServerErrorKind, Value};
use switchboard_core::cluster::{BusAction, BusEvent, Channel, Subscription};
use tokio::sync::mpsc;
use tokio::time::{interval_at, timeout, Instant, MissedTickBehavior};
use tracing::{debug, error, warn};

use crate::layout::{Kind, Layout};
use crate::{Queued, Shared};

/// How often both connections are checked with a `PING`.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// How long a `PING` may go unanswered before its connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an epoch counter lives after its last use (a day).
const EPOCH_TTL_SECONDS: u64 = 86_400;

/// Bounds on one publish pipeline, so one batch doesn't hold the connection (and the PING
/// behind it) for long.
const MAX_PUBLISH_BATCH: usize = 1024;
const MAX_PUBLISH_BATCH_BYTES: usize = 1 << 20;

/// Bounds on one `MULTI` of epoch counters and on the names of one (P)(UN)SUBSCRIBE.
const MAX_EPOCH_BATCH: usize = 256;
const MAX_SUBSCRIPTION_BATCH: usize = 256;

/// How many queued actions are taken at once before the other work gets a turn.
const ACCEPT_BURST: usize = 256;

/// Work in flight, polled by the session loop.
type Job<T> = Pin<Box<dyn Future<Output = T>>>;

/// A finished publish pipeline: the pipeline itself (kept for its capacity) and the outcome.
type Published = (Pipeline, RedisResult<()>);

/// A finished epoch `MULTI`: the requests it answers, in order, and the counters.
type Numbered = (Vec<u64>, RedisResult<Vec<u64>>);

/// A finished (P)(UN)SUBSCRIBE: what to confirm (nothing for an unsubscribe) and the outcome.
type Subscribed = (Vec<Subscription>, RedisResult<()>);

/// Both connections, freshly opened.
pub(crate) struct Connections {
    pub(crate) commands: MultiplexedConnection,
    pub(crate) sink: PubSubSink,
    pub(crate) stream: PubSubStream,
}

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The [`Bridge`](crate::Bridge) is gone.
    Closed,
    /// A connection failed: report `Lost` and reconnect.
    Lost(String),
}

/// A live session's state.
pub(crate) struct Session<'a> {
    layout: &'a Layout,
    shared: &'a Shared,
    /// The [`Shared::generation`] of this session: actions made under another are stale.
    generation: u64,
    commands: MultiplexedConnection,
    sink: PubSubSink,
    stream: PubSubStream,

    publishes: VecDeque<(Channel, Bytes)>,
    /// Payload bytes in `publishes` and in the publish batch in flight.
    publish_bytes: usize,
    publishing: Option<Job<Published>>,
    /// Publishes and payload bytes of the batch in flight.
    publishing_count: usize,
    publishing_bytes: usize,
    /// The last publish pipeline, reused so that its buffers are not allocated again.
    spare_pipeline: Option<Pipeline>,

    epochs: VecDeque<(Arc<str>, u64)>,
    numbering: Option<Job<Numbered>>,
    numbering_count: usize,

    /// (Un)subscriptions in order: `true` to subscribe.
    subscriptions: VecDeque<(bool, Subscription)>,
    subscribing: Option<Job<Subscribed>>,
    subscribing_count: usize,

    pinging: Option<Job<Result<(), String>>>,
    /// Scratch space for a channel or key name.
    name: String,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        connections: Connections,
        layout: &'a Layout,
        shared: &'a Shared,
        generation: u64,
    ) -> Self {
        Self {
            layout,
            shared,
            generation,
            commands: connections.commands,
            sink: connections.sink,
            stream: connections.stream,
            publishes: VecDeque::new(),
            publish_bytes: 0,
            publishing: None,
            publishing_count: 0,
            publishing_bytes: 0,
            spare_pipeline: None,
            epochs: VecDeque::new(),
            numbering: None,
            numbering_count: 0,
            subscriptions: VecDeque::new(),
            subscribing: None,
            subscribing_count: 0,
            pinging: None,
            name: String::new(),
        }
    }

    /// Runs until a connection fails or the actions' sender is gone.
    pub(crate) async fn run(
        mut self,
        actions: &mut mpsc::UnboundedReceiver<Queued>,
        on_event: &mut dyn FnMut(BusEvent),
    ) -> End {
        let mut ticker = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The actions' sender is gone: finish the publishes queued, then end.
        let mut closing = false;
        loop {
            self.start_batches();
            if closing && self.publishes.is_empty() && self.publishing.is_none() {
                return End::Closed;
            }
            tokio::select! {
                queued = actions.recv(), if !closing => {
                    let Some(queued) = queued else {
                        closing = true;
                        continue;
                    };
                    self.accept(queued);
                    for _ in 1..ACCEPT_BURST {
                        let Ok(queued) = actions.try_recv() else { break };
                        self.accept(queued);
                    }
                }
                message = self.stream.next() => match message {
                    Some(message) => self.deliver(&message, on_event),
                    None => return End::Lost("the pub/sub connection closed".to_owned()),
                },
                done = poll_job(&mut self.publishing) => {
                    self.publishing = None;
                    if let Err(reason) = self.published(done) {
                        return End::Lost(reason);
                    }
                }
                done = poll_job(&mut self.numbering) => {
                    self.numbering = None;
                    if let Err(reason) = self.numbered(done, on_event) {
                        return End::Lost(reason);
                    }
                }
                done = poll_job(&mut self.subscribing) => {
                    self.subscribing = None;
                    if let Err(reason) = self.subscribed(done, on_event) {
                        return End::Lost(reason);
                    }
                }
                done = poll_job(&mut self.pinging) => {
                    self.pinging = None;
                    if let Err(reason) = done {
                        return End::Lost(reason);
                    }
                }
                _ = ticker.tick() => {
                    if self.pinging.is_none() {
                        self.pinging = Some(self.ping());
                    }
                }
            }
        }
    }

    /// Takes one action into its queue, or drops it if it is stale.
    fn accept(&mut self, queued: Queued) {
        if queued.generation != self.generation {
            // Made for a connection that is gone: the core redoes what matters after Up.
            self.shared.discard(&queued);
            return;
        }
        match queued.action {
            BusAction::Publish { channel, message } => {
                self.publish_bytes += queued.bytes;
                self.publishes.push_back((channel, message));
            }
            BusAction::Subscribe(subscription) => {
                self.subscriptions.push_back((true, subscription));
            }
            BusAction::Unsubscribe(subscription) => {
                self.subscriptions.push_back((false, subscription));
            }
            BusAction::NextEpoch { user, request } => self.epochs.push_back((user, request)),
            other => {
                debug!(action = ?other, "ignoring a bus action this bridge does not know");
                self.shared.release(queued.bytes);
                self.shared.count_dropped(1);
            }
        }
    }

    /// Starts a batch of each kind that has work waiting and none in flight.
    fn start_batches(&mut self) {
        if self.publishing.is_none() && !self.publishes.is_empty() {
            self.start_publishing();
        }
        if self.numbering.is_none() && !self.epochs.is_empty() {
            self.start_numbering();
        }
        if self.subscribing.is_none() && !self.subscriptions.is_empty() {
            self.start_subscribing();
        }
    }

    fn start_publishing(&mut self) {
        let mut pipeline = self.spare_pipeline.take().unwrap_or_default();
        pipeline.clear();
        let (mut count, mut bytes) = (0, 0);
        while count < MAX_PUBLISH_BATCH && bytes < MAX_PUBLISH_BATCH_BYTES {
            let Some((channel, message)) = self.publishes.pop_front() else {
                break;
            };
            bytes += message.len();
            if self.layout.channel_name(&channel, &mut self.name) {
                pipeline
                    .cmd("PUBLISH")
                    .arg(self.name.as_str())
                    .arg(&message[..])
                    .ignore();
                count += 1;
            } else {
                debug!(
                    ?channel,
                    "not publishing on a channel this bridge does not know"
                );
                self.shared.count_dropped(1);
            }
        }
        if pipeline.is_empty() {
            self.publish_bytes -= bytes;
            self.shared.release(bytes);
            self.spare_pipeline = Some(pipeline);
            return;
        }
        self.publishing_count = count;
        self.publishing_bytes = bytes;
        let mut commands = self.commands.clone();
        self.publishing = Some(Box::pin(async move {
            let result = pipeline.exec_async(&mut commands).await;
            (pipeline, result)
        }));
    }

    /// Accounts for a finished publish batch; `Err` if the connection failed.
    fn published(&mut self, (pipeline, result): Published) -> Result<(), String> {
        self.spare_pipeline = Some(pipeline);
        let count = std::mem::take(&mut self.publishing_count);
        let bytes = std::mem::take(&mut self.publishing_bytes);
        self.publish_bytes -= bytes;
        self.shared.release(bytes);
        match result {
            Ok(()) => {
                self.shared
                    .published
                    .fetch_add(count as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.shared.count_dropped(count);
                if is_connection_failure(&error) {
                    return Err(format!("PUBLISH failed: {error}"));
                }
                if self.shared.refused_warning.allow() {
                    warn!(%error, publishes = count, "Redis refused publishes; they are dropped");
                }
                Ok(())
            }
        }
    }

    fn start_numbering(&mut self) {
        let mut pipeline = redis::pipe();
        // One MULTI: a counter must not be left without its expiry.
        pipeline.atomic();
        let mut requests = Vec::with_capacity(self.epochs.len().min(MAX_EPOCH_BATCH));
        while requests.len() < MAX_EPOCH_BATCH {
            let Some((user, request)) = self.epochs.pop_front() else {
                break;
            };
            self.layout.epoch_key(&user, &mut self.name);
            pipeline
                .cmd("INCR")
                .arg(self.name.as_str())
                .cmd("EXPIRE")
                .arg(self.name.as_str())
                .arg(EPOCH_TTL_SECONDS)
                .ignore();
            requests.push(request);
        }
        self.numbering_count = requests.len();
        let mut commands = self.commands.clone();
        self.numbering = Some(Box::pin(async move {
            let result = pipeline.query_async(&mut commands).await;
            (requests, result)
        }));
    }

    /// Answers a finished epoch batch; `Err` if the connection failed.
    fn numbered(
        &mut self,
        (requests, result): Numbered,
        on_event: &mut dyn FnMut(BusEvent),
    ) -> Result<(), String> {
        self.numbering_count = 0;
        match result {
            Ok(epochs) if epochs.len() == requests.len() => {
                for (request, epoch) in requests.into_iter().zip(epochs) {
                    on_event(BusEvent::Epoch { request, epoch });
                }
                Ok(())
            }
            Ok(epochs) => {
                error!(
                    requests = requests.len(),
                    answers = epochs.len(),
                    "Redis answered a different number of INCRs than asked; the epoch requests go unanswered"
                );
                self.shared.count_dropped(requests.len());
                Ok(())
            }
            Err(error) if is_connection_failure(&error) => {
                self.shared.count_dropped(requests.len());
                Err(format!("INCR failed: {error}"))
            }
            Err(error) => {
                error!(%error, requests = requests.len(), "Redis refused INCR; the epoch requests go unanswered");
                self.shared.count_dropped(requests.len());
                Ok(())
            }
        }
    }

    fn start_subscribing(&mut self) {
        // One command for a run of (un)subscriptions of one kind: their order is kept, and a
        // re-subscription of many patterns after Up takes one round trip.
        let mut batch: Option<(bool, Kind)> = None;
        let mut names = Vec::new();
        let mut confirm = Vec::new();
        while names.len() < MAX_SUBSCRIPTION_BATCH {
            let Some((subscribe, subscription)) = self.subscriptions.pop_front() else {
                break;
            };
            let Some((kind, name)) = self.layout.subscription(&subscription) else {
                debug!(
                    ?subscription,
                    "ignoring a subscription this bridge does not know"
                );
                self.shared.count_dropped(1);
                continue;
            };
            if batch.is_some_and(|batch| batch != (subscribe, kind)) {
                // The next batch's first.
                self.subscriptions.push_front((subscribe, subscription));
                break;
            }
            batch = Some((subscribe, kind));
            names.push(name);
            if subscribe {
                confirm.push(subscription);
            }
        }
        let Some((subscribe, kind)) = batch else {
            return;
        };
        self.subscribing_count = names.len();
        let mut sink = self.sink.clone();
        self.subscribing = Some(Box::pin(async move {
            let result = match (subscribe, kind) {
                (true, Kind::Channel) => sink.subscribe(&names).await,
                (true, Kind::Pattern) => sink.psubscribe(&names).await,
                (false, Kind::Channel) => sink.unsubscribe(&names).await,
                (false, Kind::Pattern) => sink.punsubscribe(&names).await,
            };
            (confirm, result)
        }));
    }

    /// Confirms a finished (un)subscription batch; `Err` if the connection failed.
    fn subscribed(
        &mut self,
        (confirm, result): Subscribed,
        on_event: &mut dyn FnMut(BusEvent),
    ) -> Result<(), String> {
        let count = std::mem::take(&mut self.subscribing_count);
        match result {
            // Redis acknowledged: messages published from now on reach this connection.
            Ok(()) => {
                for subscription in confirm {
                    on_event(BusEvent::Subscribed(subscription));
                }
                Ok(())
            }
            Err(error) if is_connection_failure(&error) => {
                self.shared.count_dropped(count);
                Err(format!("(P)SUBSCRIBE failed: {error}"))
            }
            Err(error) => {
                error!(%error, subscriptions = ?confirm, "Redis refused a (un)subscription; it is not confirmed");
                self.shared.count_dropped(count);
                Ok(())
            }
        }
    }

    /// A `PING` on both connections, each bounded by [`PING_TIMEOUT`].
    fn ping(&self) -> Job<Result<(), String>> {
        let mut commands = self.commands.clone();
        let mut sink = self.sink.clone();
        Box::pin(async move {
            let ping = redis::cmd("PING");
            let (command, pubsub) = tokio::join!(
                timeout(PING_TIMEOUT, ping.query_async::<Value>(&mut commands)),
                timeout(PING_TIMEOUT, sink.ping::<Value>()),
            );
            for (connection, outcome) in [("command", command), ("pub/sub", pubsub)] {
                match outcome {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        return Err(format!(
                            "PING on the {connection} connection failed: {error}"
                        ))
                    }
                    Err(_) => {
                        return Err(format!(
                        "the {connection} connection did not answer PING within {PING_TIMEOUT:?}"
                    ))
                    }
                }
            }
            Ok(())
        })
    }

    /// Passes a message on, if it is on one of the bus's channels.
    fn deliver(&self, message: &Msg, on_event: &mut dyn FnMut(BusEvent)) {
        let name = message.get_channel_name();
        match self.layout.parse(name) {
            Some(channel) => on_event(BusEvent::Message {
                channel,
                // The redis crate lends the payload only: one copy into shareable bytes.
                message: Bytes::copy_from_slice(message.get_payload_bytes()),
            }),
            None => debug!(
                channel = name,
                "ignoring a message on a channel outside the bus"
            ),
        }
    }
}

impl Drop for Session<'_> {
    /// Whatever was not done is dropped: counted, and its bytes given back.
    fn drop(&mut self) {
        self.shared.release(self.publish_bytes);
        self.shared.count_dropped(
            self.publishes.len()
                + self.publishing_count
                + self.epochs.len()
                + self.numbering_count
                + self.subscriptions.len()
                + self.subscribing_count,
        );
    }
}

/// Polls the job in `slot`, or never completes if there is none.
fn poll_job<T>(slot: &mut Option<Job<T>>) -> impl Future<Output = T> + '_ {
    std::future::poll_fn(move |cx| match slot {
        Some(job) => job.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

/// Whether an error means the connection can't be trusted (reconnect), rather than that a
/// live server refused one command.
fn is_connection_failure(error: &RedisError) -> bool {
    if error.is_unrecoverable_error() {
        return true;
    }
    match error.kind() {
        // The server is there but can't serve us as it should: another may after reconnecting.
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::MasterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        ),
        // A refusal in words the crate does not know (`WRONGTYPE`, `OOM`, ...), or an answer
        // of an unexpected shape: the connection itself is fine.
        ErrorKind::Extension | ErrorKind::UnexpectedReturnType => false,
        _ => true,
    }
}
