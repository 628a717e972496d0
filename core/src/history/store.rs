//! Every topic's stream, and the bounds on all of them: `history_size` messages a stream,
//! none older than `history_ttl`, `history_max_bytes` over all (the streams least recently
//! published to are dropped first).
//!
//! Two orders are kept as queues of `(slot, stamp)` with lazy deletion, so that each update is
//! O(1): the streams that keep messages by their latest publish, and the idle streams (nothing
//! kept, no subscriber) by when they became idle. An entry whose stamp no longer matches its
//! stream's is stale and skipped; a queue is compacted once stale entries are the majority.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::hashing::{hasher, Map};
use crate::history::position::{EpochSource, Position};
use crate::history::stream::{HistoryMessage, Stream};
use crate::payload::Payload;
use crate::time::Instant;

/// Idle streams (nothing kept, no subscriber) kept at most, so that a client asking about
/// ever new topics cannot grow the store: over it the oldest goes at once. An idle stream is
/// dropped after `history_ttl` anyway.
pub(crate) const MAX_IDLE_STREAMS: usize = 10_000;

/// Expired messages of streams no longer published to are freed at most this often (reads
/// never see them: every read expires first).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The bounds of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) size: usize,
    pub(crate) ttl: Duration,
    pub(crate) max_bytes: usize,
}

pub(crate) struct Store {
    bounds: Bounds,
    index: Map<Arc<str>, usize>,
    streams: Slab<Stream>,
    by_publish: VecDeque<(usize, u64)>,
    idle: VecDeque<(usize, u64)>,
    stamp: u64,
    bytes: usize,
    with_messages: usize,
    idle_count: usize,
    epochs: EpochSource,
    next_sweep: Instant,
}

impl Store {
    pub(crate) fn new(bounds: Bounds, hash_seed: u64, epoch_seed: u64) -> Self {
        Store {
            bounds,
            index: Map::with_hasher(hasher(hash_seed)),
            streams: Slab::new(),
            by_publish: VecDeque::new(),
            idle: VecDeque::new(),
            stamp: 0,
            bytes: 0,
            with_messages: 0,
            idle_count: 0,
            epochs: EpochSource::new(epoch_seed),
            next_sweep: Instant::ZERO,
        }
    }

    /// Draws epochs from another seed from now on.
    pub(crate) fn reseed(&mut self, epoch_seed: u64) {
        self.epochs = EpochSource::new(epoch_seed);
    }

    /// The topic's stream, started (offset 0, a new epoch) if it has none, with its expired
    /// messages dropped.
    fn touch(&mut self, topic: &str, now: Instant) -> usize {
        let slot = match self.index.get(topic) {
            Some(&slot) => slot,
            None => {
                let topic: Arc<str> = topic.into();
                let stream = Stream::new(topic.clone(), self.epochs.next(), now);
                let slot = self.streams.insert(stream);
                self.index.insert(topic, slot);
                self.make_idle(slot, now);
                slot
            }
        };
        let freed = self.streams[slot].expire(now, self.bounds.ttl);
        self.freed(slot, freed, now);
        slot
    }

    /// The topic's stream, as [`touch`](Self::touch) leaves it.
    pub(crate) fn stream(&mut self, topic: &str, now: Instant) -> &Stream {
        let slot = self.touch(topic, now);
        &self.streams[slot]
    }

    /// A connection subscribed to exactly this topic: its stream stays while it does.
    pub(crate) fn subscribe(&mut self, topic: &str, now: Instant) -> &Stream {
        let slot = self.touch(topic, now);
        self.unidle(slot);
        self.streams[slot].subscribers += 1;
        &self.streams[slot]
    }

    /// A connection dropped its subscription to exactly this topic.
    pub(crate) fn unsubscribe(&mut self, topic: &str, now: Instant) {
        let Some(&slot) = self.index.get(topic) else {
            return;
        };
        let stream = &mut self.streams[slot];
        stream.subscribers = stream.subscribers.saturating_sub(1);
        if stream.subscribers == 0 && !stream.has_messages() {
            self.make_idle(slot, now);
        }
    }

    /// Appends a message: `encode` writes its frame at the position it gets. Returns the
    /// position and the frame, then enforces the bounds.
    pub(crate) fn append(
        &mut self,
        topic: &str,
        now: Instant,
        unix_millis: u64,
        encode: impl FnOnce(&Position) -> Payload,
    ) -> (Position, Payload) {
        let slot = self.touch(topic, now);
        self.unidle(slot);
        let stream = &mut self.streams[slot];
        let position = Position {
            offset: stream.offset + 1,
            epoch: stream.epoch.clone(),
        };
        let frame = encode(&position);
        let message = HistoryMessage::new(position.offset, now, unix_millis, frame.clone());
        let was_empty = !stream.has_messages();
        self.bytes += stream.push(message);
        let mut freed = 0;
        while stream.len() > self.bounds.size {
            freed += stream.pop_oldest();
        }
        self.bytes -= freed;
        if was_empty {
            self.with_messages += 1;
        }
        self.mark_published(slot);
        self.enforce_max_bytes(slot, now);
        (position, frame)
    }

