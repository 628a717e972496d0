//! The HTTP front door's socket side: non-blocking reads and writes that resume. The
//! decisions (routes, statuses, the 101) are the core's `http`.

use std::io::{self, Read, Write};

/// How a non-blocking transfer ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// All done (written), or some bytes arrived (read).
    Done,
    /// The socket would block: wait for readiness.
    Blocked,
    /// The peer closed its side (read returned 0).
    Eof,
}

/// Writes `buf[*written..]` until done or the socket blocks.
pub(crate) fn write_some(
    stream: &mut impl Write,
    buf: &[u8],
    written: &mut usize,
) -> io::Result<Transfer> {
    while *written < buf.len() {
        match stream.write(&buf[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Transfer::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Transfer::Done)
}

/// Reads once (retrying on EINTR) into `buf`, at most `max` bytes.
pub(crate) fn read_some(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Transfer> {
    let mut chunk = [0u8; 2048];
    let want = max.min(chunk.len());
    loop {
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Ok(Transfer::Eof),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(Transfer::Done);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Transfer::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_resume_where_they_stopped() {
        /// Takes three bytes per call, then blocks every other call.
        struct Trickle(Vec<u8>, bool);
        impl Write for Trickle {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(3);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Trickle(Vec::new(), false);
        let data = b"0123456789";
        let mut written = 0;
        let mut calls = 0;
        while write_some(&mut sink, data, &mut written).expect("no error") == Transfer::Blocked {
            calls += 1;
        }
        assert!(calls > 1);
        assert_eq!(sink.0, data);
    }
}
