//! The Pingora side of the connection caps: a `ConnectionFilter` that admits
//! or drops a connection before its TLS handshake, and a `ServerApp` wrapper
//! that moves the connection's [`ConnGuard`] into the stream itself
//! ([`TrackedStream`]), so the slots are released when Pingora drops the
//! connection.
//!
//! Wiring (in the proxy's `main`); `ConnTracked` must be the outermost app,
//! so it sees the raw TCP stream and its peer address:
//! ```ignore
//! let filter = Arc::new(ConnCapFilter::new(limiter, grace, on_denial));
//! let app = ConnTracked::new(EdgeApp::new(pingora_proxy::http_proxy(&conf, edge), shared), filter.clone());
//! let mut service = Service::new("rampart edge".into(), app);
//! service.set_connection_filter(filter.clone());
//! // and run filter.sweeper() on a runtime (see protect::Protect)
//! ```

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::listeners::ConnectionFilter;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::slot;
use super::stream::TrackedStream;
use super::{ConnGuard, ConnLimiter};
use crate::protect::denial::{Denial, DenialReason};

/// Called for every refused connection: count it (`Denials::record`) and
/// write its event line (`Denial::event_line`).
pub type OnDenial = Arc<dyn Fn(Denial) + Send + Sync>;

/// The connection filter; parks each admitted connection's guard until the
/// app claims it.
pub struct ConnCapFilter {
    limiter: Arc<ConnLimiter>,
    /// Admitted by `should_accept`, not yet handed to the app, keyed by the
    /// peer address (unique among open TCP connections to one listener).
    pending: Mutex<HashMap<SocketAddr, (Instant, ConnGuard)>>,
    grace: Duration,
    on_denial: OnDenial,
}

impl std::fmt::Debug for ConnCapFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnCapFilter")
            .field("limiter", &self.limiter)
            .field("grace", &self.grace)
            .finish()
    }
}

impl ConnCapFilter {
    /// `handshake_grace`: `ConnLimitConfig::handshake_grace_secs`.
    pub fn new(limiter: Arc<ConnLimiter>, handshake_grace: Duration, on_denial: OnDenial) -> Self {
        Self {
            limiter,
            pending: Mutex::new(HashMap::new()),
            grace: handshake_grace,
            on_denial,
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<SocketAddr, (Instant, ConnGuard)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limiter(&self) -> &Arc<ConnLimiter> {
        &self.limiter
    }

    /// The admission decision, usable without Pingora. An eviction (the
    /// IP's oldest stalled connection made room) is reported here.
    pub fn admit(&self, peer: SocketAddr) -> bool {
        match self.limiter.admit(peer.ip(), Some(peer)) {
            Ok(admission) => {
                // A stale entry under the same address (a connection that
                // never reached the app, then the port was reused) is
                // dropped here, releasing its slots.
                self.pending()
                    .insert(peer, (Instant::now(), admission.guard));
                if let Some(evicted) = admission.evicted {
                    let mut denial = Denial::new(DenialReason::ConnEvictedStalled).detail(format!(
                        "per-IP connection cap {} reached: closed the oldest connection {} to admit a new one",
                        self.limiter.max_per_ip(),
                        evicted.stalled_on
                    ));
                    if let Some(old) = evicted.peer {
                        denial = denial.client(old);
                    }
                    (self.on_denial)(denial);
                }
                true
            }
            Err(reason) => {
                let detail = match reason {
                    DenialReason::ConnCapGlobal => "global connection cap reached",
                    DenialReason::ConnCapPerIp => "per-IP concurrent connection cap reached",
                    _ => "per-IP new-connection rate exceeded",
                };
                (self.on_denial)(Denial::new(reason).client(peer).detail(detail));
                false
            }
        }
    }

    /// Takes the guard parked for `peer`, if any.
    pub fn claim(&self, peer: SocketAddr) -> Option<ConnGuard> {
        self.pending().remove(&peer).map(|(_, guard)| guard)
    }

    /// Releases guards of connections that never reached the app within the
    /// grace period (closed before or during the handshake), and idle keys
    /// of the new-connection rate limiter. Returns how many were released.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut expired = 0;
        self.pending().retain(|_, (since, _)| {
            let keep = now.duration_since(*since) <= self.grace;
            expired += usize::from(!keep);
            keep
        });
        self.limiter.sweep_rate_keys(100_000);
        expired
    }

    /// Runs [`Self::sweep`] every `period` while the filter lives.
    pub fn sweeper(
        self: &Arc<Self>,
        period: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak = Arc::downgrade(self);
        async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(filter) = weak.upgrade() else { return };
                filter.sweep();
            }
        }
    }

    /// Admitted connections not yet claimed by the app.
    pub fn pending_count(&self) -> usize {
        self.pending().len()
    }
}

#[async_trait]
impl ConnectionFilter for ConnCapFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        // Unix-socket peers have no address; they are local and not capped.
        addr.is_none_or(|peer| self.admit(*peer))
    }
}

/// Wraps the proxy app: a new connection's guard moves into its stream.
pub struct ConnTracked<A> {
    inner: Arc<A>,
    filter: Arc<ConnCapFilter>,
}

impl<A> ConnTracked<A> {
    pub fn new(inner: A, filter: Arc<ConnCapFilter>) -> Self {
        Self {
            inner: Arc::new(inner),
            filter,
        }
    }
}

fn peer_of(stream: &Stream) -> Option<SocketAddr> {
    stream.get_socket_digest()?.peer_addr()?.as_inet().copied()
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnTracked<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive stream coming back already carries its guard (deeper
        // inside), and has nothing parked: it passes through unchanged.
        let Some(guard) = peer_of(&stream).and_then(|p| self.filter.claim(p)) else {
            return self.inner.process_new(stream, shutdown).await;
        };
        if guard.slot().is_evicted() {
            return None; // evicted before it reached the app: close it
        }
        // The slot is reachable (task-local) while the app sets the
        // connection up, so the slow-client guard can report its state.
        let slot = guard.slot().clone();
        let stream: Stream = Box::new(TrackedStream::new(stream, guard));
        slot::CURRENT
            .scope(slot, self.inner.process_new(stream, shutdown))
            .await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests;
