//! Atomic reloads: SIGHUP re-reads the whole config; a watcher re-reads certificate files when
//! their modification time changes. Everything is loaded and checked first; only then is the
//! new state swapped in, so a bad file changes nothing and the old state keeps serving.

use crate::config::{self, Config};
use crate::error::EdgeError;
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::tls::{load_cert_set, ListenerTlsState, PreparedTls};
use std::sync::Arc;

/// Loads every listener's certificates and builds their configs; all or nothing.
fn load_all_certs(
    shared: &Shared,
    config: &Config,
) -> Result<Vec<(Arc<ListenerTlsState>, PreparedTls)>, EdgeError> {
    let mut out = Vec::new();
    for l in &config.listeners {
        if let (Some(tls), Some(state)) = (&l.tls, shared.tls.get(&l.name)) {
            let tls_error = |message: String| EdgeError::ListenerTls {
                listener: l.name.clone(),
                message,
            };
            let set = load_cert_set(&tls.certificates).map_err(|e| tls_error(e.to_string()))?;
            let prepared = state.prepare(tls.profile, set).map_err(tls_error)?;
            out.push((state.clone(), prepared));
        }
    }
    Ok(out)
}

/// Listeners are bound at start; a reload may change everything else.
fn same_listeners(old: &Config, new: &Config) -> Result<(), EdgeError> {
    let shape = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address, l.tls.is_some(), l.http2))
            .collect::<Vec<_>>()
    };
    if shape(old) != shape(new) {
        return Err(EdgeError::ListenersChanged);
    }
    Ok(())
}

/// SIGHUP: re-read the config file and swap routes, upstreams, headers, WAF, certificates and
/// the `[protect]` defences. Everything is built and checked before anything is swapped.
pub fn reload_config(shared: &Shared) -> Result<(), EdgeError> {
    let result = (|| {
        let config = config::load(&shared.config_path)?;
        same_listeners(&shared.runtime.load().config, &config)?;
        let routes = config.routes.iter().map(|r| r.name.clone()).collect();
        let protect = shared
            .defences
            .prepare_reload(&config.protect, routes)
            .map_err(|e| EdgeError::Protect(e.to_string()))?;
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
pub fn reload_certs(shared: &Shared) -> Result<(), EdgeError> {
    let config = shared.runtime.load().config.clone();
    let result = load_all_certs(shared, &config).map(|certs| {
        for (state, prepared) in certs {
            state.commit(prepared);
        }
    });
    record(shared, "certificates", &result);
    result
}

fn record(shared: &Shared, what: &str, result: &Result<(), EdgeError>) {
    shared.metrics.reloads.record(what, result);
}

/// Polls the certificate and key files every second; reloads certificates when their content
/// changes (a failed reload is retried only when the files change again).
pub fn watch_certificates(shared: Arc<Shared>) -> impl std::future::Future<Output = ()> + Send {
    let files = shared.clone();
    rampart_ops::reload::watch_files(
        move || files.runtime.load().config.tls_files(),
        rampart_ops::reload::WatchTiming::default(),
        move || reload_certs(&shared).is_ok(),
    )
}

/// SIGHUP: re-open the access log (rotation) and reload the config; the signal stream must be
/// created before Pingora starts.
pub async fn on_sighup(shared: Arc<Shared>, hup: tokio::signal::unix::Signal) {
    rampart_ops::reload::on_signal(hup, move || {
        shared.access_log.reopen();
        let _ = reload_config(&shared);
    })
    .await
}
