//! A connection's outbound queue: filled by the driver task, emptied by the connection's task.
//!
//! Bounded in bytes by the core, not here: the driver reports the backlog after each push and
//! the core closes a slow consumer with 4009. The queue holds no buffer while it is empty.

use std::collections::VecDeque;

use switchboard_core::Payload;

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// One frame to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// A text frame (serialized JSON, shared by every recipient).
    Text(Payload),
    /// A WebSocket ping.
    Ping,
}

/// How the connection must end, once decided by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Write a close frame after what is already queued, then drop the transport.
    Close { code: u16, reason: String },
    /// Drop the transport now, without a close frame.
    Evict,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Outgoing>,
    end: Option<End>,
    /// The writer must give up a blocked write: the connection is evicted or a slow consumer.
    abort: bool,
}

/// The queue shared by the driver and one connection task.
#[derive(Default)]
pub(crate) struct Outbound {
    state: Mutex<State>,
    /// Bytes queued or handed to the socket writer and not yet flushed: the backlog.
    backlog: AtomicUsize,
}

impl Outbound {
    /// Queues a frame; returns the backlog after it. Frames after the end are dropped.
    pub(crate) fn push(&self, frame: Outgoing) -> usize {
        let len = match &frame {
            Outgoing::Text(b) => b.len(),
            Outgoing::Ping => 0,
        };
        let mut state = self.state.lock().unwrap();
        if state.end.is_some() {
            return self.backlog.load(Ordering::Acquire);
        }
        state.queue.push_back(frame);
        self.backlog.fetch_add(len, Ordering::AcqRel) + len
    }

    /// Ends the connection. With `discard`, what is still queued is dropped first (slow consumer).
    pub(crate) fn end(&self, end: End, discard: bool) {
        let mut state = self.state.lock().unwrap();
        if state.end.is_some() {
            return;
        }
        if discard {
            let dropped: usize = state.queue.drain(..).map(|f| frame_len(&f)).sum();
            self.backlog.fetch_sub(dropped, Ordering::AcqRel);
            state.queue = VecDeque::new();
        }
        state.abort = discard || end == End::Evict;
        state.end = Some(end);
    }

    /// Takes queued frames up to about `budget` bytes (at least one), for one batched write.
    /// Returns the frames, their byte count, and the end once nothing is left before it.
    pub(crate) fn take(&self, budget: usize, out: &mut Vec<Outgoing>) -> (usize, Option<End>) {
        let mut state = self.state.lock().unwrap();
        let mut bytes = 0;
        while bytes < budget {
            let Some(frame) = state.queue.pop_front() else {
                break;
            };
            bytes += frame_len(&frame);
            out.push(frame);
        }
        if state.queue.is_empty() {
            // Give the memory back: an idle connection holds no queue buffer.
            state.queue = VecDeque::new();
            (bytes, state.end.clone())
        } else {
            (bytes, None)
        }
    }

    /// Whether a write in progress must be abandoned (eviction, slow consumer).
    pub(crate) fn must_abort(&self) -> bool {
        self.state.lock().unwrap().abort
    }

    /// How the connection ends, if that is decided.
    pub(crate) fn end_decided(&self) -> Option<End> {
        self.state.lock().unwrap().end.clone()
    }

    /// The writer flushed `bytes` to the socket.
    pub(crate) fn written(&self, bytes: usize) {
        self.backlog.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes not yet written to the socket.
    pub(crate) fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }
}

fn frame_len(frame: &Outgoing) -> usize {
    match frame {
        Outgoing::Text(b) => b.len(),
        Outgoing::Ping => 0,
    }
}

#[cfg(all(test, switchboard_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    fn text(n: u8) -> Outgoing {
        // A JSON number of `n` digits: `n` bytes.
        Outgoing::Text(Payload::parse(&"1".repeat(usize::from(n))).unwrap())
    }

    /// The driver queues frames and then a close while the writer drains: every frame is
    /// written once, in order, the close comes after them, and the backlog returns to zero.
    #[test]
    fn loom_frames_and_close_are_neither_lost_nor_duplicated() {
        loom::model(|| {
            let out = Arc::new(Outbound::default());
            let driver = {
                let out = out.clone();
                loom::thread::spawn(move || {
                    out.push(text(1));
                    out.push(text(2));
                    out.end(
                        End::Close {
                            code: 1000,
                            reason: String::new(),
                        },
                        false,
                    );
                })
            };
            let mut written = Vec::new();
            let mut end = None;
            let mut batch = Vec::new();
            for _ in 0..3 {
                let (bytes, e) = out.take(1, &mut batch);
                written.append(&mut batch);
                out.written(bytes);
                if e.is_some() {
                    end = e;
                    break;
                }
                loom::thread::yield_now();
            }
            driver.join().unwrap();
            if end.is_none() {
                let (bytes, e) = out.take(usize::MAX, &mut batch);
                written.append(&mut batch);
                out.written(bytes);
                end = e;
            }
            assert_eq!(written, vec![text(1), text(2)]);
            assert!(matches!(end, Some(End::Close { code: 1000, .. })));
            assert_eq!(out.backlog(), 0);
        });
    }

    /// A slow consumer's close discards what is queued, and the backlog counter stays exact
    /// however the writer's accounting interleaves with it.
    #[test]
    fn loom_discarding_close_keeps_the_backlog_exact() {
        loom::model(|| {
            let out = Arc::new(Outbound::default());
            out.push(text(3));
            out.push(text(4));
            let writer = {
                let out = out.clone();
                loom::thread::spawn(move || {
                    let mut batch = Vec::new();
                    let (bytes, _) = out.take(1, &mut batch);
                    out.written(bytes);
                    batch
                })
            };
            out.end(End::Evict, true);
            let taken = writer.join().unwrap();
            assert!(out.must_abort());
            // Whatever the writer took was written; the rest was discarded: nothing is owed.
            assert!(taken.len() <= 1);
            assert_eq!(out.backlog(), 0);
            assert_eq!(out.push(text(5)), 0, "frames after the end are dropped");
        });
    }
}
