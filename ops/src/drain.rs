//! Readiness, the in-flight counter and the SIGTERM drain.
//!
//! On SIGTERM a server stops being ready (load balancers polling `/readyz` stop sending), waits
//! until no request is in flight, runs its last step (flush logs) and exits 0. The server's own
//! listener shutdown (Pingora's grace period, a hyper graceful shutdown) runs beside this and
//! bounds the wait.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whether the process accepts work (`/readyz`). Starts not ready. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release)
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Requests (or connections) being served; the drain waits for zero. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<AtomicI64>);

impl InFlight {
    pub fn new() -> Self {
        Self::default()
    }
    /// One more in flight; pair with [`InFlight::leave`].
    pub fn enter(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
    pub fn leave(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
    /// One more in flight until the guard is dropped.
    pub fn guard(&self) -> InFlightGuard {
        self.enter();
        InFlightGuard(self.clone())
    }
    pub fn count(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
    /// Resolves once nothing is in flight (polled every 20 ms).
    pub async fn idle(&self) {
        while self.count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Leaves the in-flight count when dropped.
#[derive(Debug)]
pub struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.leave()
    }
}

/// What to do on SIGTERM.
pub struct Drain {
    /// Set not ready at once.
    pub ready: Readiness,
    /// Waited on until zero.
    pub in_flight: InFlight,
    /// Time given to the server to see the signal and stop accepting before waiting.
    pub settle: Duration,
    /// Names the process in the log lines (target `rampart_ops::drain`, INFO).
    pub name: &'static str,
}

/// Waits for SIGTERM on `term` (create it before the server starts so no signal is missed), then
/// drains as [`Drain`] says, runs `finish` (flush logs) and exits the process with status 0.
pub async fn on_sigterm(
    term: tokio::signal::unix::Signal,
    drain: Drain,
    finish: impl FnOnce() + Send,
) {
    on_sigterm_within(term, drain, None, finish).await
}

/// [`on_sigterm`], waiting for the in-flight work at most `limit` (for servers whose
/// connections are long-lived, e.g. a sidecar's keep-alive and streaming connections): what is
/// still open then is cut when the process exits, and the log says how many.
pub async fn on_sigterm_within(
    mut term: tokio::signal::unix::Signal,
    drain: Drain,
    limit: Option<Duration>,
    finish: impl FnOnce() + Send,
) {
    if term.recv().await.is_none() {
        return;
    }
    drain.ready.set(false);
    tracing::info!(process = drain.name, "SIGTERM, draining");
    tokio::time::sleep(drain.settle).await;
    match limit {
        None => drain.in_flight.idle().await,
        Some(limit) => {
            if tokio::time::timeout(limit, drain.in_flight.idle())
                .await
                .is_err()
            {
                tracing::warn!(
                    process = drain.name,
                    open = drain.in_flight.count(),
                    "drain limit of {limit:?} reached, closing what is still open"
                );
            }
        }
    }
    finish();
    tracing::info!(process = drain.name, "drained, exiting");
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let f = InFlight::new();
        let g = f.guard();
        f.enter();
        assert_eq!(f.count(), 2);
        f.leave();
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "one request still in flight");
        drop(g);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle after the last guard")
            .unwrap();
    }

    #[test]
    fn readiness_starts_false() {
        let r = Readiness::new();
        assert!(!r.is_ready());
        r.clone().set(true);
        assert!(r.is_ready());
    }
}
