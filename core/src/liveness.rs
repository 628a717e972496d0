//! When each connection is pinged, evicted, timed out or expired: the deadline bookkeeping
//! around the timer heap.

use crate::action::{Action, CloseCode};
use crate::config::Config;
use crate::registry::{AuthState, ConnId, Connection};
use crate::switchboard::{Leave, Switchboard};
use crate::time::{Instant, Now};

impl Switchboard {
    /// Does the work due at `now`: pings, zombie evictions, auth timeouts, token expiries, and
    /// the drain deadline. Costs O(work due), never a scan of all connections.
    pub fn handle_timeout(&mut self, now: Now) {
        let t = now.instant;
        while let Some((at, id)) = self.timers.pop_due(t) {
            let Some(conn) = self.registry.get_mut(id) else {
                self.stale_timers = self.stale_timers.saturating_sub(1);
                continue; // the connection left
            };
            if conn.timer_at != at {
                self.stale_timers = self.stale_timers.saturating_sub(1);
                continue; // superseded by an earlier deadline that already ran
            }
            let leave = if t >= conn.last_seen + self.config.pong_timeout {
                Some(Leave::Evict)
            } else {
                match &conn.auth {
                    AuthState::Pending { deadline } if t >= *deadline => Some(Leave::Close(
                        CloseCode::AUTH_TIMEOUT,
                        "authentication timeout".into(),
                    )),
                    AuthState::Authenticated(s) if t >= s.expires_at => Some(Leave::Close(
                        CloseCode::TOKEN_EXPIRED,
                        "token expired".into(),
                    )),
                    _ => None,
                }
            };
            if let Some(leave) = leave {
                self.leave(now, id, leave);
                continue;
            }
            if t >= conn.next_ping {
                self.actions.push_back(Action::Ping { conn: id });
                // After a long stall, ping once and resume the cadence from now.
                conn.next_ping =
                    (conn.next_ping + self.config.ping_interval).max(t + self.config.ping_interval);
            }
            conn.timer_at = next_deadline(conn, &self.config);
            self.timers.schedule(conn.timer_at, id);
        }
        self.cluster_timeout(now);
        if let Some(history) = self.history.as_mut() {
            history.sweep(t);
        }
        if let Some(deadline) = self.draining {
            if !self.stopped && t >= deadline {
                self.stopped = true;
                self.actions.push_back(Action::Stop);
            }
        }
    }

    /// A connection's timer entry went stale. Under churn, entries of connections that left
    /// would pile up until their deadline: once they are the majority, drop them all at once
    /// (O(n), amortized O(1) per stale entry).
    pub(crate) fn forget_timer(&mut self) {
        self.stale_timers += 1;
        if self.stale_timers > 1024 && self.stale_timers > self.timers.len() / 2 {
            let registry = &self.registry;
            self.timers
                .retain(|at, id| registry.get(id).is_some_and(|c| c.timer_at == at));
            self.stale_timers = 0;
        }
    }

    /// Moves a connection's timer earlier if its state now needs attention sooner.
    pub(crate) fn rearm(&mut self, id: ConnId) {
        let Some(conn) = self.registry.get_mut(id) else {
            return;
        };
        let next = next_deadline(conn, &self.config);
        if next < conn.timer_at {
            if conn.timer_at != Instant::NEVER {
                self.stale_timers += 1;
            }
            conn.timer_at = next;
            self.timers.schedule(next, id);
        }
    }
}

/// The earliest instant at which a connection needs attention: its next ping, the moment it
/// becomes a zombie, its auth deadline or its token's expiry.
fn next_deadline(conn: &Connection, config: &Config) -> Instant {
    let due = conn.next_ping.min(conn.last_seen + config.pong_timeout);
    match &conn.auth {
        AuthState::Pending { deadline } => due.min(*deadline),
        AuthState::Authenticated(session) => due.min(session.expires_at),
    }
}
