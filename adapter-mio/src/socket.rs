//! One accepted socket through its phases (request head, API body, HTTP answer, WebSocket),
//! and the WebSocket write pass: as much as the socket takes, one flush.

use std::io;
use std::net::SocketAddr;

use mio::Interest;
use switchboard_adapter_kit::text_message;
use switchboard_core::http::Listener;
use switchboard_core::ConnId;
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::protocol::WebSocketContext;
use tungstenite::{Error as WsError, Message};

use crate::front::{self, Transfer};
use crate::outbound::{Outbound, Outgoing};
use crate::stream::Stream;

/// One accepted socket.
pub(crate) struct Socket {
    /// Plain or TLS.
    pub(crate) stream: Stream,
    pub(crate) peer: SocketAddr,
    pub(crate) phase: Phase,
    /// The listener it was accepted on, which decides the paths it is served.
    pub(crate) listener: Listener,
    /// Its entry in `Embedded::deadlines`, if any.
    pub(crate) deadline: Option<std::time::Instant>,
    /// Interest currently registered.
    pub(crate) interest: Interest,
    /// Listed in `Embedded::dirty`: a write pass is due this turn.
    pub(crate) dirty: bool,
}

pub(crate) enum Phase {
    /// Reading the request head (deadline: accept + handshake_timeout).
    Head(Vec<u8>),
    /// Reading an `/api` body by its Content-Length.
    Body(ApiCall),
    /// Writing an HTTP answer; then our side is shut and the peer's remaining bytes drained.
    Answer(Answer),
    /// An upgraded WebSocket.
    Ws(Box<Ws>),
}

pub(crate) struct ApiCall {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) authorization: Option<Vec<u8>>,
    pub(crate) length: usize,
    pub(crate) body: Vec<u8>,
}

pub(crate) struct Answer {
    pub(crate) out: Vec<u8>,
    pub(crate) written: usize,
    /// Our side is shut down (everything written).
    pub(crate) shut: bool,
    /// The peer's side ended.
    pub(crate) eof: bool,
}

pub(crate) struct Ws {
    pub(crate) id: ConnId,
    pub(crate) ctx: WebSocketContext,
    /// The 101 answer, written before any WebSocket byte.
    pub(crate) preamble: Vec<u8>,
    pub(crate) preamble_written: usize,
    pub(crate) out: Outbound,
    pub(crate) state: WsState,
    /// Cleared once the codec reported a fault: the core decides how to close.
    pub(crate) reading: bool,
    /// The last write would block: wait for writability.
    pub(crate) blocked: bool,
}

impl Ws {
    pub(crate) fn preamble_done(&self) -> bool {
        self.preamble_written == self.preamble.len()
    }
}

pub(crate) enum WsState {
    /// The core knows this connection.
    Open,
    /// The core closed it: write what is queued, then this close frame.
    Ending { code: u16, reason: String },
    /// The peer closed and the codec answers it: wait for the end of the handshake, at most
    /// `CLOSE_GRACE`.
    Closing,
    /// Our close frame is in the codec, on its way out.
    ClosingOurs,
    /// Our close frame is out and our side shut: read and discard until the peer closes, at
    /// most `CLOSE_GRACE`, so that unread input cannot make the kernel reset the connection
    /// before the client has read the close frame.
    Lingering,
}

/// Why a WebSocket write pass failed: the connection is over and its socket is dropped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Broken {
    /// Writing the 101 answer failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The codec failed (socket error, or writing after the close).
    #[error("websocket: {0}")]
    Ws(Box<WsError>),
}

impl From<WsError> for Broken {
    fn from(e: WsError) -> Self {
        Broken::Ws(Box::new(e))
    }
}

/// What a WebSocket write pass left to do.
pub(crate) struct WsWrite {
    /// Something is still to be written: wait for writability.
    pub(crate) blocked: bool,
    /// The close frame was queued in this pass.
    pub(crate) closing: bool,
    /// The 101 answer was completed in this pass.
    pub(crate) preamble_done: bool,
    /// The close handshake is over: drop the socket.
    pub(crate) finished: bool,
    /// Our close frame is out: shut our side and linger.
    pub(crate) lingering: bool,
}

/// Writes the 101 answer, then as many queued frames as the socket takes, then flushes once;
/// once the queue is empty after the core's close, queues the close frame.
pub(crate) fn write_ws(stream: &mut Stream, ws: &mut Ws) -> Result<WsWrite, Broken> {
    let mut pass = WsWrite {
        blocked: true,
        closing: false,
        preamble_done: false,
        finished: false,
        lingering: false,
    };
    if matches!(ws.state, WsState::Lingering) {
        pass.blocked = false;
        return Ok(pass);
    }
    if !ws.preamble_done() {
        if front::write_some(stream, &ws.preamble, &mut ws.preamble_written)? == Transfer::Blocked {
            return Ok(pass);
        }
        ws.preamble = Vec::new();
        ws.preamble_written = 0;
        pass.preamble_done = true;
    }
    // A batch still in the codec goes first; new frames only once it is out.
    if ws.blocked && !flush(stream, ws, &mut pass)? {
        return Ok(pass);
    }
    if matches!(ws.state, WsState::Open | WsState::Ending { .. }) {
        while let Some(frame) = ws.out.hand_over() {
            match ws.ctx.write(stream, message(frame)) {
                Ok(()) => {}
                // The frame is in the codec's buffer; the rest waits for writability.
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    ws.blocked = true;
                    return Ok(pass);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !flush(stream, ws, &mut pass)? {
        return Ok(pass);
    }
    if ws.out.is_empty() && matches!(ws.state, WsState::Ending { .. }) {
        if let WsState::Ending { code, reason } =
            std::mem::replace(&mut ws.state, WsState::ClosingOurs)
        {
            let frame = CloseFrame {
                code: WsCloseCode::from(code),
                reason: Utf8Bytes::from(reason),
            };
            pass.closing = true;
            match ws.ctx.close(stream, Some(frame)) {
                Ok(()) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    ws.blocked = true;
                    return Ok(pass);
                }
                Err(e) => return Err(e.into()),
            }
            if !flush(stream, ws, &mut pass)? {
                return Ok(pass);
            }
        }
    }
    if matches!(ws.state, WsState::ClosingOurs) {
        ws.state = WsState::Lingering;
        pass.lingering = true;
    }
    pass.blocked = false;
    Ok(pass)
}

/// Flushes the codec; whether everything is out. Records a finished close handshake.
pub(crate) fn flush(stream: &mut Stream, ws: &mut Ws, pass: &mut WsWrite) -> Result<bool, Broken> {
    match ws.ctx.flush(stream) {
        Ok(()) => {
            ws.blocked = false;
            ws.out.flushed();
            Ok(true)
        }
        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
            ws.blocked = true;
            Ok(false)
        }
        // A server's close handshake is over once its last frame is out.
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
            pass.finished = true;
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn message(frame: Outgoing) -> Message {
    match frame {
        Outgoing::Text(payload) => text_message(payload),
        Outgoing::Ping => Message::Ping(Default::default()),
    }
}
