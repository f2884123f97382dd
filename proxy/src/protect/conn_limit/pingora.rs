//! The Pingora side of the connection caps: a `ConnectionFilter` that admits
//! or drops a connection before its TLS handshake, and a `ServerApp` wrapper
//! that keeps the connection's [`ConnGuard`] for as long as it is served.
//!
//! Wiring (in the proxy's `main`):
//! ```ignore
//! let filter = Arc::new(ConnCapFilter::new(limiter, on_denial));
//! let app = ConnTracked::new(pingora_proxy::http_proxy(&conf, edge), filter.clone());
//! let mut service = Service::new("rampart edge".into(), app);
//! service.set_connection_filter(filter.clone());
//! service.add_tls_with_settings(addr, None, tls);
//! filter.spawn_sweeper(Duration::from_secs(10)); // on a runtime
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

use super::{ConnGuard, ConnLimiter};
use crate::protect::denial::{Denial, DenialReason};

/// Called for every refused connection: count it (`Denials::record`) and
/// write its event line (`Denial::event_line`).
pub type OnDenial = Arc<dyn Fn(Denial) + Send + Sync>;

enum Slot {
    /// Accepted, handshake not done yet (since when).
    Pending(Instant, ConnGuard),
    /// Being served by the app.
    Active(ConnGuard),
}

/// The connection filter; also holds the guards of open connections.
pub struct ConnCapFilter {
    limiter: Arc<ConnLimiter>,
    slots: Mutex<HashMap<SocketAddr, Slot>>,
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
            slots: Mutex::new(HashMap::new()),
            grace: handshake_grace,
            on_denial,
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<SocketAddr, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limiter(&self) -> &Arc<ConnLimiter> {
        &self.limiter
    }

    /// The admission decision, usable without Pingora.
    pub fn admit(&self, peer: SocketAddr) -> bool {
        match self.limiter.try_admit(peer.ip()) {
            Ok(guard) => {
                // A stale slot under the same address (a connection whose
                // handshake failed, then the port was reused) is dropped here.
                self.slots()
                    .insert(peer, Slot::Pending(Instant::now(), guard));
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

    /// The connection from `peer` reached the app: its slot stays until
    /// [`Self::release`].
    fn activate(&self, peer: SocketAddr) {
        let mut slots = self.slots();
        if let Some(slot) = slots.remove(&peer) {
            let guard = match slot {
                Slot::Pending(_, g) | Slot::Active(g) => g,
            };
            slots.insert(peer, Slot::Active(guard));
        }
    }

    fn release(&self, peer: SocketAddr) {
        let slot = self.slots().remove(&peer);
        drop(slot);
    }

    /// Reclaims slots of connections that never finished their handshake,
    /// and idle keys of the new-connection rate limiter. Returns how many
    /// pending slots were reclaimed.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut expired = 0;
        self.slots().retain(|_, slot| match slot {
            Slot::Pending(since, _) if now.duration_since(*since) > self.grace => {
                expired += 1;
                false
            }
            _ => true,
        });
        self.limiter.sweep_rate_keys(100_000);
        expired
    }

    /// Runs [`Self::sweep`] every `period` while the filter lives.
    pub fn spawn_sweeper(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(filter) = weak.upgrade() else { return };
                filter.sweep();
            }
        })
    }

    /// Connections admitted and not yet closed (pending + active).
    pub fn tracked(&self) -> usize {
        self.slots().len()
    }
}

#[async_trait]
impl ConnectionFilter for ConnCapFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        // Unix-socket peers have no address; they are local and not capped.
        addr.is_none_or(|peer| self.admit(*peer))
    }
}

/// Wraps the proxy app so a connection's slots are held while it is served
/// and released when Pingora is done with it (or the task unwinds).
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

struct ReleaseOnDrop<'a> {
    filter: &'a ConnCapFilter,
    peer: Option<SocketAddr>,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            self.filter.release(peer);
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
        let peer = peer_of(&stream);
        if let Some(p) = peer {
            self.filter.activate(p);
        }
        let mut release = ReleaseOnDrop {
            filter: &self.filter,
            peer,
        };
        let reused = self.inner.process_new(stream, shutdown).await;
        if reused.is_some() {
            // Kept alive: Pingora calls process_new again with this stream.
            release.peer = None;
        }
        reused
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests;
