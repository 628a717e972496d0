//! The bridge thread: connect, run a session, report `Lost`, back off, connect again.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use switchboard_core::cluster::BusEvent;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::layout::Layout;
use crate::session::{Connections, End, Session};
use crate::{Queued, Shared};

/// How long one connection attempt (TCP, handshake, authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A session that lasted this long was healthy: the next loss reconnects at once, with the
/// backoff started afresh. A shorter one (a server that accepts and then fails) keeps backing
/// off, so a flapping server is not hammered.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// Everything the bridge thread owns.
pub(crate) struct Context {
    pub(crate) client: Client,
    /// `host:port` (or the socket path) for the logs: never the password.
    pub(crate) endpoint: Arc<str>,
    pub(crate) layout: Layout,
    pub(crate) shared: Arc<Shared>,
    pub(crate) actions: mpsc::UnboundedReceiver<Queued>,
    pub(crate) on_event: Box<dyn FnMut(BusEvent) + Send>,
}

/// How long a stopping bridge may take to write the publishes still queued.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The bridge thread's body: runs until `stop` fires (or its sender is dropped).
pub(crate) fn run(runtime: tokio::runtime::Runtime, context: Context, stop: oneshot::Receiver<()>) {
    runtime.block_on(async move {
        let supervise = supervise(context);
        tokio::pin!(supervise);
        tokio::select! {
            _ = stop => {
                let _ = tokio::time::timeout(FLUSH_GRACE, &mut supervise).await;
            }
            () = &mut supervise => {}
        }
    });
    // Dropping the runtime ends the connections' driver tasks, which closes the sockets.
    drop(runtime);
}

/// Connects, runs sessions and reconnects, until the [`Bridge`](crate::Bridge) is gone.
async fn supervise(mut context: Context) {
    let mut backoff = Backoff::new();
    let mut was_up = false;
    let mut wait_first = false;
    loop {
        let Some(connections) = connect_until_up(&mut context, &mut backoff, wait_first).await
        else {
            return;
        };
        let shared = &context.shared;
        if was_up {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        was_up = true;
        info!(redis = %context.endpoint, "connected to Redis");
        // Up before it is reported, so the core's first actions after Up are taken.
        let generation = shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        (context.on_event)(BusEvent::Up);
        let started = Instant::now();
        let session = Session::new(connections, &context.layout, shared, generation);
        let end = session
            .run(&mut context.actions, &mut *context.on_event)
            .await;
        shared.generation.fetch_add(1, Ordering::AcqRel);
        match end {
            End::Closed => return,
            End::Lost(reason) => {
                warn!(redis = %context.endpoint, %reason, "lost the connection to Redis");
                (context.on_event)(BusEvent::Lost);
            }
        }
        wait_first = started.elapsed() < STABLE_SESSION;
        if !wait_first {
            backoff = Backoff::new();
        }
    }
}

/// Tries to connect until it works, dropping actions meanwhile; `None` once the
/// [`Bridge`](crate::Bridge) is gone.
async fn connect_until_up(
    context: &mut Context,
    backoff: &mut Backoff,
    wait_first: bool,
) -> Option<Connections> {
    if wait_first {
        let delay = backoff.next_delay();
        dropping_actions(
            &mut context.actions,
            &context.shared,
            tokio::time::sleep(delay),
        )
        .await?;
    }
    loop {
        match dropping_actions(
            &mut context.actions,
            &context.shared,
            connect(&context.client),
        )
        .await?
        {
            Ok(connections) => return Some(connections),
            Err(error) => {
                let delay = backoff.next_delay();
                warn!(
                    redis = %context.endpoint,
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot connect to Redis"
                );
                dropping_actions(
                    &mut context.actions,
                    &context.shared,
                    tokio::time::sleep(delay),
                )
                .await?;
            }
        }
    }
}

/// Runs `work` while dropping every action that arrives (the bus is down); `None` if the
/// [`Bridge`](crate::Bridge) is gone first.
async fn dropping_actions<T>(
    actions: &mut mpsc::UnboundedReceiver<Queued>,
    shared: &Shared,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Some(output),
            queued = actions.recv() => shared.discard(&queued?),
        }
    }
}

/// Opens both connections: the multiplexed one for commands, then the pub/sub one.
async fn connect(client: &Client) -> RedisResult<Connections> {
    // No response timeout: a slow answer on a live connection is fine, and a dead connection
    // is found by the session's PING.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None);
    let commands = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the pub/sub connection timed out",
            ))
        })??;
    let (sink, stream) = pubsub.split();
    Ok(Connections {
        commands,
        sink,
        stream,
    })
}

/// Exponential backoff with jitter: each wait is between half and all of the current step.
#[derive(Debug)]
struct Backoff {
    step: Duration,
    random: RandomState,
    draws: u64,
}

impl Backoff {
    fn new() -> Self {
        Self {
            step: MIN_BACKOFF,
            random: RandomState::new(),
            draws: 0,
        }
    }

    /// The next wait; the step doubles up to [`MAX_BACKOFF`].
    fn next_delay(&mut self) -> Duration {
        self.draws += 1;
        // Jitter, so that nodes that lost Redis together don't reconnect in lockstep.
        let fraction = (self.random.hash_one(self.draws) % 1024) as u32;
        let half = self.step / 2;
        let delay = half + half * fraction / 1024;
        self.step = (self.step * 2).min(MAX_BACKOFF);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_its_cap_with_jitter() {
        let mut backoff = Backoff::new();
        let mut step = MIN_BACKOFF;
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for a step of {step:?}"
            );
            step = (step * 2).min(MAX_BACKOFF);
        }
        assert_eq!(backoff.step, MAX_BACKOFF);
    }
}
