//! The admission side of the connection caps, for a listener that accepts
//! before it knows which task will serve the connection: [`ConnCapFilter::admit`]
//! decides right after `accept(2)` (before any TLS handshake) and parks the
//! connection's [`ConnGuard`] under its peer address until the serving side
//! [`claims`](ConnCapFilter::claim) it; guards never claimed are released by
//! [`ConnCapFilter::sweep`] after the handshake grace. The Pingora listener
//! hooks are in `conn_limit::pingora` (feature `pingora`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ConnGuard, ConnLimiter};
use crate::denial::{Denial, DenialReason, OnDenial};

/// The connection filter; parks each admitted connection's guard until the
/// app claims it.
#[derive(derive_more::Debug)]
pub struct ConnCapFilter {
    limiter: Arc<ConnLimiter>,
    /// Admitted by `should_accept`, not yet handed to the app, keyed by the
    /// peer address (unique among open TCP connections to one listener).
    #[debug(skip)]
    pending: Mutex<HashMap<SocketAddr, (Instant, ConnGuard)>>,
    grace: Duration,
    #[debug(skip)]
    on_denial: OnDenial,
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
