//! The event loop's state: the core, the listener, the sockets and the commands, and the order
//! of one wake-up. Driven by [`Embedded::handle_event`] and [`Embedded::turn`], either from
//! [`Server::run`](crate::Server::run) or from the application's own mio loop. The HTTP front
//! is in `http_front.rs`, WebSocket reads and writes in `ws_io.rs`, the sockets and their
//! deadlines in `sockets.rs`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use switchboard_core::http::{HttpResponse, Listener, OriginPolicy, TrustedProxies};
use switchboard_core::{Commands, Now, ServerConfig, Switchboard};
use tracing::{debug, info, warn};
use tungstenite::protocol::WebSocketConfig;

use crate::handle::Handle;
use crate::queue::CommandQueue;
use crate::socket::{Phase, Socket};
use crate::sockets::{Sockets, FIRST_SOCKET};
use crate::stream::Stream;
use crate::sync::Arc;
use switchboard_adapter_kit::tls::Tls;
use switchboard_adapter_kit::{random_seed, websocket_config, Clock, ListenError};
use switchboard_core::cluster::BusEvent;
use switchboard_redis::Bridge;

/// Pause after a failed `accept` (e.g. EMFILE), so that the loop never spins: the listener's
/// readiness is left alone until then.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A closure run against the core in the loop; its reply, if any, travels inside it.
pub(crate) type Job = Box<dyn FnOnce(&mut Commands<'_>) + Send>;

/// An application command, run against the core in the loop.
pub(crate) enum Command {
    /// Run this against the core.
    Run(Job),
    /// Start the graceful drain.
    Shutdown,
    /// Cluster mode: what the Redis bridge reports.
    Bus(BusEvent),
}

/// The queue that carries commands into the loop, woken through mio.
pub(crate) type Queue = CommandQueue<Command, mio::Waker>;

/// Settings the loop needs besides the core's.
pub(crate) struct Settings {
    pub(crate) api_key: Option<String>,
    pub(crate) drain_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) allowed_origins: OriginPolicy,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) websocket: WebSocketConfig,
    /// What `--listen` serves (`/metrics` or not).
    pub(crate) main_listener: Listener,
    /// TLS on every accepted socket; `None`: plain.
    pub(crate) tls: Option<Tls>,
}

/// The server as a set of mio sources for the application's own event loop.
///
/// It registers its listener on `first_token`, its [`mio::Waker`] on `first_token + 1`, the
/// `metrics_listen` listener (if any) on `first_token + 2`, and every socket above: the application keeps its own tokens below `first_token`. One wake-up
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
    pub(crate) sb: Switchboard,
    pub(crate) sockets: Sockets,
    listener: TcpListener,
    /// `--metrics-listen`: `/metrics` and `/healthz` on an address of their own.
    metrics_listener: Option<TcpListener>,
    commands: Arc<Queue>,
    pub(crate) clock: Clock,
    pub(crate) settings: Settings,
    accept_paused_until: Option<std::time::Instant>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("listener", &self.listener)
            .field("first_token", &self.sockets.first)
            .field("sockets", &self.sockets.slab.len())
            .finish_non_exhaustive()
    }
}

const LISTENER: usize = 0;
const WAKER: usize = 1;
/// `--metrics-listen`, when set.
const METRICS_LISTENER: usize = 2;

impl Embedded {
    /// Binds `config.listen` (and `config.metrics_listen`) and registers the listener, a waker
    /// and the metrics listener with `registry`, on `first_token` to `first_token + 2`; sockets
    /// get the tokens above.
    pub fn bind(
        config: ServerConfig,
        registry: &Registry,
        first_token: Token,
    ) -> io::Result<Embedded> {
        Self::bind_with_clock(config, registry, first_token, Clock::system())
    }

