//! The event loop's state: the core, the listener, every socket from accept to close, and the
//! deadlines. Driven by [`Embedded::handle_event`] and [`Embedded::turn`], either from
//! [`Server::run`](crate::Server::run) or from the application's own mio loop.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use slab::Slab;
use switchboard_core::auth::Hs256Verifier;
use switchboard_core::http::{
    self, route, ApiRequest, HeadStatus, HttpResponse, OriginPolicy, RequestHead, Route,
    TrustedProxies,
};
use switchboard_core::{
    Action, CloseCode, ConnId, Frame, Handshake, Now, ServerConfig, Switchboard, Violation,
};
use tracing::{debug, info, warn};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message};

use crate::clock::Clock;
use crate::front::{self, Transfer};
use crate::handle::Handle;
use crate::outbound::{Outbound, Outgoing};
use crate::queue::CommandQueue;
use crate::socket::{write_ws, Answer, ApiCall, Phase, Socket, Ws, WsState, WsWrite};
use crate::sync::Arc;

/// Pause after a failed `accept` (e.g. EMFILE), so that the loop never spins: the listener's
/// readiness is left alone until then.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long a closing connection waits for the peer's close frame (or an HTTP client for the
/// end of its side) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Messages read from one WebSocket per wake-up, so that a busy client cannot starve the rest;
/// the remainder is read on the next turn.
const READ_BATCH: usize = 64;

/// A closure run against the core in the loop; its reply, if any, travels inside it.
pub(crate) type Job = Box<dyn FnOnce(&mut Switchboard, Now) + Send>;

/// An application command, run against the core in the loop.
pub(crate) enum Command {
    /// Run this against the core.
    Run(Job),
    /// Start the graceful drain.
    Shutdown,
}

/// The queue that carries commands into the loop, woken through mio.
pub(crate) type Commands = CommandQueue<Command, mio::Waker>;

/// Settings the loop needs besides the core's.
struct Settings {
    api_key: Option<String>,
    drain_timeout: Duration,
    handshake_timeout: Duration,
    max_connections: usize,
    allowed_origins: OriginPolicy,
    trusted_proxies: TrustedProxies,
    websocket: WebSocketConfig,
}

/// The server as a set of mio sources for the application's own event loop.
///
/// It registers its listener on `first_token`, its [`mio::Waker`] on `first_token + 1`, and
/// every socket above: the application keeps its own tokens below `first_token`. One wake-up
/// of the application's loop is:
///
/// 1. `poll.poll(&mut events, timeout)`, where `timeout` is the earliest of the application's
///    and [`Embedded::timeout`];
/// 2. [`Embedded::handle_event`] for each event whose token [`Embedded::owns`];
/// 3. [`Embedded::turn`] once (timers due, writes batched over the wake-up).
///
/// Stop when [`Embedded::is_finished`] (after a drain); dropping it closes every socket and
/// tells the remaining [`Handle`] calls that the server stopped.
///
/// mio allows one `Waker` per `Poll` portably: if the application has one of its own, run the
/// server on its own `Poll` and thread with [`Server::run`](crate::Server::run) instead.
/// Must not be driven from a thread that is blocked in a [`Handle`] call.
pub struct Embedded {
    registry: Registry,
    listener: TcpListener,
    first: usize,
    commands: Arc<Commands>,
    sb: Switchboard,
    clock: Clock,
    settings: Settings,
    sockets: Slab<Socket>,
    /// The connections the core knows, and their sockets.
    conns: HashMap<ConnId, usize>,
    /// Sockets in the WebSocket phase (open or closing): capped by `max_connections`.
    websockets: usize,
    deadlines: BTreeSet<(std::time::Instant, usize)>,
    /// Sockets with a write pass due this turn.
    dirty: Vec<usize>,
    /// Sockets with more to read than one batch, or whose reading was deferred.
    again: Vec<usize>,
    accept_paused_until: Option<std::time::Instant>,
    stopped: bool,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("listener", &self.listener)
            .field("first_token", &self.first)
            .field("sockets", &self.sockets.len())
            .finish_non_exhaustive()
    }
}

const LISTENER: usize = 0;
const WAKER: usize = 1;
const FIRST_SOCKET: usize = 2;