    /// Frees what has expired: whole streams no longer published to within the ttl, and idle
    /// streams idle for the ttl or over [`MAX_IDLE_STREAMS`]. Rate-limited to one sweep a second.
    pub(crate) fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY;
        let ttl = self.bounds.ttl;
        while let Some(&(slot, stamp)) = self.by_publish.front() {
            let Some(stream) = self
                .streams
                .get_mut(slot)
                .filter(|s| s.publish_stamp == stamp)
            else {
                self.by_publish.pop_front();
                continue;
            };
            if now < stream.published_at + ttl {
                break;
            }
            self.by_publish.pop_front();
            let freed = stream.clear();
            self.freed(slot, freed, now);
        }
        while let Some(&(slot, stamp)) = self.idle.front() {
            let Some(stream) = self.streams.get(slot).filter(|s| s.idle_stamp == stamp) else {
                self.idle.pop_front();
                continue;
            };
            if now < stream.idle_since + ttl && self.idle_count <= MAX_IDLE_STREAMS {
                break;
            }
            self.idle.pop_front();
            self.remove(slot);
        }
    }

    /// When [`sweep`](Self::sweep) next has work (possibly earlier: a stale entry's time).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let ttl = self.bounds.ttl;
        let publish = self.by_publish.front().map(|&(slot, _)| slot);
        let idle = self.idle.front().map(|&(slot, _)| slot);
        let published = publish
            .and_then(|s| self.streams.get(s))
            .map(|s| s.published_at + ttl);
        let idled = idle
            .and_then(|s| self.streams.get(s))
            .map(|s| s.idle_since + ttl);
        let due = match (published, idled) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(due.max(self.next_sweep))
    }

    /// Bytes of all kept frames.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Streams held, idle ones included.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// Messages kept over all streams.
    pub(crate) fn messages(&self) -> usize {
        self.streams.iter().map(|(_, s)| s.len()).sum()
    }

    // ---- the two orders ------------------------------------------------------------------

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    fn mark_published(&mut self, slot: usize) {
        // The common case, one topic published again and again, needs no new entry.
        let stream = &self.streams[slot];
        if stream.publish_stamp != 0
            && self.by_publish.back() == Some(&(slot, stream.publish_stamp))
        {
            return;
        }
        let stamp = self.next_stamp();
        self.streams[slot].publish_stamp = stamp;
        self.by_publish.push_back((slot, stamp));
        if self.by_publish.len() > 2 * self.with_messages + 32 {
            let streams = &self.streams;
            self.by_publish
                .retain(|&(s, st)| streams.get(s).is_some_and(|x| x.publish_stamp == st));
        }
    }

    fn make_idle(&mut self, slot: usize, now: Instant) {
        if self.streams[slot].idle_stamp != 0 {
            return;
        }
        let stamp = self.next_stamp();
        let stream = &mut self.streams[slot];
        stream.idle_stamp = stamp;
        stream.idle_since = now;
        self.idle_count += 1;
        self.idle.push_back((slot, stamp));
        if self.idle.len() > 2 * self.idle_count + 32 {
            let streams = &self.streams;
            self.idle
                .retain(|&(s, st)| streams.get(s).is_some_and(|x| x.idle_stamp == st));
        }
        // Over the cap the oldest idle stream goes at once (never this one: it is the newest).
        while self.idle_count > MAX_IDLE_STREAMS {
            let Some((oldest, stamp)) = self.idle.pop_front() else {
                break;
            };
            if self
                .streams
                .get(oldest)
                .is_some_and(|s| s.idle_stamp == stamp)
            {
                self.remove(oldest);
            }
        }
    }

    fn unidle(&mut self, slot: usize) {
        let stream = &mut self.streams[slot];
        if stream.idle_stamp != 0 {
            stream.idle_stamp = 0;
            self.idle_count -= 1;
        }
    }

    /// `freed` bytes left the stream in `slot`: account for them, and for the stream
    /// becoming empty (idle, without a subscriber).
    fn freed(&mut self, slot: usize, freed: usize, now: Instant) {
        if freed == 0 {
            return;
        }
        self.bytes -= freed;
        let stream = &mut self.streams[slot];
        if !stream.has_messages() {
            stream.publish_stamp = 0;
            self.with_messages -= 1;
            if stream.subscribers == 0 {
                self.make_idle(slot, now);
            }
        }
    }

    /// Over `max_bytes`: the streams least recently published to are dropped first; the one
    /// just published to, when it alone is over, loses its oldest messages instead (it keeps
    /// its position, so its subscribers lose nothing they were sent).
    fn enforce_max_bytes(&mut self, current: usize, now: Instant) {
        while self.bytes > self.bounds.max_bytes {
            let Some(&(slot, stamp)) = self.by_publish.front() else {
                return;
            };
            if self
                .streams
                .get(slot)
                .is_none_or(|s| s.publish_stamp != stamp)
            {
                self.by_publish.pop_front();
                continue;
            }
            if slot == current {
                let mut freed = 0;
                let stream = &mut self.streams[slot];
                while self.bytes - freed > self.bounds.max_bytes && stream.has_messages() {
                    freed += stream.pop_oldest();
                }
                self.freed(slot, freed, now);
                return;
            }
            self.by_publish.pop_front();
            self.lose(slot);
        }
    }

    /// A stream is lost: with subscribers it starts again under a new epoch, without it goes.
    fn lose(&mut self, slot: usize) {
        let stream = &mut self.streams[slot];
        let freed = stream.clear();
        self.bytes -= freed;
        if freed > 0 {
            self.with_messages -= 1;
        }
        stream.publish_stamp = 0;
        if stream.subscribers > 0 {
            stream.epoch = self.epochs.next();
            stream.offset = 0;
        } else {
            self.remove(slot);
        }
    }

    fn remove(&mut self, slot: usize) {
        self.unidle(slot);
        let stream = self.streams.remove(slot);
        if stream.has_messages() {
            self.bytes -= stream.bytes;
            self.with_messages -= 1;
        }
        self.index.remove(&stream.topic);
    }
}
