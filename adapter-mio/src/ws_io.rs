//! WebSocket reads and writes of the mio loop: frames in to the core, queued frames out, and
//! the close handshake.

use std::io;

use switchboard_core::{Frame, Now, Violation, CLOSE_GRACE};
use tracing::{debug, info};
use tungstenite::{Error as WsError, Message};

use crate::engine::Embedded;
use crate::front::{self, Transfer};
use crate::socket::{write_ws, Phase, WsState, WsWrite};

/// Messages read from one WebSocket per wake-up, so that a busy client cannot starve the rest;
/// the remainder is read on the next turn.
const READ_BATCH: usize = 64;

impl Embedded {
    /// Reads WebSocket messages until the socket blocks, the batch is used up, or the
    /// connection ends.
    pub(crate) fn read_ws(&mut self, key: usize) {
        for _ in 0..READ_BATCH {
            let Some(socket) = self.sockets.slab.get_mut(key) else {
                return;
            };
            let Phase::Ws(ws) = &mut socket.phase else {
                return;
            };
            // While the core's close waits behind queued frames, nothing is read (as in the
            // tokio adapter); after a codec fault, nothing until the core has decided.
            let may_read = match ws.state {
                WsState::Open => ws.reading,
                WsState::Ending { .. } | WsState::ClosingOurs => false,
                WsState::Closing => true,
                WsState::Lingering => return self.linger(key),
            };
            if !ws.preamble_done() || !may_read {
                return;
            }
            let open = matches!(ws.state, WsState::Open);
            let id = ws.id;
            let result = ws.ctx.read(&mut socket.stream);
            // Whatever was read, the codec may owe the peer a pong or a close reply.
            self.sockets.mark_dirty(key);
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
        self.sockets.again.push(key);
    }

    fn violation(&mut self, key: usize, now: Now, violation: Violation) {
        let Some(ws) = self.sockets.ws_mut(key) else {
            return;
        };
        ws.reading = false;
        let id = ws.id;
        self.sb.handle_violation(now, id, violation);
        self.execute(now);
    }

    /// Reads and discards what the peer still sends after our close frame, until it closes.
    /// The bytes are not decoded: after a codec fault they are not WebSocket any more.
    fn linger(&mut self, key: usize) {
        let Some(socket) = self.sockets.slab.get_mut(key) else {
            return;
        };
        let mut discard = Vec::new();
        for _ in 0..READ_BATCH {
            discard.clear();
            match front::read_some(&mut socket.stream, &mut discard, usize::MAX) {
                Ok(Transfer::Done) => {}
                Ok(Transfer::Blocked) => return,
                Ok(Transfer::Eof) | Err(_) => return self.remove(key),
            }
        }
        self.sockets.again.push(key);
    }

    /// The peer's close frame arrived (with this code, if it gave one); the codec has queued
    /// the answer.
    fn peer_closed(&mut self, key: usize, now: Now, code: Option<u16>) {
        let Some(ws) = self.sockets.ws_mut(key) else {
            return;
        };
        let was_open = matches!(ws.state, WsState::Open);
        ws.state = WsState::Closing;
        ws.out.discard();
        let id = ws.id;
        self.sockets.arm_grace(key);
        if was_open {
            self.sockets.conns.remove(&id);
            info!(conn = %id, code, "disconnected by client");
            self.sb.handle_closed(now, id);
            self.execute(now);
        }
    }

    // ---- writing ------------------------------------------------------------------------------

    /// One write pass: everything queued that the socket takes, one flush.
    pub(crate) fn write(&mut self, key: usize) {
        let Some(socket) = self.sockets.slab.get_mut(key) else {
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
                        socket.stream.shutdown_write();
                        if answer.eof && !socket.stream.wants_write() {
                            return self.remove(key);
                        }
                        self.sockets
                            .set_deadline(key, Some(self.clock.now_std() + CLOSE_GRACE));
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
                    lingering,
                    finished: false,
                }) => {
                    if lingering {
                        // Our close frame is out: say so with a FIN, then read what is left.
                        socket.stream.shutdown_write();
                        self.sockets.again.push(key);
                    }
                    if preamble_done {
                        // Bytes that came with or after the upgrade request wait to be read.
                        self.sockets.again.push(key);
                    }
                    if closing {
                        self.sockets.arm_grace(key);
                        // The peer's close may be here already.
                        self.sockets.again.push(key);
                    }
                    blocked
                }
            },
            Phase::Head(_) | Phase::Body(_) => false,
        };
        // TLS records still owed (a handshake's, or frames rustls took): writability too.
        let Some(socket) = self.sockets.slab.get_mut(key) else {
            return;
        };
        let want_write = match socket.stream.send_pending() {
            Ok(pending) => want_write || pending,
            Err(_) => return self.remove(key),
        };
        if !self.sockets.set_interest(key, want_write) {
            self.remove(key);
        }
    }
}