impl Embedded {
    /// Binds `config.listen` and registers the listener and a waker with `registry`, on
    /// `first_token` and `first_token + 1`; sockets get the tokens above.
    pub fn bind(
        config: ServerConfig,
        registry: &Registry,
        first_token: Token,
    ) -> io::Result<Embedded> {
        let first = first_token.0;
        let token = |offset: usize| {
            first
                .checked_add(offset)
                .map(Token)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "token out of range"))
        };
        let mut listener = TcpListener::bind(config.listen)?;
        registry.register(&mut listener, token(LISTENER)?, Interest::READABLE)?;
        let waker = mio::Waker::new(registry, token(WAKER)?)?;
        let mut core = config.core;
        if core.hash_seed == 0 {
            // Clients choose the map keys: keep the seed unknown to them.
            core.hash_seed = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8);
        }
        let websocket = front::websocket_config(core.max_message_bytes);
        Ok(Embedded {
            registry: registry.try_clone()?,
            listener,
            first,
            commands: Arc::new(CommandQueue::new(waker)),
            sb: Switchboard::new(core, Hs256Verifier::new(&config.jwt_secret)),
            clock: Clock::start(),
            settings: Settings {
                api_key: config.api_key,
                drain_timeout: config.drain_timeout,
                handshake_timeout: config.handshake_timeout,
                max_connections: config.max_connections,
                allowed_origins: config.allowed_origins,
                trusted_proxies: config.trusted_proxies,
                websocket,
            },
            sockets: Slab::new(),
            conns: HashMap::new(),
            websockets: 0,
            deadlines: BTreeSet::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            accept_paused_until: None,
            stopped: false,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for the application: send, publish, query, shut down.
    pub fn handle(&self) -> Handle {
        Handle {
            commands: self.commands.clone(),
        }
    }

    /// Whether `token` is one of the server's (at or above `first_token`).
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first
    }

    /// Whether the drain is over (everyone left, or the drain deadline passed): stop driving
    /// and drop the server.
    pub fn is_finished(&self) -> bool {
        self.stopped || (self.sb.is_draining() && self.conns.is_empty() && self.websockets == 0)
    }

    /// The longest the loop may sleep before the next [`turn`](Self::turn); `None`: until an
    /// event. Never a fixed tick: the core's next timer, a handshake or close deadline, the
    /// end of an accept back-off, or zero when work is left for the next turn.
    pub fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() || !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let core = self.sb.poll_timeout().map(|at| self.clock.to_std(at));
        let own = self.deadlines.first().map(|&(at, _)| at);
        let next = [core, own, self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()?;
        Some(next.saturating_duration_since(std::time::Instant::now()))
    }

    /// Handles one readiness event of a token this server [`owns`](Self::owns).
    pub fn handle_event(&mut self, event: &mio::event::Event) {
        let Some(offset) = event.token().0.checked_sub(self.first) else {
            return;
        };
        match offset {
            LISTENER => {
                if self.accept_paused_until.is_none() {
                    self.accept();
                }
            }
            WAKER => self.run_commands(),
            _ => {
                let key = offset - FIRST_SOCKET;
                if !self.sockets.contains(key) {
                    return;
                }
                self.read(key);
                if event.is_writable() || event.is_error() {
                    self.mark_dirty(key);
                }
            }
        }
    }

    /// Does the work that is due: the core's timers, handshake and close deadlines, the end
    /// of an accept back-off, deferred reads, and the writes batched over this wake-up. Call
    /// once per wake-up, after [`handle_event`](Self::handle_event) for each event.
    pub fn turn(&mut self) {
        let now = self.clock.now();
        if self.sb.poll_timeout().is_some_and(|t| t <= now.instant) {
            self.sb.handle_timeout(now);
            self.execute(now);
        }
        let instant = std::time::Instant::now();
        while let Some(&(at, key)) = self.deadlines.first() {
            if at > instant {
                break;
            }
            self.deadlines.remove(&(at, key));
            if let Some(socket) = self.sockets.get_mut(key) {
                socket.deadline = None;
                self.expire(key);
            }
        }
        if self.accept_paused_until.is_some_and(|at| at <= instant) {
            self.accept_paused_until = None;
            self.accept();
        }
        for key in std::mem::take(&mut self.again) {
            if self.sockets.contains(key) {
                self.read(key);
            }
        }
        while let Some(key) = self.dirty.pop() {
            if let Some(socket) = self.sockets.get_mut(key) {
                socket.dirty = false;
                self.write(key);
            }
        }
    }

    // ---- accept and commands ------------------------------------------------------------------

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let entry = self.sockets.vacant_entry();
                    let key = entry.key();
                    let token = Token(self.first + FIRST_SOCKET + key);
                    if let Err(e) = self
                        .registry
                        .register(&mut stream, token, Interest::READABLE)
                    {
                        warn!(error = %e, "cannot register an accepted socket");
                        continue;
                    }
                    entry.insert(Socket {
                        stream,
                        peer,
                        phase: Phase::Head(Vec::new()),
                        deadline: None,
                        interest: Interest::READABLE,
                        dirty: false,
                    });
                    let at = std::time::Instant::now() + self.settings.handshake_timeout;
                    self.set_deadline(key, Some(at));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    self.accept_paused_until = Some(std::time::Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn run_commands(&mut self) {
        for command in self.commands.drain() {
            let now = self.clock.now();
            match command {
                Command::Run(f) => f(&mut self.sb, now),
                Command::Shutdown => {
                    info!(drain_timeout = ?self.settings.drain_timeout, "draining");
                    self.sb
                        .shutdown(now, now.instant + self.settings.drain_timeout);
                }
            }
            self.execute(now);
        }
    }

    // ---- the core's actions -------------------------------------------------------------------

    /// Executes every action the core has decided, in order.
    fn execute(&mut self, now: Now) {
        while let Some(action) = self.sb.poll_action() {
            match action {
                Action::Send { conn, payload } => {
                    if let Some(backlog) = self.push(conn, Outgoing::Text(payload)) {
                        self.sb.handle_backlog(now, conn, backlog);
                    }
                }
                Action::Ping { conn } => {
                    self.push(conn, Outgoing::Ping);
                }
                Action::Close { conn, code, reason } => {
                    let Some(key) = self.conns.remove(&conn) else {
                        continue;
                    };
                    info!(conn = %conn, code = code.0, %reason, "closing");
                    if let Some(ws) = self.ws_mut(key) {
                        if code == CloseCode::SLOW_CONSUMER {
                            ws.out.discard();
                        }
                        ws.state = WsState::Ending {
                            code: code.0,
                            reason: reason.into_owned(),
                        };
                        // The grace runs from the decision: a stalled peer cannot keep a
                        // closed connection by not reading what is queued before the close.
                        self.arm_grace(key);
                        self.mark_dirty(key);
                    }
                }
                Action::Evict { conn } => {
                    if let Some(key) = self.conns.remove(&conn) {
                        info!(conn = %conn, "evicted zombie");
                        self.remove(key);
                    }
                }
                Action::Presence {
                    user,
                    online,
                    connections,
                } => debug!(%user, online, connections, "presence"),
                Action::Stop => {
                    info!("drain deadline reached");
                    self.stopped = true;
                }
            }
        }
    }

    /// Queues a frame for a connection the core knows; returns its backlog.
    fn push(&mut self, conn: ConnId, frame: Outgoing) -> Option<usize> {
        let key = *self.conns.get(&conn)?;
        let backlog = self.ws_mut(key)?.out.push(frame);
        self.mark_dirty(key);
        Some(backlog)
    }

    // ---- reading ------------------------------------------------------------------------------

    fn read(&mut self, key: usize) {
        match self.sockets.get(key).map(|s| &s.phase) {
            Some(Phase::Ws(_)) => self.read_ws(key),
            Some(_) => self.read_http(key),
            None => {}
        }
    }

    /// Reads the request head or body until the socket blocks or the phase changes.
    fn read_http(&mut self, key: usize) {
        loop {
            let Some(socket) = self.sockets.get_mut(key) else {
                return;
            };
            match &mut socket.phase {
                Phase::Head(buf) => match front::read_some(&mut socket.stream, buf, usize::MAX) {
                    Ok(Transfer::Done) => match HeadStatus::of(buf) {
                        HeadStatus::Partial => {}
                        HeadStatus::Complete(len) => {
                            let buf = std::mem::take(buf);
                            self.on_head(key, buf, len);
                        }
                        refused => {
                            if let Some(response) = refused.rejection() {
                                return self.answer(key, response);
                            }
                        }
                    },
                    Ok(Transfer::Blocked) => return,
                    Ok(Transfer::Eof) | Err(_) => return self.remove(key),
                },
                Phase::Body(call) => {
                    let missing = call.length - call.body.len();
                    match front::read_some(&mut socket.stream, &mut call.body, missing) {
                        Ok(Transfer::Done) if call.body.len() == call.length => {
                            let Phase::Body(call) =
                                std::mem::replace(&mut socket.phase, Phase::Head(Vec::new()))
                            else {
                                unreachable!("matched above")
                            };
                            self.serve_api(key, call);
                        }
                        Ok(Transfer::Done) => {}
                        Ok(Transfer::Blocked) => return,
                        Ok(Transfer::Eof) | Err(_) => {
                            let response = HttpResponse::error(400, "request body ended early");
                            return self.answer(key, response);
                        }
                    }
                }
                Phase::Answer(answer) => {
                    // Drain what the client still sends, so that closing does not reset the
                    // connection under our answer.
                    let mut sink = Vec::new();
                    match front::read_some(&mut socket.stream, &mut sink, usize::MAX) {
                        Ok(Transfer::Done) => {}
                        Ok(Transfer::Blocked) => return,
                        Ok(Transfer::Eof) | Err(_) => {
                            answer.eof = true;
                            if answer.shut {
                                self.remove(key);
                            }
                            return;
                        }
                    }
                }
                Phase::Ws(_) => return self.read_ws(key),
            }
        }
    }

    /// Routes a complete request head: the core decides, the adapter carries it out.
    fn on_head(&mut self, key: usize, buf: Vec<u8>, head_len: usize) {
        let (head_bytes, rest) = buf.split_at(head_len);
        let routed = http::with_head(head_bytes, |head| self.on_request(key, head, rest));
        if routed.is_none() {
            self.answer(key, HttpResponse::error(400, "malformed HTTP request"));
        }
    }

    fn on_request(&mut self, key: usize, head: &RequestHead<'_>, rest: &[u8]) {
        match route(head, &self.settings.allowed_origins) {
            Route::Reject(response) => self.answer(key, response),
            Route::Health => {
                let response = http::health(&self.sb);
                self.answer(key, response);
            }
            Route::Metrics => {
                let response = self.metrics();
                self.answer(key, response);
            }
            Route::Api => {
                let length = match http::body_length(head) {
                    Ok(length) => length,
                    Err(response) => return self.answer(key, response),
                };
                let call = ApiCall {
                    method: head.method.to_owned(),
                    target: head.target.to_owned(),
                    authorization: head.header("authorization").map(<[u8]>::to_vec),
                    length,
                    body: rest[..rest.len().min(length)].to_vec(),
                };
                if call.body.len() == call.length {
                    self.serve_api(key, call);
                } else if let Some(socket) = self.sockets.get_mut(key) {
                    socket.phase = Phase::Body(call);
                    let at = std::time::Instant::now() + self.settings.handshake_timeout;
                    self.set_deadline(key, Some(at));
                }
            }
            Route::Upgrade {
                handshake,
                key: ws_key,
            } => {
                let Some(peer) = self.sockets.get(key).map(|s| s.peer) else {
                    return;
                };
                let forwarded = head.headers_named("x-forwarded-for");
                let ip = self
                    .settings
                    .trusted_proxies
                    .client_ip(peer.ip(), forwarded);
                self.upgrade(key, ip, handshake, &ws_key, rest.to_vec());
            }
        }
    }

    fn serve_api(&mut self, key: usize, call: ApiCall) {
        let now = self.clock.now();
        let request = ApiRequest {
            method: &call.method,
            target: &call.target,
            authorization: call.authorization.as_deref(),
            body: &call.body,
        };
        let response = http::handle_api(
            &mut self.sb,
            now,
            self.settings.api_key.as_deref(),
            &request,
        );
        self.execute(now);
        self.answer(key, response);
    }

    fn metrics(&self) -> HttpResponse {
        let backlog: usize = self
            .conns
            .values()
            .filter_map(|&key| match &self.sockets.get(key)?.phase {
                Phase::Ws(ws) => Some(ws.out.backlog()),
                _ => None,
            })
            .sum();
        let extra = http::adapter_gauges(backlog as u64, self.websockets as u64);
        http::metrics(&self.sb, &extra)
    }

    fn upgrade(
        &mut self,
        key: usize,
        ip: IpAddr,
        handshake: Handshake,
        ws_key: &str,
        rest: Vec<u8>,
    ) {
        if self.websockets >= self.settings.max_connections {
            let response = HttpResponse::error(503, "server at its connection limit");
            return self.answer(key, response);
        }
        let now = self.clock.now();
        match self.sb.open(now, ip, handshake) {
            Err(refused) => {
                info!(%ip, status = refused.http_status(), reason = %refused, "rejected");
                let response = HttpResponse::error(refused.http_status(), &refused.to_string());
                self.answer(key, response);
            }
            Ok(id) => {
                info!(conn = %id, %ip, user = self.sb.user_of(id), "connected");
                let Some(socket) = self.sockets.get_mut(key) else {
                    // Cannot happen (the socket is being served), but the core must not keep it.
                    self.sb.handle_closed(now, id);
                    return self.execute(now);
                };
                socket.phase = Phase::Ws(Box::new(Ws {
                    id,
                    ctx: WebSocketContext::from_partially_read(
                        rest,
                        Role::Server,
                        Some(self.settings.websocket),
                    ),
                    preamble: front::switching_protocols(ws_key),
                    preamble_written: 0,
                    out: Outbound::default(),
                    state: WsState::Open,
                    reading: true,
                    blocked: false,
                }));
                self.websockets += 1;
                self.conns.insert(id, key);
                self.set_deadline(key, None);
                // The 101 goes out now, so that the bytes that follow it can be read at once.
                self.write(key);
                self.execute(now);
            }
        }
    }

    /// Reads WebSocket messages until the socket blocks, the batch is used up, or the
    /// connection ends.
    fn read_ws(&mut self, key: usize) {
        for _ in 0..READ_BATCH {
            let Some(socket) = self.sockets.get_mut(key) else {
                return;
            };
            let Phase::Ws(ws) = &mut socket.phase else {
                return;
            };
            // While the core's close waits behind queued frames, nothing is read (as in the
            // tokio adapter); after a codec fault, nothing until the core has decided.
            let may_read = match ws.state {
                WsState::Open => ws.reading,
                WsState::Ending { .. } => false,
                WsState::Closing => true,
            };
            if !ws.preamble_done() || !may_read {
                return;
            }
            let open = matches!(ws.state, WsState::Open);
            let id = ws.id;
            let result = ws.ctx.read(&mut socket.stream);
            // Whatever was read, the codec may owe the peer a pong or a close reply.
            self.mark_dirty(key);
            let now = self.clock.now();
            match result {
                Ok(Message::Close(frame)) => {
                    self.peer_closed(key, now, frame.map(|f| u16::from(f.code)))
                }
                Ok(_) if !open => {} // Closing: the core has decided; discard.
                Ok(Message::Text(text)) => {
                    self.sb.handle_frame(now, id, Frame::Text(text.as_str()));
                    self.execute(now);
                }
                Ok(Message::Binary(data)) => {
                    self.sb.handle_frame(now, id, Frame::Binary(&data));
                    self.execute(now);
                }
                // A pong, or a ping from the client: either is a sign of life.
                Ok(Message::Ping(_) | Message::Pong(_)) => {
                    self.sb.handle_pong(now, id);
                    self.execute(now);
                }
                Ok(Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(WsError::Utf8) if open => self.violation(key, now, Violation::InvalidUtf8),
                Err(WsError::Capacity(_)) if open => {
                    self.violation(key, now, Violation::MessageTooBig)
                }
                // The handshake ended, or the peer or the socket failed.
                Err(_) => return self.remove(key),
            }
        }
        self.again.push(key);
    }

    fn violation(&mut self, key: usize, now: Now, violation: Violation) {
        let Some(ws) = self.ws_mut(key) else { return };
        ws.reading = false;
        let id = ws.id;
        self.sb.handle_violation(now, id, violation);
        self.execute(now);
    }

    /// The peer's close frame arrived (with this code, if it gave one); the codec has queued
    /// the answer.
    fn peer_closed(&mut self, key: usize, now: Now, code: Option<u16>) {
        let Some(ws) = self.ws_mut(key) else { return };
        let was_open = matches!(ws.state, WsState::Open);
        ws.state = WsState::Closing;
        ws.out.discard();
        let id = ws.id;
        self.arm_grace(key);
        if was_open {
            self.conns.remove(&id);
            info!(conn = %id, code, "disconnected by client");
            self.sb.handle_closed(now, id);
            self.execute(now);
        }
    }

    // ---- writing ------------------------------------------------------------------------------

    /// One write pass: everything queued that the socket takes, one flush.
    fn write(&mut self, key: usize) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        let want_write = match &mut socket.phase {
            Phase::Answer(answer) => {
                match front::write_some(&mut socket.stream, &answer.out, &mut answer.written) {
                    Ok(Transfer::Blocked) => true,
                    Ok(_) if answer.shut => false,
                    Ok(_) => {
                        answer.shut = true;
                        answer.out = Vec::new();
                        let _ = socket.stream.shutdown(Shutdown::Write);
                        if answer.eof {
                            return self.remove(key);
                        }
                        self.set_deadline(key, Some(std::time::Instant::now() + CLOSE_GRACE));
                        false
                    }
                    Err(_) => return self.remove(key),
                }
            }
            Phase::Ws(ws) => match write_ws(&mut socket.stream, ws) {
                Ok(WsWrite { finished: true, .. }) => return self.remove(key),
                Err(e) => {
                    debug!(error = %e, "write failed");
                    return self.remove(key);
                }
                Ok(WsWrite {
                    blocked,
                    closing,
                    preamble_done,
                    finished: false,
                }) => {
                    if preamble_done {
                        // Bytes that came with or after the upgrade request wait to be read.
                        self.again.push(key);
                    }
                    if closing {
                        self.arm_grace(key);
                        // The peer's close may be here already.
                        self.again.push(key);
                    }
                    blocked
                }
            },
            Phase::Head(_) | Phase::Body(_) => false,
        };
        self.set_interest(key, want_write);
    }

    fn set_interest(&mut self, key: usize, want_write: bool) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if socket.interest == interest {
            return;
        }
        let token = Token(self.first + FIRST_SOCKET + key);
        match self
            .registry
            .reregister(&mut socket.stream, token, interest)
        {
            Ok(()) => socket.interest = interest,
            Err(e) => {
                warn!(error = %e, "cannot reregister a socket");
                self.remove(key);
            }
        }
    }

    // ---- deadlines and removal ----------------------------------------------------------------

    fn expire(&mut self, key: usize) {
        match self.sockets.get(key).map(|s| &s.phase) {
            Some(Phase::Head(_)) => {
                if let Some(socket) = self.sockets.get(key) {
                    debug!(peer = %socket.peer, "handshake timeout");
                }
                self.answer(
                    key,
                    HttpResponse::error(408, "request not completed in time"),
                );
            }
            Some(Phase::Body(_)) => {
                let response = HttpResponse::error(408, "request body not completed in time");
                self.answer(key, response);
            }
            // An answer that could not be delivered, or a close handshake past its grace.
            Some(Phase::Answer(_) | Phase::Ws(_)) => self.remove(key),
            None => {}
        }
    }

    /// Answers over HTTP; the socket closes once the answer is written.
    fn answer(&mut self, key: usize, response: HttpResponse) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        socket.phase = Phase::Answer(Answer {
            out: response.to_bytes(),
            written: 0,
            shut: false,
            eof: false,
        });
        let at = std::time::Instant::now() + self.settings.handshake_timeout;
        self.set_deadline(key, Some(at));
        self.mark_dirty(key);
    }

    /// Drops a socket; if the core still knows its connection, tells it.
    fn remove(&mut self, key: usize) {
        if !self.sockets.contains(key) {
            return;
        }
        self.set_deadline(key, None);
        let mut socket = self.sockets.remove(key);
        let _ = self.registry.deregister(&mut socket.stream);
        if let Phase::Ws(ws) = socket.phase {
            self.websockets -= 1;
            if matches!(ws.state, WsState::Open) && self.conns.remove(&ws.id).is_some() {
                info!(conn = %ws.id, "disconnected by client");
                let now = self.clock.now();
                self.sb.handle_closed(now, ws.id);
                self.execute(now);
            }
        }
    }

    /// Starts the close grace of a WebSocket unless it runs already.
    fn arm_grace(&mut self, key: usize) {
        if self.sockets.get(key).is_some_and(|s| s.deadline.is_none()) {
            self.set_deadline(key, Some(std::time::Instant::now() + CLOSE_GRACE));
        }
    }

    fn set_deadline(&mut self, key: usize, at: Option<std::time::Instant>) {
        let Some(socket) = self.sockets.get_mut(key) else {
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

    fn mark_dirty(&mut self, key: usize) {
        if let Some(socket) = self.sockets.get_mut(key) {
            if !socket.dirty {
                socket.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn ws_mut(&mut self, key: usize) -> Option<&mut Ws> {
        match &mut self.sockets.get_mut(key)?.phase {
            Phase::Ws(ws) => Some(ws),
            _ => None,
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Handles still waiting learn that the server stopped: their reply senders drop here.
        drop(self.commands.close());
        for mut socket in self.sockets.drain() {
            let _ = self.registry.deregister(&mut socket.stream);
        }
        let _ = self.registry.deregister(&mut self.listener);
    }
}
