//! Every socket from accept to close: the slab that holds them, the connections the core knows,
//! their deadlines, the write passes due this turn, and the readiness interest registered for
//! each. The core's actions are carried out here ([`Transport`]); none of it feeds the core.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Registry, Token};
use slab::Slab;
use switchboard_adapter_kit::Clock;
use switchboard_core::cluster::BusAction;
use switchboard_core::http::HttpResponse;
use switchboard_core::{CloseCode, CloseMode, ConnId, Payload, Transport, CLOSE_GRACE};
use switchboard_redis::Bridge;
use tracing::{debug, info, warn};

use crate::outbound::Outgoing;
use crate::socket::{Answer, Phase, Socket, Ws, WsState};

/// The token offset of the first socket (the listener, the waker and the metrics listener
/// come first).
pub(crate) const FIRST_SOCKET: usize = 3;

/// The sockets of one event loop.
pub(crate) struct Sockets {
    pub(crate) registry: Registry,
    /// The embedding application's first token for this server.
    pub(crate) first: usize,
    pub(crate) slab: Slab<Socket>,
    /// The connections the core knows, and their sockets.
    pub(crate) conns: HashMap<ConnId, usize>,
    /// Sockets in the WebSocket phase (open or closing): capped by `max_connections`.
    pub(crate) websockets: usize,
    deadlines: BTreeSet<(Instant, usize)>,
    /// Sockets with a write pass due this turn.
    pub(crate) dirty: Vec<usize>,
    /// Sockets with more to read than one batch, or whose reading was deferred.
    pub(crate) again: Vec<usize>,
    /// The core said stop: the drain deadline passed.
    pub(crate) stopped: bool,
    clock: Clock,
    /// Cluster mode: the bus to the other nodes.
    bridge: Option<Bridge>,
}

impl Sockets {
    pub(crate) fn new(
        registry: Registry,
        first: usize,
        clock: Clock,
        bridge: Option<Bridge>,
    ) -> Self {
        Sockets {
            registry,
            first,
            slab: Slab::new(),
            conns: HashMap::new(),
            websockets: 0,
            deadlines: BTreeSet::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            stopped: false,
            bridge,
            clock,
        }
    }

    pub(crate) fn token(&self, key: usize) -> Token {
        Token(self.first + FIRST_SOCKET + key)
    }

    pub(crate) fn ws_mut(&mut self, key: usize) -> Option<&mut Ws> {
        match &mut self.slab.get_mut(key)?.phase {
            Phase::Ws(ws) => Some(ws),
            _ => None,
        }
    }

    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(socket) = self.slab.get_mut(key) {
            if !socket.dirty {
                socket.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    // ---- deadlines ----------------------------------------------------------------------------

    pub(crate) fn set_deadline(&mut self, key: usize, at: Option<Instant>) {
        let Some(socket) = self.slab.get_mut(key) else {
            return;
        };
        if let Some(old) = socket.deadline.take() {
            self.deadlines.remove(&(old, key));
        }
        if let Some(at) = at {
            socket.deadline = Some(at);
            self.deadlines.insert((at, key));
        }
    }

    /// Starts the close grace of a WebSocket unless it runs already.
    pub(crate) fn arm_grace(&mut self, key: usize) {
        if self.slab.get(key).is_some_and(|s| s.deadline.is_none()) {
            self.set_deadline(key, Some(self.clock.now_std() + CLOSE_GRACE));
        }
    }

    /// The earliest socket deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Takes the next socket whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<usize> {
        let &(at, key) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.remove(&(at, key));
        if let Some(socket) = self.slab.get_mut(key) {
            socket.deadline = None;
        }
        Some(key)
    }

    // ---- answers, interest, removal -----------------------------------------------------------

    /// Answers over HTTP; the socket closes once the answer is written, or at `deadline`.
    pub(crate) fn answer(&mut self, key: usize, response: HttpResponse, deadline: Instant) {
        let Some(socket) = self.slab.get_mut(key) else {
            return;
        };
        socket.phase = Phase::Answer(Answer {
            out: response.to_bytes(),
            written: 0,
            shut: false,
            eof: false,
        });
        self.set_deadline(key, Some(deadline));
        self.mark_dirty(key);
    }

    /// Registers interest in writability too while a write is blocked. Returns false if the
    /// socket could not be reregistered (it must be removed).
    pub(crate) fn set_interest(&mut self, key: usize, want_write: bool) -> bool {
        let token = self.token(key);
        let Some(socket) = self.slab.get_mut(key) else {
            return true;
        };
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if socket.interest == interest {
            return true;
        }
        match self
            .registry
            .reregister(&mut socket.stream, token, interest)
        {
            Ok(()) => {
                socket.interest = interest;
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot reregister a socket");
                false
            }
        }
    }

    /// Drops a socket. Returns its connection if the core still knows it (and must be told).
    pub(crate) fn remove(&mut self, key: usize) -> Option<ConnId> {
        if !self.slab.contains(key) {
            return None;
        }
        self.set_deadline(key, None);
        let mut socket = self.slab.remove(key);
        let _ = self.registry.deregister(&mut socket.stream);
        let Phase::Ws(ws) = socket.phase else {
            return None;
        };
        self.websockets -= 1;
        let known = matches!(ws.state, WsState::Open) && self.conns.remove(&ws.id).is_some();
        known.then_some(ws.id)
    }

    /// Queues a frame for a connection the core knows; returns its backlog.
    fn push(&mut self, conn: ConnId, frame: Outgoing) -> Option<usize> {
        let key = *self.conns.get(&conn)?;
        let backlog = self.ws_mut(key)?.out.push(frame);
        self.mark_dirty(key);
        Some(backlog)
    }
}

impl Transport for Sockets {
    fn send(&mut self, conn: ConnId, payload: Payload) -> Option<usize> {
        self.push(conn, Outgoing::Text(payload))
    }

    fn ping(&mut self, conn: ConnId) {
        self.push(conn, Outgoing::Ping);
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, reason: Cow<'static, str>, mode: CloseMode) {
        let Some(key) = self.conns.remove(&conn) else {
            return;
        };
        info!(conn = %conn, code = code.0, %reason, "closing");
        if let Some(ws) = self.ws_mut(key) {
            if mode == CloseMode::Discard {
                ws.out.discard();
            }
            ws.state = WsState::Ending {
                code: code.0,
                reason: reason.into_owned(),
            };
            // The grace runs from the decision: a stalled peer cannot keep a closed connection
            // by not reading what is queued before the close.
            self.arm_grace(key);
            self.mark_dirty(key);
        }
    }

    fn evict(&mut self, conn: ConnId) {
        if let Some(key) = self.conns.remove(&conn) {
            info!(conn = %conn, "evicted zombie");
            self.remove(key);
        }
    }

    fn presence(&mut self, user: &Arc<str>, online: bool, connections: usize) {
        debug!(%user, online, connections, "presence");
    }

    fn stop(&mut self) {
        info!("drain deadline reached");
        self.stopped = true;
    }

    fn bus(&mut self, action: BusAction) {
        if let Some(bridge) = &self.bridge {
            bridge.execute(action);
        }
    }
}
