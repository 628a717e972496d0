//! The HTTP front of the mio loop: reading a request head and an API body, letting the core
//! route and answer them, and the upgrade to a WebSocket.

use std::net::IpAddr;

use switchboard_adapter_kit::handshakes;
use switchboard_adapter_kit::metrics::{metrics_response, AdapterGauges};
use switchboard_core::http::{
    self, route_on, ApiRequest, HeadStatus, HttpResponse, RequestHead, Route,
};
use switchboard_core::Handshake;
use tracing::info;
use tungstenite::protocol::{Role, WebSocketContext};

use crate::engine::Embedded;
use crate::front::{self, Transfer};
use crate::outbound::Outbound;
use crate::socket::{ApiCall, Phase, Ws, WsState};

impl Embedded {
    /// Reads the request head or body until the socket blocks or the phase changes.
    pub(crate) fn read_http(&mut self, key: usize) {
        loop {
            let Some(socket) = self.sockets.slab.get_mut(key) else {
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
                                return self.refuse_handshake(key, response);
                            }
                        }
                    },
                    Ok(Transfer::Blocked) => return,
                    Err(_) if socket.stream.tls_handshaking() => {
                        tracing::debug!(peer = %socket.peer, "TLS handshake failed");
                        self.sb.tls_handshake_failed();
                        return self.remove(key);
                    }
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
                            return self.answer(key, HttpResponse::body_ended_early());
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
                            if answer.shut && !socket.stream.wants_write() {
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
            self.refuse_handshake(key, HttpResponse::malformed_request());
        }
    }

    fn on_request(&mut self, key: usize, head: &RequestHead<'_>, rest: &[u8]) {
        let Some(listener) = self.sockets.slab.get(key).map(|s| s.listener) else {
            return;
        };
        match route_on(listener, head, &self.settings.allowed_origins) {
            Route::RefuseUpgrade(response) => self.refuse_handshake(key, response),
            Route::Reject(response) => self.answer(key, response),
            Route::Asset(response) => self.answer(key, response),
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
                } else if let Some(socket) = self.sockets.slab.get_mut(key) {
                    socket.phase = Phase::Body(call);
                    let at = self.clock.now_std() + self.settings.handshake_timeout;
                    self.sockets.set_deadline(key, Some(at));
                }
            }
            Route::Upgrade {
                handshake,
                key: ws_key,
            } => {
                let Some(peer) = self.sockets.slab.get(key).map(|s| s.peer) else {
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

    /// Answers an upgrade request with a refusal, counted by the core and logged.
    pub(crate) fn refuse_handshake(&mut self, key: usize, response: HttpResponse) {
        if let Some(peer) = self.sockets.slab.get(key).map(|s| s.peer) {
            let took = self.handshake_took(key);
            handshakes::refused(&mut self.sb, peer.ip(), &response, took);
        }
        self.answer(key, response);
    }

    /// Time since the socket was accepted, while its request head is being handled: its
    /// deadline is still the accept's plus `handshake_timeout` (kept rather than a timestamp
    /// per socket).
    fn handshake_took(&self, key: usize) -> std::time::Duration {
        let Some(deadline) = self.sockets.slab.get(key).and_then(|s| s.deadline) else {
            return std::time::Duration::ZERO;
        };
        let left = deadline.saturating_duration_since(self.clock.now_std());
        self.settings.handshake_timeout.saturating_sub(left)
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
            .sockets
            .conns
            .values()
            .filter_map(|&key| match &self.sockets.slab.get(key)?.phase {
                Phase::Ws(ws) => Some(ws.out.backlog()),
                _ => None,
            })
            .sum();
        let gauges = AdapterGauges::new("mio", backlog as u64, self.sockets.websockets as u64);
        metrics_response(&self.sb, gauges)
    }

    fn upgrade(
        &mut self,
        key: usize,
        ip: IpAddr,
        handshake: Handshake,
        ws_key: &str,
        rest: Vec<u8>,
    ) {
        if let Err(refusal) = http::admit(self.sockets.websockets, self.settings.max_connections) {
            return self.refuse_handshake(key, refusal);
        }
        let now = self.clock.now();
        match self.sb.open(now, ip, handshake) {
            Err(refused) => self.refuse_handshake(key, HttpResponse::open_refused(&refused)),
            Ok(id) => {
                info!(conn = %id, %ip, user = self.sb.user_of(id), "connected");
                let took = self.handshake_took(key);
                self.sb.handshake_answered(101, took);
                let Some(socket) = self.sockets.slab.get_mut(key) else {
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
                    preamble: http::switching_protocols(ws_key),
                    preamble_written: 0,
                    out: Outbound::default(),
                    state: WsState::Open,
                    reading: true,
                    blocked: false,
                }));
                self.sockets.websockets += 1;
                self.sockets.conns.insert(id, key);
                self.sockets.set_deadline(key, None);
                // The 101 goes out now, so that the bytes that follow it can be read at once.
                self.write(key);
                self.execute(now);
            }
        }
    }
}
