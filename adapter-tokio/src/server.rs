//! Binding, the accept loop, and the driver's lifetime.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::cap::ConnectionCap;
use crate::driver::{Control, Driver, Mailboxes, EVENT_QUEUE};
use crate::front::serve_socket;
use crate::handle::Handle;
use crate::sync::Arc;
use crate::{Context, ServerConfig};
use switchboard_adapter_kit::tls::Tls;
use switchboard_adapter_kit::{random_seed, websocket_config, Clock, ListenError};
use switchboard_core::http::Listener;
use switchboard_redis::Bridge;

/// Pause after a failed `accept` (e.g. EMFILE), so that the loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    /// `--metrics-listen`: `/metrics` and `/healthz` on an address of their own.
    metrics_listener: Option<TcpListener>,
    tls: Option<Tls>,
    driver: Driver,
    context: Arc<Context>,
    handle: Handle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listening socket (with `config.tls`, after reading the certificate and key:
    /// an unusable file fails the bind with a [`TlsError`](crate::TlsError) inside the
    /// `io::Error`); the server accepts connections once this returns (they wait
    /// in the backlog until [`run`](Self::run) is polled).
    pub async fn bind(config: ServerConfig) -> io::Result<Server> {
        Self::bind_with_clock(config, Clock::system()).await
    }

    /// [`bind`](Self::bind), reading time from `clock` (e.g. a [`Clock::manual`] in a test,
    /// to reach a deadline without sleeping until it).
    pub async fn bind_with_clock(config: ServerConfig, clock: Clock) -> io::Result<Server> {
        // Backlog 1,024: `TcpListener::bind` asks for 128, which a reconnect storm of thousands
        // overflows (the rest wait for a SYN retry, 1 s later).
        let socket = if config.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // The files first: a bad one stops the start before the port is taken.
        let tls = match &config.tls {
            Some(files) => Some(Tls::load(files).map_err(io::Error::other)?),
            None => None,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        let listener = socket.listen(1024)?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(ListenError::wrap("--metrics-listen", addr))?,
            ),
            None => None,
        };
        let acceptor = tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.server_config()));
        let (driver, context, handle) = assemble(config, clock, acceptor)?;
        Ok(Server {
            listener,
            metrics_listener,
            tls,
            driver,
            context,
            handle,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The address `/metrics` has of its own (`metrics_listen`), once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let listener = self.metrics_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound TCP listener has a local address"),
        )
    }

    /// The server's TLS certificate (`None`: plain): [`Tls::reload`] reads the files again, for
    /// the handshakes that follow.
    pub fn tls(&self) -> Option<Tls> {
        self.tls.clone()
    }

    /// A handle for the application: send, publish, query, shut down.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serves until a shutdown has drained (everyone gone, or the drain deadline passed).
    pub async fn run(self) -> io::Result<()> {
        let Server {
            listener,
            metrics_listener,
            tls: _,
            driver,
            context,
            handle,
        } = self;
        info!(addr = %listener.local_addr()?, "listening");
        if let Some(metrics) = metrics_listener {
            info!(addr = %metrics.local_addr()?, "serving /metrics");
            tokio::spawn(serve_metrics(metrics, context.clone()));
        }
        let driver = tokio::spawn(driver.run());
        tokio::pin!(driver);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let listener = context.main_listener;
                        tokio::spawn(serve_socket(stream, peer, listener, context.clone()));
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                _ = &mut driver => break,
            }
        }
        drop(handle);
        info!("stopped");
        Ok(())
    }
}

/// The driver that owns the core, what every socket task shares, and the application's
/// handle, from `config` (its listening addresses and TLS files are the caller's): one
/// assembly for [`Server`] and the axum mount.
pub(crate) fn assemble(
    config: ServerConfig,
    clock: Clock,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<(Driver, Arc<Context>, Handle)> {
    let main_listener = config.main_listener();
    let sb = config.switchboard(random_seed);
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (control_tx, control) = mpsc::unbounded_channel();
    let cap = Arc::new(ConnectionCap::new(config.max_connections));
    let bus = control_tx.clone();
    let redis = config.cluster.as_ref().map(|c| c.redis_url.as_str());
    let bridge = Bridge::for_server(redis, move |event| {
        let _ = bus.send(Control::Bus(event));
    })?;
    let context = Arc::new(Context {
        events: events_tx,
        control: control_tx.clone(),
        cap: cap.clone(),
        handshake_timeout: config.handshake_timeout,
        allowed_origins: config.allowed_origins,
        trusted_proxies: config.trusted_proxies,
        websocket: websocket_config(config.core.max_message_bytes),
        main_listener,
        tls,
    });
    let driver = Driver {
        sb,
        clock: clock.clone(),
        mailboxes: Mailboxes::new(clock, bridge),
        api_key: config.api_key,
        drain_timeout: config.drain_timeout,
        cap,
        events,
        control,
    };
    let handle = Handle {
        control: control_tx,
    };
    Ok((driver, context, handle))
}

/// Accepts on `--metrics-listen` for the server's life (the task ends with the runtime).
pub(crate) async fn serve_metrics(listener: TcpListener, context: Arc<Context>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve_socket(
                    stream,
                    peer,
                    Listener::Metrics,
                    context.clone(),
                ));
            }
            Err(e) => {
                warn!(error = %e, "accept failed on the metrics listener");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
