//! One topic's stream: its position and the messages it keeps, oldest first.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::history::position::{Epoch, Position};
use crate::payload::Payload;
use crate::time::Instant;

/// A kept message: the very frame its subscribers were sent (shared, not copied), and where
/// in it the `"data":…,"metadata":{…}` members sit, which a history listing quotes.
#[derive(Clone, Debug)]
pub struct HistoryMessage {
    offset: u64,
    published: Instant,
    unix_millis: u64,
    frame: Payload,
    body: Range<u32>,
}

impl HistoryMessage {
    pub(crate) fn new(offset: u64, published: Instant, unix_millis: u64, frame: Payload) -> Self {
        let body = message_body(&frame);
        HistoryMessage {
            offset,
            published,
            unix_millis,
            frame,
            body,
        }
    }

    /// Its offset in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// When it was published (wall clock, milliseconds since the Unix epoch).
    pub fn unix_millis(&self) -> u64 {
        self.unix_millis
    }

    /// The `message` frame, exactly as it was delivered.
    pub fn frame(&self) -> &Payload {
        &self.frame
    }

    /// The frame's `"data":…,"metadata":{…}` members, as they appear in it.
    pub(crate) fn body(&self) -> &str {
        let (start, end) = (self.body.start as usize, self.body.end as usize);
        self.frame.as_str().get(start..end).unwrap_or_default()
    }
}

/// Where `"data"` starts and `"metadata"`'s object ends in a frame of the core's `message`
/// encoder: `{"type":"message","topic":"…","data":…,"metadata":{…},"offset":…`. A topic has no
/// character that needs escaping, so the first `,"data":` is the member itself, and the
/// encoder writes `,"offset":` right after the metadata object.
fn message_body(frame: &Payload) -> Range<u32> {
    let text = frame.as_str();
    let start = text.find(",\"data\":").map_or(0, |i| i + 1);
    let end = text.rfind(",\"offset\":").unwrap_or(start);
    u32::try_from(start).unwrap_or(0)..u32::try_from(end).unwrap_or(0)
}

/// Why a position cannot be continued from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// The position names another epoch (the stream was lost and started again since).
    OtherEpoch,
    /// The position is past the stream's offset.
    Ahead,
    /// Messages after the position are no longer kept.
    Dropped,
}

/// A topic's stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) topic: Arc<str>,
    pub(crate) epoch: Epoch,
    pub(crate) offset: u64,
    /// Contiguous offsets, ending at `offset`.
    kept: VecDeque<HistoryMessage>,
    /// Sum of the kept frames' lengths.
    pub(crate) bytes: usize,
    /// Connections holding exactly this topic as a pattern.
    pub(crate) subscribers: u32,
    pub(crate) published_at: Instant,
    /// Matches its entry in the store's publish order while it keeps messages; 0 otherwise.
    pub(crate) publish_stamp: u64,
    /// Matches its entry in the store's idle order while idle; 0 otherwise.
    pub(crate) idle_stamp: u64,
    pub(crate) idle_since: Instant,
}

impl Stream {
    pub(crate) fn new(topic: Arc<str>, epoch: Epoch, now: Instant) -> Self {
        Stream {
            topic,
            epoch,
            offset: 0,
            kept: VecDeque::new(),
            bytes: 0,
            subscribers: 0,
            published_at: now,
            publish_stamp: 0,
            idle_stamp: 0,
            idle_since: now,
        }
    }

    pub(crate) fn position(&self) -> Position {
        Position {
            offset: self.offset,
            epoch: self.epoch.clone(),
        }
    }

    pub(crate) fn has_messages(&self) -> bool {
        !self.kept.is_empty()
    }

    /// Appends the next message; returns the bytes it added.
    pub(crate) fn push(&mut self, message: HistoryMessage) -> usize {
        debug_assert_eq!(message.offset, self.offset + 1);
        self.offset = message.offset;
        self.published_at = message.published;
        let len = message.frame.len();
        self.bytes += len;
        self.kept.push_back(message);
        len
    }

    /// Drops the oldest kept message; returns its bytes (0 when none was kept).
    pub(crate) fn pop_oldest(&mut self) -> usize {
        let len = self.kept.pop_front().map_or(0, |m| m.frame.len());
        self.bytes -= len;
        len
    }

    /// Drops the messages published `ttl` or longer before `now`; returns their bytes.
    pub(crate) fn expire(&mut self, now: Instant, ttl: Duration) -> usize {
        let mut freed = 0;
        while self.kept.front().is_some_and(|m| now >= m.published + ttl) {
            freed += self.pop_oldest();
        }
        freed
    }

    /// Drops every kept message (the position stays); returns their bytes.
    pub(crate) fn clear(&mut self) -> usize {
        let freed = self.bytes;
        self.kept.clear();
        self.bytes = 0;
        freed
    }

    /// The kept messages after `offset` of `epoch`, oldest first, if every one of them is
    /// still kept.
    pub(crate) fn after(
        &self,
        offset: u64,
        epoch: &str,
    ) -> Result<impl Iterator<Item = &HistoryMessage>, Gap> {
        let kept = self.kept_after(offset, epoch)?;
        let first = self.offset + 1 - self.kept.len() as u64;
        if offset + 1 < first {
            return Err(Gap::Dropped);
        }
        Ok(kept)
    }

    /// The kept messages after `offset` of `epoch`, whether or not earlier ones were dropped
    /// (a listing shows what is there).
    pub(crate) fn kept_after(
        &self,
        offset: u64,
        epoch: &str,
    ) -> Result<impl Iterator<Item = &HistoryMessage>, Gap> {
        if epoch != self.epoch.as_str() {
            return Err(Gap::OtherEpoch);
        }
        if offset > self.offset {
            return Err(Gap::Ahead);
        }
        let skip = self.kept.partition_point(|m| m.offset <= offset);
        Ok(self.kept.iter().skip(skip))
    }

    /// The latest `n` kept messages, oldest first.
    pub(crate) fn latest(&self, n: usize) -> impl Iterator<Item = &HistoryMessage> {
        self.kept.iter().skip(self.kept.len().saturating_sub(n))
    }

    /// How many messages are kept.
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }
}