    /// [`bind`](Self::bind), reading time from `clock` (e.g. a [`Clock::manual`] in a test,
    /// to reach a deadline without sleeping until it).
    pub fn bind_with_clock(
        config: ServerConfig,
        registry: &Registry,
        first_token: Token,
        clock: Clock,
    ) -> io::Result<Embedded> {
        // The files first: a bad one stops the start before the port is taken.
        let tls = match &config.tls {
            Some(files) => Some(Tls::load(files).map_err(io::Error::other)?),
            None => None,
        };
        let first = first_token.0;
        let token = |offset: usize| {
            first
                .checked_add(offset)
                .map(Token)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "token out of range"))
        };
        // Backlog 1,024: `TcpListener::bind` asks for 128, which a reconnect storm of thousands
        // overflows (the rest wait for a SYN retry, 1 s later).
        let domain = socket2::Domain::for_address(config.listen);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&config.listen.into())?;
        socket.listen(1024)?;
        let mut listener = TcpListener::from_std(socket.into());
        registry.register(&mut listener, token(LISTENER)?, Interest::READABLE)?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                let mut metrics =
                    TcpListener::bind(addr).map_err(ListenError::wrap("--metrics-listen", addr))?;
                registry.register(&mut metrics, token(METRICS_LISTENER)?, Interest::READABLE)?;
                Some(metrics)
            }
            None => None,
        };
        let main_listener = config.main_listener();
        let waker = mio::Waker::new(registry, token(WAKER)?)?;
        let websocket = websocket_config(config.core.max_message_bytes);
        let commands = Arc::new(CommandQueue::new(waker));
        // The bridge's thread hands its events to the loop like any other command.
        let queue = commands.clone();
        let redis = config.cluster.as_ref().map(|c| c.redis_url.as_str());
        let bridge = Bridge::for_server(redis, move |event| {
            let _ = queue.push(Command::Bus(event));
        })?;
        Ok(Embedded {
            sockets: Sockets::new(registry.try_clone()?, first, clock.clone(), bridge),
            listener,
            metrics_listener,
            commands,
            sb: config.switchboard(random_seed),
            clock,
            settings: Settings {
                api_key: config.api_key,
                drain_timeout: config.drain_timeout,
                handshake_timeout: config.handshake_timeout,
                max_connections: config.max_connections,
                allowed_origins: config.allowed_origins,
                trusted_proxies: config.trusted_proxies,
                websocket,
                main_listener,
                tls,
            },
            accept_paused_until: None,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address `/metrics` has of its own (`metrics_listen`), if any.
    pub fn metrics_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.metrics_listener.as_ref().map(TcpListener::local_addr)
    }

    /// The server's TLS certificate (`None`: plain): [`Tls::reload`] reads the files again, for
    /// the handshakes that follow (from any thread).
    pub fn tls(&self) -> Option<Tls> {
        self.settings.tls.clone()
    }

    /// A handle for the application: send, publish, query, shut down.
    pub fn handle(&self) -> Handle {
        Handle {
            commands: self.commands.clone(),
        }
    }

    /// Whether `token` is one of the server's (at or above `first_token`).
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.sockets.first
    }

    /// Whether the drain is over (everyone left, or the drain deadline passed): stop driving
    /// and drop the server.
    pub fn is_finished(&self) -> bool {
        self.sockets.stopped
            || (self.sb.is_draining()
                && self.sockets.conns.is_empty()
                && self.sockets.websockets == 0)
    }

    /// The longest the loop may sleep before the next [`turn`](Self::turn); `None`: until an
    /// event. Never a fixed tick: the core's next timer, a handshake or close deadline, the
    /// end of an accept back-off, or zero when work is left for the next turn.
    pub fn timeout(&self) -> Option<Duration> {
        if !self.sockets.again.is_empty() || !self.sockets.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let core = self.sb.poll_timeout().map(|at| self.clock.deadline(at));
        let own = self.sockets.next_deadline();
        let next = [core, own, self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()?;
        Some(self.clock.until(next))
    }

    /// Handles one readiness event of a token this server [`owns`](Self::owns).
    pub fn handle_event(&mut self, event: &mio::event::Event) {
        let Some(offset) = event.token().0.checked_sub(self.sockets.first) else {
            return;
        };
        match offset {
            LISTENER => {
                if self.accept_paused_until.is_none() {
                    self.accept(self.settings.main_listener);
                }
            }
            METRICS_LISTENER => {
                if self.accept_paused_until.is_none() {
                    self.accept(Listener::Metrics);
                }
            }
            WAKER => self.run_commands(),
            _ => {
                let key = offset - FIRST_SOCKET;
                if !self.sockets.slab.contains(key) {
                    return;
                }
                self.read(key);
                if event.is_writable() || event.is_error() {
                    self.sockets.mark_dirty(key);
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
        let instant = self.clock.now_std();
        while let Some(key) = self.sockets.pop_expired(instant) {
            self.expire(key);
        }
        if self.accept_paused_until.is_some_and(|at| at <= instant) {
            self.accept_paused_until = None;
            // Edge-triggered: what waited on either listener during the pause is taken now.
            self.accept(self.settings.main_listener);
            self.accept(Listener::Metrics);
        }
        for key in std::mem::take(&mut self.sockets.again) {
            if self.sockets.slab.contains(key) {
                self.read(key);
            }
        }
        while let Some(key) = self.sockets.dirty.pop() {
            if let Some(socket) = self.sockets.slab.get_mut(key) {
                socket.dirty = false;
                self.write(key);
            }
        }
    }

    // ---- accept and commands ------------------------------------------------------------------

    fn accept(&mut self, which: Listener) {
        loop {
            let listener = match which {
                Listener::Metrics => self.metrics_listener.as_ref(),
                _ => Some(&self.listener),
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let tls = self.settings.tls.as_ref().filter(|_| which.uses_tls());
                    let config = tls.map(Tls::server_config);
                    let mut stream = match Stream::new(tcp, config.as_ref()) {
                        Ok(stream) => stream,
                        Err(e) => {
                            warn!(error = %e, "cannot start a TLS session");
                            continue;
                        }
                    };
                    let key = self.sockets.slab.vacant_key();
                    let token = self.sockets.token(key);
                    if let Err(e) =
                        self.sockets
                            .registry
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        warn!(error = %e, "cannot register an accepted socket");
                        continue;
                    }
                    self.sockets.slab.insert(Socket {
                        stream,
                        peer,
                        phase: Phase::Head(Vec::new()),
                        listener: which,
                        deadline: None,
                        interest: Interest::READABLE,
                        dirty: false,
                    });
                    let at = self.clock.now_std() + self.settings.handshake_timeout;
                    self.sockets.set_deadline(key, Some(at));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    self.accept_paused_until = Some(self.clock.now_std() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn run_commands(&mut self) {
        for command in self.commands.drain() {
            let now = self.clock.now();
            match command {
                Command::Run(f) => f(&mut Commands::new(&mut self.sb, now)),
                Command::Shutdown => {
                    info!(drain_timeout = ?self.settings.drain_timeout, "draining");
                    self.sb
                        .shutdown(now, now.instant + self.settings.drain_timeout);
                }
                // The bridge logs its connections and losses.
                Command::Bus(event) => self.sb.handle_bus(now, event),
            }
            self.execute(now);
        }
    }

    /// Executes every action the core has decided, in order.
    pub(crate) fn execute(&mut self, now: Now) {
        self.sb.execute(now, &mut self.sockets);
    }

    // ---- reading, deadlines and removal -------------------------------------------------------

    pub(crate) fn read(&mut self, key: usize) {
        match self.sockets.slab.get(key).map(|s| &s.phase) {
            Some(Phase::Ws(_)) => self.read_ws(key),
            Some(_) => self.read_http(key),
            None => {}
        }
        // A TLS handshake's answer (or an alert) the read could not send: the write pass's.
        if self
            .sockets
            .slab
            .get(key)
            .is_some_and(|s| s.stream.wants_write())
        {
            self.sockets.mark_dirty(key);
        }
    }

    fn expire(&mut self, key: usize) {
        match self.sockets.slab.get(key).map(|s| (&s.phase, &s.stream)) {
            // The TLS handshake took the whole handshake timeout: no HTTP answer can reach it.
            Some((Phase::Head(_), stream)) if stream.tls_handshaking() => {
                debug!("TLS handshake timed out");
                self.sb.tls_handshake_failed();
                self.remove(key)
            }
            Some((Phase::Head(_), _)) => {
                self.refuse_handshake(key, HttpResponse::head_timeout());
            }
            Some((Phase::Body(_), _)) => {
                self.answer(key, HttpResponse::body_timeout());
            }
            // An answer that could not be delivered, or a close handshake past its grace.
            Some((Phase::Answer(_) | Phase::Ws(_), _)) => self.remove(key),
            None => {}
        }
    }

    /// Answers over HTTP; the socket closes once the answer is written.
    pub(crate) fn answer(&mut self, key: usize, response: HttpResponse) {
        let deadline = self.clock.now_std() + self.settings.handshake_timeout;
        self.sockets.answer(key, response, deadline);
    }

    /// Drops a socket; if the core still knows its connection, tells it.
    pub(crate) fn remove(&mut self, key: usize) {
        if let Some(id) = self.sockets.remove(key) {
            info!(conn = %id, "disconnected by client");
            let now = self.clock.now();
            self.sb.handle_closed(now, id);
            self.execute(now);
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Handles still waiting learn that the server stopped: their reply senders drop here.
        drop(self.commands.close());
        for mut socket in self.sockets.slab.drain() {
            let _ = self.sockets.registry.deregister(&mut socket.stream);
        }
        let _ = self.sockets.registry.deregister(&mut self.listener);
        if let Some(metrics) = &mut self.metrics_listener {
            let _ = self.sockets.registry.deregister(metrics);
        }
    }
}
