//! `switchboard-mio`: the same server as `switchboard` (same flags, same protocol, same HTTP
//! API) on a mio event loop.

use std::process::ExitCode;

use switchboard_cli::Binary;
use switchboard_mio::{Handle, Server, ServerConfig, Tls};
use tracing::{error, info, warn};

const BINARY: Binary = Binary {
    name: env!("CARGO_BIN_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    // `--help`'s first line: what the binary is.
    about: "switchboard-mio: the Switchboard server on a mio event loop. The same WebSocket \
            gateway as `switchboard`: connections at /ws, the HTTP API, /healthz and /metrics, \
            on one port.",
};

fn main() -> ExitCode {
    let config = match switchboard_cli::start(BINARY) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    // Before any other thread exists, so that every thread inherits the mask. SIGHUP only
    // with TLS (it reloads the certificate); without, it keeps its default.
    let signals = match block_signals(config.tls.is_some()) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("switchboard-mio: cannot block SIGTERM/SIGINT: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(config, signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => exit,
    }
}

fn serve(config: ServerConfig, signals: libc::sigset_t) -> Result<(), ExitCode> {
    let (addr, max_connections) = (config.listen, config.max_connections);
    let server =
        Server::bind(config).map_err(|e| switchboard_cli::cannot_listen(BINARY, addr, &e))?;
    let scheme = if server.tls().is_some() { "wss" } else { "ws" };
    info!(addr = %server.local_addr(), max_connections, "switchboard-mio ready: {scheme}://{}/ws", server.local_addr());
    let handle = server.handle();
    let tls = server.tls();
    let failed = |e: std::io::Error| {
        error!(error = %e, "server failed");
        ExitCode::FAILURE
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signals(signals, handle, tls))
        .map_err(failed)?;
    server.run().map_err(failed)
}

/// Blocks SIGTERM and SIGINT (and SIGHUP if `hangup`) in this thread (and so in every thread
/// spawned after), returning the set for `sigwait`.
///
/// Why `sigwait` on a dedicated thread rather than a handler: a handler runs in signal context,
/// where only async-signal-safe calls are allowed, so it could at most set a flag and poke a
/// self-pipe; a thread that waits for the blocked signals synchronously runs ordinary code and
/// simply calls `Handle::shutdown`, with no extra crate and no unsafe code in signal context.
fn block_signals(hangup: bool) -> std::io::Result<libc::sigset_t> {
    // SAFETY: the set is initialised by sigemptyset before use; the calls only read and write it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if hangup {
            libc::sigaddset(&mut set, libc::SIGHUP);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

/// Starts the drain on every SIGTERM/SIGINT (repeats are harmless: shutdown is idempotent);
/// reads the TLS certificate and key again on every SIGHUP (a failed reload keeps the
/// certificate in use).
fn wait_for_signals(signals: libc::sigset_t, handle: Handle, tls: Option<Tls>) {
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `signals` is a valid, initialised set; `signal` is a valid out-pointer.
        let rc = unsafe { libc::sigwait(&signals, &mut signal) };
        if rc != 0 {
            warn!(error = %std::io::Error::from_raw_os_error(rc), "sigwait failed");
            return;
        }
        if signal == libc::SIGHUP {
            match tls.as_ref().map(Tls::reload) {
                Some(Ok(())) => info!("SIGHUP: TLS certificate reloaded"),
                Some(Err(e)) => {
                    error!(error = %e, "SIGHUP: TLS certificate not reloaded, the old one stays")
                }
                None => {}
            }
            continue;
        }
        info!(signal, "signal received: draining");
        if handle.shutdown().is_err() {
            return; // the server stopped: nothing left to drain
        }
    }
}
