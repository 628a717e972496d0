//! The Redis bridge of Switchboard's cluster mode.
//!
//! The core of a node speaks to the other nodes through a bus: it emits
//! [`BusAction`]s and consumes [`BusEvent`]s. A [`Bridge`] turns the actions into Redis traffic
//! and Redis traffic into events. It runs on a thread of its own, with its own current-thread
//! tokio runtime, so that both the tokio and the mio adapter can use it: actions go in through
//! [`Bridge::execute`] (from any thread, never blocking) and events come out through a callback,
//! called on the bridge thread, in order.
//!
//! # Channels and keys
//!
//! Every name starts with [`BridgeConfig::prefix`] (default `switchboard:`), so that several
//! clusters can share one Redis:
//!
//! | Bus                                   | Redis                                         |
//! |---------------------------------------|-----------------------------------------------|
//! | [`Channel::Topic`]`(t)`               | channel `{prefix}t:{t}`                       |
//! | [`Channel::Members`]                  | channel `{prefix}members`                     |
//! | [`Channel::Commands`]                 | channel `{prefix}commands`                    |
//! | [`Subscription::Topics`]`(glob)`      | `PSUBSCRIBE {prefix}t:{glob}`                 |
//! | [`Subscription::Members`], `Commands` | `SUBSCRIBE` the channel                       |
//! | [`BusAction::NextEpoch`]`{user, ..}`  | `MULTI; INCR` and `EXPIRE 86400` the key `{prefix}epoch:{user}`; `EXEC` |
//!
//! The glob is Redis glob syntax already; the prefix is its literal start, so the prefix must
//! not contain a glob metacharacter (`*?[]\`), which [`Bridge::start`] checks. A message on a
//! channel outside this layout is ignored.
//!
//! # Connections and events
//!
//! The bridge holds two connections: a pub/sub one and a multiplexed one for everything else.
//! It reports [`BusEvent::Up`] once both are connected (the pub/sub connection is new, with no
//! subscriptions). When either fails (closed, reset, an error, or a `PING` on both connections
//! every second not answered within 2 s) it drops both, reports [`BusEvent::Lost`] once and
//! reconnects with exponential backoff (100 ms doubling to 2 s, with jitter) until it succeeds,
//! then reports `Up` again. `Up` and `Lost` alternate, starting with `Up`.
//!
//! [`BusEvent::Subscribed`] follows Redis's acknowledgement of the (P)SUBSCRIBE, so a message
//! published after the core saw it is delivered. Every `pmessage` is passed on, even when
//! several patterns match one publish (the core deduplicates).
//!
//! While the bus is down, actions are dropped (and counted in [`BridgeStats::dropped`]): the
//! core subscribes and announces again after `Up`. An action made before a `Lost` and not yet
//! executed is dropped too, rather than run on the next connection. Publishes are sent in
//! order, pipelined. At most [`BridgeConfig::max_queued_bytes`] of publish payloads wait at any
//! time; beyond that new publishes are dropped.

#![warn(missing_docs)]

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use switchboard_core::cluster::{BusAction, BusEvent};
#[cfg(doc)]
use switchboard_core::cluster::{Channel, Subscription};
use tokio::sync::{mpsc, oneshot};

mod connection;
mod layout;
mod session;
pub mod test_server;

use layout::Layout;

/// The default [`BridgeConfig::prefix`].
const DEFAULT_PREFIX: &str = "switchboard:";

/// The default [`BridgeConfig::max_queued_bytes`]: 64 MiB.
const DEFAULT_MAX_QUEUED_BYTES: usize = 64 << 20;

/// How to reach Redis and how to name things there.
///
/// Made with [`BridgeConfig::new`]; the other fields have defaults and may be changed after.
#[derive(Clone)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// The Redis URL, e.g. `redis://:password@redis.internal:6379/0`.
    ///
    /// Anything `redis::Client::open` accepts that this build supports: `redis://`, `valkey://`
    /// and `unix://`, not TLS.
    pub url: String,
    /// The start of every channel and key name (default `switchboard:`).
    ///
    /// Must not contain a Redis glob metacharacter (`*?[]\`).
    pub prefix: String,
    /// How many bytes of publish payloads may wait to be sent (default 64 MiB).
    ///
    /// A publish that would go beyond is dropped and counted in [`BridgeStats::dropped`].
    pub max_queued_bytes: usize,
}

impl BridgeConfig {
    /// A configuration for `url` with the default prefix and queue bound.
    ///
    /// Nothing is checked here; [`Bridge::start`] checks.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }

