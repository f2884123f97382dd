//! Reloads, all or nothing. A reload builds one complete new generation of what it reloads
//! (config, certificates, policies) from the files, and swaps it in with one store; if anything
//! fails to load or check, nothing is swapped, the running generation keeps serving, and the
//! refusal is counted and logged with its reason.
//!
//! Triggers: [`on_signal`] (SIGHUP) and [`watch_files`] (kernel notification on the files'
//! directories, so a rename into place and a Kubernetes `..data` symlink swap are seen too; a
//! slow poll only when the notification cannot be set up).
//! Connections already open keep the generation they loaded; new work sees the new one.

use arc_swap::{ArcSwap, Guard};
use prometheus::{IntCounterVec, Registry};
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

mod files;
pub use files::{
    fingerprints, watch_files, FileWatch, Fingerprint, WatchCounts, WatchMode, WatchTiming,
};

/// Counts reloads by what was reloaded and result (`ok`, `error`) and logs each one.
#[derive(Clone, Debug)]
pub struct ReloadLog {
    counter: IntCounterVec,
    process: &'static str,
}

impl ReloadLog {
    /// Registers `metric` (labels `what`, `result`) in `registry`. `process` names the binary in
    /// the log lines (target `rampart_ops::reload`: ok at INFO, refused at ERROR).
    pub fn register(registry: &Registry, metric: &str, process: &'static str) -> Self {
        let counter = crate::metrics::counter_vec(
            registry,
            metric,
            "Reloads by what was reloaded and result",
            &["what", "result"],
        );
        ReloadLog { counter, process }
    }

    /// Counts and logs the outcome of one reload of `what`.
    pub fn record<E: Display>(&self, what: &str, result: &Result<(), E>) {
        let label = if result.is_ok() { "ok" } else { "error" };
        self.counter.with_label_values(&[what, label]).inc();
        match result {
            Ok(()) => tracing::info!(process = self.process, "{what} reload ok"),
            Err(e) => tracing::error!(
                process = self.process,
                "{what} reload refused (the previous one keeps serving): {e}"
            ),
        }
    }

    /// The count of `what` reloads with `result`.
    pub fn count(&self, what: &str, result: &str) -> u64 {
        self.counter.with_label_values(&[what, result]).get()
    }
}

/// The live generation of something reloadable. Readers [`load`](Generations::load) it (a
/// lock-free atomic load); [`reload`](Generations::reload) builds the next generation and swaps
/// it in one store, or keeps the current one. Long-lived work that must react to a new
/// generation (close a connection the new policy denies) [`subscribe`](Generations::subscribe)s.
pub struct Generations<T> {
    live: ArcSwap<T>,
    changes: watch::Sender<Arc<T>>,
    /// Serialises writers (a reload and an [`update`](Generations::update)), so neither builds
    /// from a generation the other is replacing.
    writer: Mutex<()>,
    log: ReloadLog,
}

impl<T> Generations<T> {
    pub fn new(first: T, log: ReloadLog) -> Self {
        let first = Arc::new(first);
        Generations {
            live: ArcSwap::new(first.clone()),
            changes: watch::channel(first).0,
            writer: Mutex::new(()),
            log,
        }
    }

    /// The current generation (cheap; hold it for one unit of work, not across reloads).
    pub fn load(&self) -> Guard<Arc<T>> {
        self.live.load()
    }

    /// The current generation as an owned `Arc` (for work that outlives a guard).
    pub fn load_full(&self) -> Arc<T> {
        self.live.load_full()
    }

    /// Every new generation, as it is swapped in (the receiver starts at the current one).
    pub fn subscribe(&self) -> watch::Receiver<Arc<T>> {
        self.changes.subscribe()
    }

    fn store(&self, next: T) {
        let next = Arc::new(next);
        self.live.store(next.clone());
        self.changes.send_replace(next);
    }

    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panicking writer leaves nothing inconsistent.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds the next generation from the current one with `build`; on success swaps it in,
    /// on error keeps the current one. Either way the outcome is counted and logged as `what`.
    /// Writers take turns: a concurrent [`update`](Generations::update) waits, so neither
    /// loses the other's change. `build` may block (it reads files): call this off the async
    /// workers (the triggers below run it on the blocking pool).
    pub fn reload<E: Display>(
        &self,
        what: &str,
        build: impl FnOnce(&T) -> Result<T, E>,
    ) -> Result<(), E> {
        let _writer = self.write_lock();
        let current = self.live.load_full();
        let result = build(&current).map(|next| self.store(next));
        self.log.record(what, &result);
        result
    }

    /// Swaps in a generation derived from the current one, not counted as a reload (e.g. a
    /// renewed certificate replacing only the TLS part). `next` must not block.
    pub fn update(&self, next: impl FnOnce(&T) -> T) {
        let _writer = self.write_lock();
        let current = self.live.load_full();
        self.store(next(&current));
    }

    pub fn reload_log(&self) -> &ReloadLog {
        &self.log
    }
}

/// Runs `reload` on tokio's blocking pool at each signal received on `signal` (create the
/// stream before the server starts, so an early SIGHUP is not lost). One reload at a time.
pub async fn on_signal<F>(mut signal: tokio::signal::unix::Signal, reload: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let reload = Arc::new(reload);
    while signal.recv().await.is_some() {
        let r = reload.clone();
        let _ = tokio::task::spawn_blocking(move || r()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> ReloadLog {
        ReloadLog::register(&Registry::new(), "t_reloads_total", "test")
    }

    #[test]
    fn a_refused_generation_keeps_the_old_one() {
        let g = Generations::new(1u32, log());
        g.reload("config", |n| Ok::<_, String>(n + 1)).unwrap();
        assert_eq!(**g.load(), 2);
        let err = g.reload("config", |_| Err::<u32, _>("line 3: bad".to_string()));
        assert_eq!(err.unwrap_err(), "line 3: bad");
        assert_eq!(**g.load(), 2, "the old generation keeps serving");
        assert_eq!(g.reload_log().count("config", "ok"), 1);
        assert_eq!(g.reload_log().count("config", "error"), 1);
    }

    #[tokio::test]
    async fn subscribers_see_reloads_and_updates_but_not_refusals() {
        let g = Generations::new(1u32, log());
        let mut rx = g.subscribe();
        assert_eq!(**rx.borrow_and_update(), 1);
        g.reload("config", |n| Ok::<_, String>(n + 1)).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(**rx.borrow_and_update(), 2);
        let _ = g.reload("config", |_| Err::<u32, _>("bad".to_string()));
        assert!(
            !rx.has_changed().unwrap(),
            "a refused reload publishes nothing"
        );
        g.update(|n| n * 10);
        assert_eq!(**rx.borrow_and_update(), 20);
        assert_eq!(**g.load(), 20);
        assert_eq!(
            g.reload_log().count("config", "ok"),
            1,
            "an update is not a reload"
        );
    }
}
