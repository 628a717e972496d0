//! Binding the listeners other than `--listen`, with errors that name their flag.

use std::io;
use std::net::SocketAddr;

/// A listener other than `--listen` could not be bound: which flag named it, and why.
///
/// Carried inside the [`io::Error`] a server's `bind` returns (same kind), so that the command
/// line can name the flag to change.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {addr}: {source}")]
pub struct ListenError {
    /// The flag that names the address, e.g. `--metrics-listen`.
    pub flag: &'static str,
    /// The address that could not be bound.
    pub addr: SocketAddr,
    /// What binding it returned.
    #[source]
    pub source: io::Error,
}

impl ListenError {
    /// Wraps a bind failure of the listener `flag` names.
    pub fn wrap(flag: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> io::Error {
        move |source| {
            let kind = source.kind();
            io::Error::new(kind, ListenError { flag, addr, source })
        }
    }

    /// The `ListenError` inside `error`, if it is one.
    pub fn of(error: &io::Error) -> Option<&ListenError> {
        error.get_ref()?.downcast_ref::<ListenError>()
    }
}
