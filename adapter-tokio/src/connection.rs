//! One task per WebSocket: frames in to the driver, queued frames out to the socket.

use std::sync::OnceLock;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_adapter_kit::text_message;
use switchboard_core::{ConnId, Violation, CLOSE_GRACE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::cap::ConnectionCap;
use crate::driver::{ConnEvent, Inbound};
use crate::outbound::{End, Outbound, Outgoing};
use crate::stream::Stream;
use crate::sync::Arc;

/// Bytes handed to the socket per flush: writes are batched per wake-up, and a slow consumer's
/// discarded backlog is everything beyond the batch in flight.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// A connection's outbound queue and the wake-up of its task.
#[derive(Default)]
pub(crate) struct Mailbox {
    outbound: Outbound,
    wake: Notify,
    /// When the transport is dropped, whatever the peer does: set when the close is decided.
    drop_at: OnceLock<Instant>,
}

impl Mailbox {
    pub(crate) fn push(&self, frame: Outgoing) -> usize {
        let backlog = self.outbound.push(frame);
        self.wake.notify_one();
        backlog
    }

    /// Ends the connection (`discard`: drop what is queued); the transport is dropped at
    /// `drop_at` at the latest.
    pub(crate) fn end(&self, end: End, discard: bool, drop_at: Instant) {
        let _ = self.drop_at.set(drop_at);
        self.outbound.end(end, discard);
        self.wake.notify_one();
    }

    pub(crate) fn backlog(&self) -> usize {
        self.outbound.backlog()
    }
}

type Ws = WebSocketStream<Stream>;

/// Serves one upgraded connection until it ends; then tells the driver.
pub(crate) async fn serve(
    ws: Ws,
    id: ConnId,
    mailbox: Arc<Mailbox>,
    events: mpsc::Sender<ConnEvent>,
    cap: Arc<ConnectionCap>,
) {
    let mut peer_code = None;
    match exchange(ws, id, &mailbox, &events).await {
        Exit::Close(mut ws, code, reason) => {
            if let Some(&drop_at) = mailbox.drop_at.get() {
                let _ = tokio::time::timeout_at(drop_at, close(&mut ws, code, reason)).await;
            }
        }
        Exit::Drop => {}
        Exit::PeerClosed(code) => peer_code = code,
    }
    cap.release();
    let _ = events.send(ConnEvent::Closed(id, peer_code)).await;
}

/// How the exchange of frames ended.
enum Exit {
    /// The core closed the connection: write this close frame, within the grace.
    Close(Box<Ws>, u16, String),
    /// Drop the transport: evicted, or the socket failed.
    Drop,
    /// The peer sent its close frame, with this code if it gave one.
    PeerClosed(Option<u16>),
}

/// The socket again, for the close handshake the core decided.
fn closing(sink: SplitSink<Ws, Message>, stream: SplitStream<Ws>, end: End) -> Exit {
    match (sink.reunite(stream), end) {
        (Ok(ws), End::Close { code, reason }) => Exit::Close(Box::new(ws), code, reason),
        _ => Exit::Drop,
    }
}

/// Moves frames both ways until the connection ends.
async fn exchange(ws: Ws, id: ConnId, mailbox: &Mailbox, events: &mpsc::Sender<ConnEvent>) -> Exit {
    let (mut sink, mut stream) = ws.split();
    let mut batch = Vec::new();
    // Once the codec reported a fault, read no more: the core decides how to close.
    let mut reading = true;
    loop {
        // Write everything queued, a batch per flush.
        loop {
            let (bytes, end) = mailbox.outbound.take(WRITE_BATCH_BYTES, &mut batch);
            if batch.is_empty() {
                match end {
                    None => break,
                    Some(end) => return closing(sink, stream, end),
                }
            }
            let write = async {
                for frame in batch.drain(..) {
                    sink.feed(message(frame)).await?;
                }
                sink.flush().await
            };
            let aborted = tokio::select! {
                result = write => match result {
                    Ok(()) => false,
                    Err(_) => return Exit::Drop,
                },
                // A blocked write must not keep an evicted connection, a slow consumer, or a
                // closed connection past its grace.
                _ = must_abort(mailbox) => true,
            };
            batch.clear();
            mailbox.outbound.written(bytes);
            if aborted {
                return match mailbox.outbound.end_decided() {
                    Some(end) => closing(sink, stream, end),
                    None => Exit::Drop,
                };
            }
        }
        tokio::select! {
            _ = mailbox.wake.notified() => {}
            frame = stream.next(), if reading => {
                let event = match frame {
                    Some(Ok(Message::Text(text))) => ConnEvent::Frame(id, Inbound::Text(text)),
                    Some(Ok(Message::Binary(data))) => ConnEvent::Frame(id, Inbound::Binary(data)),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => ConnEvent::Alive(id),
                    Some(Ok(Message::Frame(_))) => continue,
                    Some(Err(WsError::Utf8)) => {
                        reading = false;
                        ConnEvent::Violation(id, Violation::InvalidUtf8)
                    }
                    Some(Err(WsError::Capacity(_))) => {
                        reading = false;
                        ConnEvent::Violation(id, Violation::MessageTooBig)
                    }
                    // The peer closed (tungstenite answers its close frame), or the socket failed.
                    Some(Ok(Message::Close(frame))) => {
                        drain_close(&mut stream).await;
                        return Exit::PeerClosed(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Err(_)) | None => return Exit::Drop,
                };
                if events.send(event).await.is_err() {
                    return Exit::Drop;
                }
            }
        }
    }
}

/// Resolves once a write in progress must be abandoned: at once for an eviction or a slow
/// consumer, at the end of the grace for any other close.
async fn must_abort(mailbox: &Mailbox) {
    loop {
        if mailbox.outbound.must_abort() {
            return;
        }
        if let Some(&drop_at) = mailbox.drop_at.get() {
            return tokio::time::sleep_until(drop_at).await;
        }
        mailbox.wake.notified().await;
    }
}

/// Writes the close frame, then stops writing and reads (and discards) until the peer closes;
/// the caller bounds it by the grace. The input is not decoded: after a codec fault it is not
/// WebSocket any more, and unread input left at close would make the kernel reset the
/// connection, which destroys the close frame before the client reads it.
async fn close(ws: &mut Ws, code: u16, reason: String) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let stream = ws.get_mut();
    let _ = stream.shutdown().await;
    // On the heap, and only while closing: an idle connection's task stays small.
    let mut discard = vec![0u8; 4096];
    while let Ok(1..) = stream.read(&mut discard).await {}
}

/// After the peer's close frame: let tungstenite write its reply, briefly.
async fn drain_close<S>(stream: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

fn message(frame: Outgoing) -> Message {
    match frame {
        Outgoing::Text(payload) => text_message(payload),
        Outgoing::Ping => Message::Ping(Default::default()),
    }
}
