//! The command queue between application threads (the `Handle`) and the event loop.
//!
//! Any thread pushes; the loop drains when its waker fires. The handoff must lose no wake-up:
//! a command pushed while the loop is about to sleep must wake it. The rule that ensures it:
//! the "a wake-up is on its way" flag lives under the same lock as the items, a push that
//! finds it clear sets it and then wakes the loop, and a drain clears it in the same critical
//! section in which it takes the items. So whenever an item is in the queue, either the flag
//! is set by a pusher that has woken or will wake the loop, or the loop has not drained since;
//! and since wakers are sticky (a wake before the loop sleeps makes the next sleep return at
//! once, like mio's), the loop always comes back for it. The flag spares a system call per
//! command when many arrive between two drains.
//!
//! Once the loop has stopped, the queue is closed: pushes are refused (the caller learns the
//! server stopped) and what was still queued is handed back, to be dropped, which disconnects
//! the reply channels inside. No command is lost silently or delivered twice.

use std::collections::VecDeque;

use crate::sync::{lock, Mutex};

/// Wakes the event loop: sticky, so that a wake before the loop sleeps is not lost.
pub(crate) trait Wake {
    /// Makes the loop's current or next sleep return.
    fn wake(&self);
}

impl Wake for mio::Waker {
    fn wake(&self) {
        if let Err(e) = mio::Waker::wake(self) {
            // Only fails if the eventfd/pipe is broken, which the loop would notice itself.
            tracing::warn!(error = %e, "could not wake the event loop");
        }
    }
}

struct State<T> {
    items: VecDeque<T>,
    /// A pusher has woken (or is about to wake) the loop since its last drain.
    woken: bool,
    /// The loop has stopped: no more pushes.
    closed: bool,
}

/// A multi-producer, single-consumer queue with a sticky wake-up of its consumer.
pub(crate) struct CommandQueue<T, W> {
    state: Mutex<State<T>>,
    waker: W,
}

impl<T, W: Wake> CommandQueue<T, W> {
    pub(crate) fn new(waker: W) -> Self {
        CommandQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                woken: false,
                closed: false,
            }),
            waker,
        }
    }

    /// Queues `item` and wakes the loop if no wake-up is on its way. `Err(item)` once closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let wake = {
            let mut state = lock(&self.state);
            if state.closed {
                return Err(item);
            }
            state.items.push_back(item);
            !std::mem::replace(&mut state.woken, true)
        };
        // Outside the lock: the loop may drain before this wake lands; it then wakes once for
        // nothing, which is harmless, while waking under the lock would make it wait for us.
        if wake {
            self.waker.wake();
        }
        Ok(())
    }

    /// Takes everything queued (in push order). Call after each wake-up of the loop.
    pub(crate) fn drain(&self) -> VecDeque<T> {
        let mut state = lock(&self.state);
        // Cleared together with the take: a later push must wake the loop again.
        state.woken = false;
        std::mem::take(&mut state.items)
    }

    /// Refuses every later push and hands back what is still queued.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut state = lock(&self.state);
        state.closed = true;
        std::mem::take(&mut state.items)
    }

    /// The waker, for tests.
    #[cfg(all(test, switchboard_loom))]
    fn waker(&self) -> &W {
        &self.waker
    }
}

#[cfg(all(test, switchboard_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    /// A sticky wake-up, like mio's eventfd: set by `wake`, consumed by the loop when it
    /// sleeps. A flag under a loom lock: the model is the waker's contract, not its code.
    struct Flag(Mutex<bool>);

    impl Default for Flag {
        fn default() -> Self {
            Flag(Mutex::new(false))
        }
    }

    impl Wake for Flag {
        fn wake(&self) {
            *lock(&self.0) = true;
        }
    }

    impl Flag {
        /// The loop's sleep: whether it returns (a wake-up was pending), consuming it.
        fn sleep_returns(&self) -> bool {
            std::mem::replace(&mut *lock(&self.0), false)
        }
    }

    type Queue = CommandQueue<u32, Flag>;

    /// The loop, after its last drain, goes to sleep: if a command is still queued, its sleep
    /// must return (otherwise the command waits for an unrelated event: a lost wake-up).
    fn settle(queue: &Queue, got: &mut Vec<u32>) {
        while queue.waker().sleep_returns() {
            got.extend(queue.drain());
        }
        assert!(
            queue.drain().is_empty(),
            "lost wake-up: a command is queued while the loop sleeps"
        );
    }

    /// A handle pushes two commands while the loop drains and goes to sleep: both are seen,
    /// once each, in order, and the loop is woken for them.
    #[test]
    fn loom_command_pushed_while_the_loop_goes_to_sleep_is_seen() {
        loom::model(|| {
            let queue = Arc::new(Queue::new(Flag::default()));
            let handle = {
                let queue = queue.clone();
                loom::thread::spawn(move || {
                    queue.push(1).unwrap();
                    queue.push(2).unwrap();
                })
            };
            // One wake-up of the loop, racing the pushes.
            let mut got = Vec::new();
            if queue.waker().sleep_returns() {
                got.extend(queue.drain());
            }
            handle.join().unwrap();
            settle(&queue, &mut got);
            assert_eq!(got, vec![1, 2], "lost or duplicated command");
        });
    }

    /// Two handles on two threads: every command is delivered exactly once, each handle's in
    /// its order, whatever the interleaving with the loop's drains.
    #[test]
    fn loom_two_handles_neither_lose_nor_duplicate() {
        loom::model(|| {
            let queue = Arc::new(Queue::new(Flag::default()));
            let handles: Vec<_> = [10, 20]
                .into_iter()
                .map(|base| {
                    let queue = queue.clone();
                    loom::thread::spawn(move || {
                        queue.push(base).unwrap();
                        queue.push(base + 1).unwrap();
                    })
                })
                .collect();
            let mut got = Vec::new();
            got.extend(queue.drain());
            if queue.waker().sleep_returns() {
                got.extend(queue.drain());
            }
            for handle in handles {
                handle.join().unwrap();
            }
            settle(&queue, &mut got);
            let tens: Vec<_> = got.iter().copied().filter(|&c| c < 20).collect();
            assert_eq!(
                tens,
                vec![10, 11],
                "first handle: lost, duplicated or reordered"
            );
            let twenties: Vec<_> = got.iter().copied().filter(|&c| c >= 20).collect();
            assert_eq!(
                twenties,
                vec![20, 21],
                "second handle: lost, duplicated or reordered"
            );
        });
    }

    /// The loop stops while a handle pushes: each command is either delivered, handed back by
    /// `close` (dropped: its sender learns the server stopped) or refused, exactly once.
    #[test]
    fn loom_close_racing_a_push_accounts_for_every_command_once() {
        loom::model(|| {
            let queue = Arc::new(Queue::new(Flag::default()));
            let handle = {
                let queue = queue.clone();
                loom::thread::spawn(move || {
                    [1, 2]
                        .into_iter()
                        .filter_map(|c| queue.push(c).err())
                        .collect::<Vec<_>>()
                })
            };
            let mut seen: Vec<u32> = queue.drain().into_iter().collect();
            seen.extend(queue.close());
            let refused = handle.join().unwrap();
            seen.extend(refused);
            seen.extend(queue.drain());
            seen.sort_unstable();
            assert_eq!(seen, vec![1, 2], "a command was lost or seen twice");
            assert_eq!(queue.push(3), Err(3), "a closed queue refuses pushes");
        });
    }
}
