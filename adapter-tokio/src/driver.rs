//! The driver: the one task that owns the core. Connection tasks and the `Handle` send it
//! events; it feeds them to the core and executes the actions that come out.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::http::{self, ApiRequest, HttpResponse};
use switchboard_core::{
    CloseCode, CloseMode, Commands, ConnId, Frame, Handshake, Now, OpenError, Payload, Switchboard,
    Transport, Violation, CLOSE_GRACE,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tracing::{debug, info};

use crate::cap::ConnectionCap;
use crate::connection::Mailbox;
use crate::outbound::{End, Outgoing};
use crate::sync::Arc;
use switchboard_adapter_kit::metrics::{metrics_response, AdapterGauges};
use switchboard_adapter_kit::Clock;
use switchboard_core::cluster::{BusAction, BusEvent};
use switchboard_redis::Bridge;

/// Events from connection tasks: bounded, so that a flood of frames pushes back on readers.
pub(crate) const EVENT_QUEUE: usize = 4096;
/// Events handled per wake-up before the timers get a look.
const EVENT_BATCH: usize = 512;

/// A frame's payload as the socket delivered it.
pub(crate) enum Inbound {
    Text(Utf8Bytes),
    Binary(Bytes),
}

/// What a connection task tells the driver.
pub(crate) enum ConnEvent {
    Open {
        ip: IpAddr,
        handshake: Handshake,
        /// When its socket was accepted: an open counts as handshake result 101 here, in the
        /// same event (a refusal is counted by the front, which answers it).
        accepted: tokio::time::Instant,
        reply: oneshot::Sender<Result<(ConnId, Arc<Mailbox>), OpenError>>,
    },
    Frame(ConnId, Inbound),
    /// A pong, or a ping from the client: either is a sign of life.
    Alive(ConnId),
    Violation(ConnId, Violation),
    /// The connection's task ended; the peer's close code if it sent a close frame.
    Closed(ConnId, Option<u16>),
    /// An upgrade request was answered with `status` (101: opened), `took` after its accept.
    Handshake {
        status: u16,
        took: Duration,
    },
    /// A TLS handshake failed or timed out (the socket is closed).
    TlsFailed,
}

/// An application command: run against the core in the driver.
pub(crate) type Command = Box<dyn FnOnce(&mut Commands<'_>) + Send>;

/// A command from the application or the HTTP front: unbounded, so that `Handle` never blocks.
pub(crate) enum Control {
    Api {
        method: String,
        target: String,
        authorization: Option<Vec<u8>>,
        body: Vec<u8>,
        reply: oneshot::Sender<HttpResponse>,
    },
    Health(oneshot::Sender<HttpResponse>),
    Metrics(oneshot::Sender<HttpResponse>),
    Command(Command),
    Shutdown,
    /// Cluster mode: what the Redis bridge reports.
    Bus(BusEvent),
}

pub(crate) struct Driver {
    pub(crate) sb: Switchboard,
    pub(crate) clock: Clock,
    pub(crate) mailboxes: Mailboxes,
    pub(crate) api_key: Option<String>,
    pub(crate) drain_timeout: Duration,
    pub(crate) cap: Arc<ConnectionCap>,
    pub(crate) events: mpsc::Receiver<ConnEvent>,
    pub(crate) control: mpsc::UnboundedReceiver<Control>,
}

/// The connections' mailboxes: where the core's actions are carried out.
pub(crate) struct Mailboxes {
    conns: HashMap<ConnId, Arc<Mailbox>>,
    clock: Clock,
    /// The core said stop: the drain deadline passed.
    stopped: bool,
    /// Cluster mode: the bus to the other nodes.
    bridge: Option<Bridge>,
}

impl Mailboxes {
    pub(crate) fn new(clock: Clock, bridge: Option<Bridge>) -> Self {
        Mailboxes {
            conns: HashMap::new(),
            clock,
            stopped: false,
            bridge,
        }
    }

    /// When a connection closed now must be gone, whatever its peer does.
    fn drop_at(&self) -> tokio::time::Instant {
        let at = self.clock.to_system(self.clock.now_std() + CLOSE_GRACE);
        tokio::time::Instant::from_std(at)
    }
}

impl Transport for Mailboxes {
    fn send(&mut self, conn: ConnId, payload: Payload) -> Option<usize> {
        Some(self.conns.get(&conn)?.push(Outgoing::Text(payload)))
    }

    fn ping(&mut self, conn: ConnId) {
        if let Some(mailbox) = self.conns.get(&conn) {
            mailbox.push(Outgoing::Ping);
        }
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, reason: Cow<'static, str>, mode: CloseMode) {
        if let Some(mailbox) = self.conns.remove(&conn) {
            info!(conn = %conn, code = code.0, %reason, "closing");
            let end = End::Close {
                code: code.0,
                reason: reason.into_owned(),
            };
            mailbox.end(end, mode == CloseMode::Discard, self.drop_at());
        }
    }

    fn evict(&mut self, conn: ConnId) {
        if let Some(mailbox) = self.conns.remove(&conn) {
            info!(conn = %conn, "evicted zombie");
            mailbox.end(End::Evict, true, self.drop_at());
        }
    }

    fn presence(&mut self, user: &std::sync::Arc<str>, online: bool, connections: usize) {
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

impl Driver {
    /// Runs until the drain is over: every connection gone, or the drain deadline passed.
    pub(crate) async fn run(mut self) {
        loop {
            // Timers first: under a steady stream of events they would otherwise starve.
            let now = self.clock.now();
            if self.sb.poll_timeout().is_some_and(|t| t <= now.instant) {
                self.sb.handle_timeout(now);
                self.execute(now);
            }
            if self.is_done() {
                break;
            }
            let sleep = self.sb.poll_timeout().map(|t| self.clock.to_std(t));
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(control) => self.on_control(control),
                    None => break,
                },
                event = self.events.recv() => {
                    let Some(event) = event else { break };
                    self.on_event(event);
                    for _ in 1..EVENT_BATCH {
                        match self.events.try_recv() {
                            Ok(event) => self.on_event(event),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(sleep), if sleep.is_some() => {}
            }
        }
        // Whatever is left past the deadline is dropped without further ado.
        let now = self.mailboxes.drop_at();
        for (_, mailbox) in self.mailboxes.conns.drain() {
            mailbox.end(End::Evict, true, now);
        }
    }

    fn is_done(&self) -> bool {
        self.mailboxes.stopped
            || (self.sb.is_draining() && self.mailboxes.conns.is_empty() && self.cap.held() == 0)
    }

    fn on_event(&mut self, event: ConnEvent) {
        let now = self.clock.now();
        match event {
            ConnEvent::Open {
                ip,
                handshake,
                accepted,
                reply,
            } => match self.sb.open(now, ip, handshake) {
                Ok(id) => {
                    self.sb.handshake_answered(101, accepted.elapsed());
                    let mailbox = Arc::new(Mailbox::default());
                    self.mailboxes.conns.insert(id, mailbox.clone());
                    info!(conn = %id, %ip, user = self.sb.user_of(id), "connected");
                    if reply.send(Ok((id, mailbox))).is_err() {
                        // The socket went away while we decided.
                        self.mailboxes.conns.remove(&id);
                        self.sb.handle_closed(now, id);
                    }
                }
                // The front logs the refusal as it answers it.
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ConnEvent::Handshake { status, took } => self.sb.handshake_answered(status, took),
            ConnEvent::TlsFailed => self.sb.tls_handshake_failed(),
            ConnEvent::Frame(id, Inbound::Text(text)) => {
                self.sb.handle_frame(now, id, Frame::Text(text.as_str()))
            }
            ConnEvent::Frame(id, Inbound::Binary(bytes)) => {
                self.sb.handle_frame(now, id, Frame::Binary(&bytes))
            }
            ConnEvent::Alive(id) => self.sb.handle_pong(now, id),
            ConnEvent::Violation(id, violation) => self.sb.handle_violation(now, id, violation),
            ConnEvent::Closed(id, code) => {
                if self.mailboxes.conns.remove(&id).is_some() {
                    match code {
                        Some(code) => info!(conn = %id, code, "disconnected by client"),
                        None => info!(conn = %id, "connection lost"),
                    }
                }
                self.sb.handle_closed(now, id);
            }
        }
        self.execute(now);
    }

    fn on_control(&mut self, control: Control) {
        let now = self.clock.now();
        match control {
            Control::Api {
                method,
                target,
                authorization,
                body,
                reply,
            } => {
                let request = ApiRequest {
                    method: &method,
                    target: &target,
                    authorization: authorization.as_deref(),
                    body: &body,
                };
                let response =
                    http::handle_api(&mut self.sb, now, self.api_key.as_deref(), &request);
                let _ = reply.send(response);
            }
            Control::Health(reply) => {
                let _ = reply.send(http::health(&self.sb));
            }
            Control::Metrics(reply) => {
                let backlog: usize = self.mailboxes.conns.values().map(|m| m.backlog()).sum();
                let gauges = AdapterGauges::new("tokio", backlog as u64, self.cap.held() as u64);
                let _ = reply.send(metrics_response(&self.sb, gauges));
            }
            Control::Command(command) => command(&mut Commands::new(&mut self.sb, now)),
            Control::Shutdown => {
                info!(drain_timeout = ?self.drain_timeout, "draining");
                self.sb.shutdown(now, now.instant + self.drain_timeout);
            }
            // The bridge logs its connections and losses.
            Control::Bus(event) => self.sb.handle_bus(now, event),
        }
        self.execute(now);
    }

    /// Executes every action the core has decided, in order.
    fn execute(&mut self, now: Now) {
        self.sb.execute(now, &mut self.mailboxes);
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
