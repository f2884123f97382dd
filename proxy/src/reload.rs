//! Atomic reloads: SIGHUP re-reads the whole config; a watcher re-reads certificate files when
//! their modification time changes. Everything is loaded and checked first; only then is the
//! new state swapped in, so a bad file changes nothing and the old state keeps serving.

use crate::config::{self, Config};
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::tls::{load_cert_set, ListenerTlsState, PreparedTls};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Loads every listener's certificates and builds their configs; all or nothing.
fn load_all_certs(
    shared: &Shared,
    config: &Config,
) -> Result<Vec<(Arc<ListenerTlsState>, PreparedTls)>, String> {
    let mut out = Vec::new();
    for l in &config.listeners {
        if let (Some(tls), Some(state)) = (&l.tls, shared.tls.get(&l.name)) {
            let set = load_cert_set(&tls.certificates)
                .map_err(|e| format!("listener `{}`: {e}", l.name))?;
            out.push((state.clone(), state.prepare(tls.profile, set)?));
        }
    }
    Ok(out)
}

/// Listeners are bound at start; a reload may change everything else.
fn same_listeners(old: &Config, new: &Config) -> Result<(), String> {
    let shape = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address, l.tls.is_some(), l.http2))
            .collect::<Vec<_>>()
    };
    if shape(old) != shape(new) {
        return Err(
            "listener names, addresses, tls on/off or http2 changed: these need a restart".into(),
        );
    }
    Ok(())
}

/// SIGHUP: re-read the config file and swap routes, upstreams, headers, WAF, certificates and
/// the `[protect]` defences. Everything is built and checked before anything is swapped.
pub fn reload_config(shared: &Shared) -> Result<(), String> {
    let result = (|| {
        let config = config::load(&shared.config_path).map_err(|e| e.to_string())?;
        same_listeners(&shared.runtime.load().config, &config)?;
        let routes = config.routes.iter().map(|r| r.name.clone()).collect();
        let protect = shared
            .defences
            .prepare_reload(&config.protect, routes)
            .map_err(|e| format!("[protect]: {e}"))?;
        let certs = load_all_certs(shared, &config)?;
        for w in config::warnings(&config) {
            tracing::warn!("{w}");
        }
        let runtime = Runtime::build(config)?;
        for (state, prepared) in certs {
            state.commit(prepared);
        }
        shared.runtime.store(Arc::new(runtime));
        let tasks = shared.defences.commit(protect);
        // On the control plane's runtime (reloads run on its blocking pool).
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => tasks.into_iter().for_each(|t| drop(handle.spawn(t))),
            Err(_) => tracing::warn!("reload outside a runtime: new protect workers not started"),
        }
        Ok(())
    })();
    record(shared, "config", &result);
    result
}

/// Certificate files changed on disk: reload the certificates of the current config.
pub fn reload_certs(shared: &Shared) -> Result<(), String> {
    let config = shared.runtime.load().config.clone();
    let result = load_all_certs(shared, &config).map(|certs| {
        for (state, prepared) in certs {
            state.commit(prepared);
        }
    });
    record(shared, "certificates", &result);
    result
}

fn record(shared: &Shared, what: &str, result: &Result<(), String>) {
    let label = if result.is_ok() { "ok" } else { "error" };
    shared
        .metrics
        .reloads
        .with_label_values(&[what, label])
        .inc();
    eprintln!(
        "rampart-proxy: {what} reload {}",
        match result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("refused (previous one keeps serving): {e}"),
        }
    );
}

fn mtimes(files: &[PathBuf]) -> HashMap<PathBuf, Option<SystemTime>> {
    files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::metadata(f).and_then(|m| m.modified()).ok(),
            )
        })
        .collect()
}

/// Polls certificate and key mtimes every second; reloads certificates on change.
pub async fn watch_certificates(shared: Arc<Shared>) {
    let mut last = mtimes(&shared.runtime.load().config.tls_files());
    let mut failed_at: Option<HashMap<PathBuf, Option<SystemTime>>> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = mtimes(&shared.runtime.load().config.tls_files());
        if now == last || failed_at.as_ref() == Some(&now) {
            continue;
        }
        // Wait one more tick so a cert and key written one after the other are both complete.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = mtimes(&shared.runtime.load().config.tls_files());
        let s = shared.clone();
        let ok = tokio::task::spawn_blocking(move || reload_certs(&s).is_ok())
            .await
            .unwrap_or(false);
        if ok {
            last = now;
            failed_at = None;
        } else {
            // Don't retry the same broken files every second; retry when they change again.
            failed_at = Some(now);
        }
    }
}

/// SIGHUP handler loop; the signal stream must be created before Pingora starts.
pub async fn on_sighup(shared: Arc<Shared>, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        shared.access_log.reopen();
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || reload_config(&s)).await;
    }
}
