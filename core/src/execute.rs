//! How the core's actions meet a transport: one loop for every adapter.
//!
//! An adapter implements [`Transport`] (queue a frame, ping, close, evict) and calls
//! [`Switchboard::execute`] after every input. The loop is the core's, so the decisions that
//! go with executing actions are made once: a connection whose backlog crosses
//! `max_outbound_bytes` is closed with 4009 right there, its unwritten frames are dropped
//! ([`CloseMode::Discard`]), and nothing queued for it afterwards reaches the transport.

use std::borrow::Cow;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::action::{Action, CloseCode, CloseMode};
use crate::cluster::BusAction;
use crate::payload::Payload;
use crate::registry::ConnId;
use crate::switchboard::Switchboard;
use crate::telemetry::DropReason;
use crate::time::Now;

/// What an adapter does with the core's decisions, one method per [`Action`].
///
/// Every method is called from inside [`Switchboard::execute`], which holds the core: an
/// implementation cannot feed the core an input mid-drain, which is the drive contract.
pub trait Transport {
    /// Queues a text frame for `conn`. Returns the connection's outbound backlog after it
    /// (bytes queued or handed to the socket and not yet written), or `None` if the transport
    /// no longer has this connection.
    fn send(&mut self, conn: ConnId, payload: Payload) -> Option<usize>;

    /// Queues a WebSocket ping for `conn`.
    fn ping(&mut self, conn: ConnId);

    /// Closes `conn` as [`Action::Close`] describes: per `mode` write or drop what is queued,
    /// write the close frame, then read and discard until the peer closes, at most
    /// [`CLOSE_GRACE`](crate::CLOSE_GRACE) from now.
    fn close(&mut self, conn: ConnId, code: CloseCode, reason: Cow<'static, str>, mode: CloseMode);

    /// Drops `conn`'s transport at once, without a close handshake (a zombie).
    fn evict(&mut self, conn: ConnId);

    /// A user came online or went offline (for the application; nothing to write).
    fn presence(&mut self, user: &Arc<str>, online: bool, connections: usize) {
        let _ = (user, online, connections);
    }

    /// The drain deadline passed: drop whatever transports remain and stop.
    fn stop(&mut self);

    /// Cluster mode: hand this to the bus (the bridge). A switchboard not in a cluster never
    /// calls it.
    fn bus(&mut self, action: BusAction) {
        let _ = action;
    }
}

impl Switchboard {
    /// Executes every action decided so far, in order, against `transport`; returns once none
    /// is left. Call it after every input (the drive contract), with the `now` of that input.
    ///
    /// A frame that takes a connection's backlog over `max_outbound_bytes` closes it with 4009
    /// ([`CloseMode::Discard`]): frames queued for it later in the same drain never reach the
    /// transport.
    pub fn execute(&mut self, now: Now, transport: &mut impl Transport) {
        // Slow consumers closed during this drain whose close action is still ahead.
        let mut slow: SmallVec<[ConnId; 2]> = SmallVec::new();
        while let Some(action) = self.next_action() {
            match action {
                Action::Send { conn, payload } => {
                    if slow.contains(&conn) {
                        self.telemetry.drop_message(DropReason::SlowConsumer);
                        continue;
                    }
                    self.count_send();
                    let Some(backlog) = transport.send(conn, payload) else {
                        self.telemetry.drop_message(DropReason::ConnectionGone);
                        continue;
                    };
                    self.telemetry.queued(backlog);
                    if backlog > self.config().max_outbound_bytes && self.close_slow(now, conn) {
                        slow.push(conn);
                    }
                }
                Action::Ping { conn } => {
                    if !slow.contains(&conn) {
                        transport.ping(conn);
                    }
                }
                Action::Close {
                    conn,
                    code,
                    reason,
                    mode,
                } => {
                    slow.retain(|&mut c| c != conn);
                    transport.close(conn, code, reason, mode);
                }
                Action::Evict { conn } => transport.evict(conn),
                Action::Presence {
                    user,
                    online,
                    connections,
                } => transport.presence(&user, online, connections),
                Action::Stop => transport.stop(),
                Action::Bus(action) => transport.bus(action),
            }
        }
    }
}
