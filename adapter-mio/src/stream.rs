//! The one stream type of the loop's sockets: a plain non-blocking TCP socket, or rustls over
//! one. The front door and the WebSocket codec read and write a [`Stream`] through
//! `Read`/`Write`, whichever it is; `WouldBlock` means what it means on a socket.
//!
//! TLS, without a thread or a buffer of its own: a read takes the plaintext rustls has, and
//! otherwise feeds it what the socket has (`read_tls`, `process_new_packets`) until there is
//! plaintext or the socket would block; a write hands plaintext to rustls and pushes its
//! records out (`write_tls`) as far as the socket takes them. Records still owed are
//! [`Stream::send_pending`]'s to push on the next write pass, with writability asked for
//! meanwhile: a `Write` that accepted bytes has not necessarily put them on the wire.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ServerConnection;
use tracing::debug;

/// An accepted socket, plain or TLS.
pub(crate) enum Stream {
    /// `ws://` and `http://`.
    Plain(TcpStream),
    /// `wss://` and `https://`. Boxed: a plain socket pays one word, not rustls' state.
    Tls(Box<TlsStream>),
}

/// rustls over a socket.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// Our side is to be shut (FIN) once the records still owed are out.
    shut_after_flush: bool,
}

impl Stream {
    /// `tcp` as is, or with a TLS session of `config` that begins with the client's hello.
    pub(crate) fn new(
        tcp: TcpStream,
        config: Option<&std::sync::Arc<rustls::ServerConfig>>,
    ) -> Result<Stream, rustls::Error> {
        Ok(match config {
            None => Stream::Plain(tcp),
            Some(config) => Stream::Tls(Box::new(TlsStream {
                tcp,
                tls: ServerConnection::new(config.clone())?,
                shut_after_flush: false,
            })),
        })
    }

    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(s) => &mut s.tcp,
        }
    }

    /// A TLS session still in its handshake (a plain socket never is).
    pub(crate) fn tls_handshaking(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.tls.is_handshaking(),
        }
    }

    /// TLS records are waiting for the socket to take them.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.tls.wants_write(),
        }
    }

    /// Pushes the TLS records still owed (and then the deferred FIN); whether some are still
    /// owed, for which writability must be asked.
    pub(crate) fn send_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(false),
            Stream::Tls(s) => match s.push() {
                Ok(()) => Ok(false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
                Err(e) => Err(e),
            },
        }
    }

    /// Ends our side: plain, a FIN; TLS, a `close_notify` alert and the FIN after it, once
    /// every record is out (now, or by [`send_pending`](Self::send_pending)).
    pub(crate) fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(tcp) => {
                let _ = tcp.shutdown(Shutdown::Write);
            }
            Stream::Tls(s) => {
                s.tls.send_close_notify();
                s.shut_after_flush = true;
                let _ = s.push();
            }
        }
    }
}

impl TlsStream {
    /// Writes records until none is owed; `WouldBlock` when the socket takes no more.
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if std::mem::take(&mut self.shut_after_flush) {
            let _ = self.tcp.shutdown(Shutdown::Write);
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = match self {
            Stream::Plain(tcp) => return tcp.read(buf),
            Stream::Tls(s) => s,
        };
        loop {
            match s.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // The peer closed the socket without a close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // No plaintext yet: feed rustls what the socket has.
            match s.tls.read_tls(&mut s.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = s.tls.process_new_packets() {
                // E.g. a plain-HTTP client: the alert rustls queued, if the socket takes it.
                debug!(error = %e, "TLS failed");
                let _ = s.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // The handshake's answers, or a reply to an alert: out as far as they go.
            match s.push() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = match self {
            Stream::Plain(tcp) => return tcp.write(buf),
            Stream::Tls(s) => s,
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = s.tls.writer().write(buf)?;
            if n > 0 {
                // Accepted; what the socket does not take now is owed (`send_pending`).
                match s.push() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                return Ok(n);
            }
            // rustls' buffer is full: make room by writing records, or block.
            if !s.tls.wants_write() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            s.push()?;
        }
    }

    /// Everything written is on the wire (as far as the socket is concerned), or `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(s) => s.push(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp().deregister(registry)
    }
}
