//! A connection's outbound queue and its backlog: the bytes queued for the client and not yet
//! written to its socket.
//!
//! Bounded in bytes by the core, not here: the loop reports [`Outbound::backlog`] after each
//! push and the core closes a slow consumer with 4009. The backlog is exact by construction: it
//! is the sum of two counters, each changed only where its bytes move: `queued` (frames
//! waiting here) and `handed` (frames given to the WebSocket codec since its last complete
//! flush, i.e. possibly still in its buffer). Like the tokio adapter, a frame handed to the
//! codec counts until the flush that wrote it completes.

use std::collections::VecDeque;

use switchboard_core::Payload;

/// One frame to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// A text frame (serialized JSON, shared by every recipient).
    Text(Payload),
    /// A WebSocket ping.
    Ping,
}

impl Outgoing {
    /// The bytes this frame adds to the backlog: its payload.
    pub(crate) fn len(&self) -> usize {
        match self {
            Outgoing::Text(bytes) => bytes.len(),
            Outgoing::Ping => 0,
        }
    }
}

/// Frames waiting for the socket, and the bytes not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    queue: VecDeque<Outgoing>,
    /// Payload bytes in `queue`.
    queued: usize,
    /// Payload bytes handed to the codec since its last complete flush.
    handed: usize,
}

impl Outbound {
    /// Queues a frame; returns the backlog after it.
    pub(crate) fn push(&mut self, frame: Outgoing) -> usize {
        self.queued += frame.len();
        self.queue.push_back(frame);
        self.backlog()
    }

    /// The next frame for the codec; its bytes stay in the backlog until [`flushed`](Self::flushed).
    pub(crate) fn hand_over(&mut self) -> Option<Outgoing> {
        let frame = self.queue.pop_front()?;
        let len = frame.len();
        self.queued -= len;
        self.handed += len;
        if self.queue.is_empty() {
            // Give the memory back: an idle connection holds no queue buffer.
            self.queue = VecDeque::new();
        }
        Some(frame)
    }

    /// The codec flushed completely: everything handed over is on the socket.
    pub(crate) fn flushed(&mut self) {
        self.handed = 0;
    }

    /// Drops what has not been handed over (slow consumer, or the peer left); returns the
    /// bytes dropped. What the codec holds already cannot be taken back and stays counted.
    pub(crate) fn discard(&mut self) -> usize {
        let dropped = self.queued;
        self.queue = VecDeque::new();
        self.queued = 0;
        dropped
    }

    /// Whether frames wait to be handed over.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes queued for the client and not yet written to its socket.
    pub(crate) fn backlog(&self) -> usize {
        self.queued + self.handed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Outgoing {
        // A JSON number of `n` digits: `n` bytes.
        Outgoing::Text(Payload::parse(&"1".repeat(n)).unwrap())
    }

    #[test]
    fn backlog_follows_every_byte() {
        let mut out = Outbound::default();
        assert_eq!(out.push(text(10)), 10);
        assert_eq!(out.push(Outgoing::Ping), 10);
        assert_eq!(out.push(text(5)), 15);
        assert_eq!(out.hand_over(), Some(text(10)));
        assert_eq!(out.backlog(), 15, "handed but not flushed still counts");
        out.flushed();
        assert_eq!(out.backlog(), 5);
        assert_eq!(out.hand_over(), Some(Outgoing::Ping));
        assert_eq!(out.hand_over(), Some(text(5)));
        assert!(out.is_empty());
        assert_eq!(out.hand_over(), None);
        out.flushed();
        assert_eq!(out.backlog(), 0);
    }

    #[test]
    fn discard_drops_only_what_was_not_handed_over() {
        let mut out = Outbound::default();
        out.push(text(7));
        out.push(text(3));
        out.push(text(4));
        assert_eq!(out.hand_over(), Some(text(7)));
        assert_eq!(out.discard(), 7);
        assert_eq!(
            out.backlog(),
            7,
            "the codec still holds the frame in flight"
        );
        assert!(out.is_empty());
        out.flushed();
        assert_eq!(out.backlog(), 0);
    }
}