    /// This configuration with another [`prefix`](Self::prefix).
    ///
    /// For a chain of settings: `BridgeConfig::new(url).with_prefix("test:")`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This configuration with another [`max_queued_bytes`](Self::max_queued_bytes).
    ///
    /// For a chain of settings, like [`with_prefix`](Self::with_prefix).
    pub fn with_max_queued_bytes(mut self, max_queued_bytes: usize) -> Self {
        self.max_queued_bytes = max_queued_bytes;
        self
    }
}

impl fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: a Debug print ends up in logs.
        f.debug_struct("BridgeConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .finish()
    }
}

/// Why [`Bridge::start`] refused to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The Redis URL is not one this bridge can connect to.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The prefix cannot be used for channel names.
    #[error("invalid Redis prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The bridge's tokio runtime could not be built.
    #[error("cannot build the Redis bridge's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The bridge thread could not be started.
    #[error("cannot start the Redis bridge thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Counters of a [`Bridge`], from [`Bridge::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Publishes Redis acknowledged.
    pub published: u64,
    /// Actions dropped: made while the bus was down, made before a `Lost` and not done by then,
    /// publishes beyond [`BridgeConfig::max_queued_bytes`], and commands Redis refused.
    pub dropped: u64,
    /// Whether the bus is up: `Up` was reported last (or is about to be).
    pub connected: bool,
    /// How many times the bridge connected again after a `Lost`.
    pub reconnects: u64,
}

/// A running Redis bridge: a thread holding the connections.
///
/// Dropping it (or [`Bridge::stop`]) stops the thread and closes the connections; no event is
/// reported after. It waits for the thread, so a callback that blocks forever would block it.
pub struct Bridge {
    /// `None` once stopping: its end tells the bridge thread to flush and finish.
    actions: Option<mpsc::UnboundedSender<Queued>>,
    shared: Arc<Shared>,
    endpoint: Arc<str>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Checks the configuration and starts the bridge thread.
    ///
    /// A bad URL or prefix is an error at once. It does not wait for Redis: it connects in the
    /// background and reports [`BusEvent::Up`] through `on_event` when connected (and every
    /// event after, in order, on the bridge thread).
    pub fn start(
        config: BridgeConfig,
        on_event: impl FnMut(BusEvent) + Send + 'static,
    ) -> Result<Bridge, BridgeError> {
        let layout = Layout::new(&config.prefix).map_err(|reason| BridgeError::InvalidPrefix {
            prefix: config.prefix.clone(),
            reason,
        })?;
        let invalid_url = |reason: String| BridgeError::InvalidUrl {
            url: redact(&config.url),
            reason,
        };
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| invalid_url(error.to_string()))?;
        let addr = client.get_connection_info().addr();
        if !addr.is_supported() {
            return Err(invalid_url("this build does not support TLS".to_owned()));
        }
        // Host and port (or socket path) only: what the logs may show of the URL.
        let endpoint: Arc<str> = addr.to_string().into();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BridgeError::Runtime)?;
        let shared = Arc::new(Shared::new(config.max_queued_bytes));
        let (actions, receiver) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let context = connection::Context {
            client,
            endpoint: endpoint.clone(),
            layout,
            shared: shared.clone(),
            actions: receiver,
            on_event: Box::new(on_event),
        };
        let thread = std::thread::Builder::new()
            .name("switchboard-redis".to_owned())
            .spawn(move || connection::run(runtime, context, stopped))
            .map_err(BridgeError::Thread)?;
        Ok(Bridge {
            actions: Some(actions),
            shared,
            endpoint,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// What a server's bind starts: the bridge to `redis_url` in cluster mode, `None` without
    /// one. A refused URL is an [`std::io::ErrorKind::InvalidInput`] error, for the bind to
    /// return.
    pub fn for_server(
        redis_url: Option<&str>,
        on_event: impl FnMut(BusEvent) + Send + 'static,
    ) -> std::io::Result<Option<Bridge>> {
        let Some(url) = redis_url else {
            return Ok(None);
        };
        Bridge::start(BridgeConfig::new(url), on_event)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }

    /// Hands one action to the bridge thread; never blocks.
    ///
    /// While the bus is down the action is dropped (and counted), as is a publish beyond
    /// [`BridgeConfig::max_queued_bytes`].
    pub fn execute(&self, action: BusAction) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if !is_up(generation) {
            self.shared.count_dropped(1);
            return;
        }
        let bytes = match &action {
            BusAction::Publish { message, .. } => message.len(),
            _ => 0,
        };
        if bytes > 0 && !self.shared.reserve(bytes) {
            self.shared.count_dropped(1);
            if self.shared.full_warning.allow() {
                tracing::warn!(
                    redis = %self.endpoint,
                    max_queued_bytes = self.shared.max_queued_bytes,
                    dropped = self.shared.dropped.load(Ordering::Relaxed),
                    "the Redis publish queue is full: dropping publishes"
                );
            }
            return;
        }
        let queued = Queued {
            generation,
            bytes,
            action,
        };
        let Some(actions) = &self.actions else {
            return;
        };
        if let Err(mpsc::error::SendError(queued)) = actions.send(queued) {
            // The bridge thread is gone (its callback panicked).
            self.shared.discard(&queued);
        }
    }

    /// Stops the bridge thread and closes the connections, like dropping the bridge.
    pub fn stop(self) {
        drop(self);
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> BridgeStats {
        let shared = &self.shared;
        BridgeStats {
            published: shared.published.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            connected: is_up(shared.generation.load(Ordering::Acquire)),
            reconnects: shared.reconnects.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("redis", &self.endpoint)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // The end of the actions lets the thread write what is queued (a draining node's
        // goodbye) before it stops, for at most `FLUSH_GRACE` after the stop signal.
        self.actions = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Dropped from its own callback: the thread ends once the callback returns.
            if thread.thread().id() != std::thread::current().id() {
                // A panic there (the callback's) was reported already; don't panic in drop.
                let _ = thread.join();
            }
        }
    }
}

/// An action on its way to the bridge thread.
#[derive(Debug)]
pub(crate) struct Queued {
    /// [`Shared::generation`] when it was made: it runs only on that connection.
    pub(crate) generation: u64,
    /// The payload bytes reserved for it in [`Shared::queued_bytes`] (publishes only).
    pub(crate) bytes: usize,
    pub(crate) action: BusAction,
}

/// What the bridge thread and the [`Bridge`] handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Counts `Up`s and `Lost`s: odd while up. Changed before the event is reported, so an
    /// action made after the core saw `Up` carries that connection's number.
    pub(crate) generation: AtomicU64,
    /// Publish payload bytes reserved by [`Bridge::execute`] and not yet done with.
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) published: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Limits the queue-full warning, which a flood would otherwise repeat per publish.
    pub(crate) full_warning: RateLimit,
    /// Limits the warning for commands Redis refused.
    pub(crate) refused_warning: RateLimit,
}

impl Shared {
    fn new(max_queued_bytes: usize) -> Self {
        Self {
            generation: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes,
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            full_warning: RateLimit::new(),
            refused_warning: RateLimit::new(),
        }
    }

    /// Reserves `bytes` of the queue bound; `false` if they don't fit.
    fn reserve(&self, bytes: usize) -> bool {
        self.queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(bytes)
                    .filter(|&total| total <= self.max_queued_bytes)
            })
            .is_ok()
    }

    /// Gives back bytes reserved by [`Shared::reserve`].
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    pub(crate) fn count_dropped(&self, actions: usize) {
        if actions > 0 {
            self.dropped.fetch_add(actions as u64, Ordering::Relaxed);
        }
    }

    /// Drops an action that will not run.
    pub(crate) fn discard(&self, queued: &Queued) {
        self.release(queued.bytes);
        self.count_dropped(1);
    }
}

/// Whether a [`Shared::generation`] means up.
pub(crate) fn is_up(generation: u64) -> bool {
    generation % 2 == 1
}

/// Allows something at most once a second, from any thread.
#[derive(Debug)]
pub(crate) struct RateLimit {
    since: Instant,
    /// Milliseconds after `since` of the last allowed time, plus one (0: never).
    last: AtomicU64,
}

impl RateLimit {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Whether now is allowed (and if so, the next second is not).
    pub(crate) fn allow(&self) -> bool {
        let now = u64::try_from(self.since.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = rest[..at].find(':') else {
        return url.to_owned();
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    format!("{}***{}", &url[..password_start], &url[password_end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:secret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("redis://u:secret@h:1"), "redis://u:***@h:1");
        assert_eq!(redact("redis://u@h:1"), "redis://u@h:1");
        assert_eq!(redact("redis://h:1/a@b"), "redis://h:1/a@b");
        assert_eq!(redact("u:p@w@h"), "u:***@h");
    }

    #[test]
    fn the_queue_bound_is_kept() {
        let shared = Shared::new(10);
        assert!(shared.reserve(6));
        assert!(!shared.reserve(5));
        assert!(shared.reserve(4));
        shared.release(10);
        assert!(shared.reserve(10));
    }

    #[test]
    fn a_rate_limit_allows_once_a_second() {
        let limit = RateLimit::new();
        assert!(limit.allow());
        assert!(!limit.allow());
    }

    #[test]
    fn a_bridge_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Bridge>();
    }
}
