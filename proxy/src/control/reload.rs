//! Atomic reloads: SIGHUP re-reads the whole config; a watcher re-reads certificate files when
//! their content changes. Each builds one complete new generation ([`Runtime`]: routes,
//! upstreams, policies, WAF rules and every listener's TLS config) and publishes it with one
//! store (`Generations::reload`); a bad file changes nothing and the old generation keeps
//! serving. Connections keep the TLS config they were accepted with, requests the generation
//! they started in.

use crate::config::{self, Config};
use crate::error::EdgeError;
use crate::runtime::Runtime;
use crate::state::Shared;
use std::sync::Arc;

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

/// The edge's SVID is bound at start.
fn same_identity(shared: &Shared, new: &Config) -> Result<(), EdgeError> {
    let same = match &shared.identity {
        Some(identity) => identity.is(new.identity.as_ref()),
        None => new.identity.is_none(),
    };
    match same {
        true => Ok(()),
        false => Err(EdgeError::IdentityChanged),
    }
}

/// SIGHUP: re-read the config file and publish a new generation: routes, upstreams, headers,
/// WAF, listener certificates, and the `[protect]` settings (rate limits, connection caps,
/// shedding, slow-client and alert settings). Everything is built and checked before anything
/// changes, and all of it changes in the one store of the generation.
pub fn reload_config(shared: &Shared) -> Result<(), EdgeError> {
    shared.runtime.reload("config", |current| {
        let config = config::load(&shared.config_path)?;
        same_listeners(&current.config, &config)?;
        same_identity(shared, &config)?;
        for w in config::warnings(&config) {
            tracing::warn!("{w}");
        }
        let (next, tasks) = Runtime::next(
            config,
            shared.identity.as_ref(),
            Some(current),
            &shared.bound.listeners,
        )?;
        // Nothing can fail from here on: the generation is stored right after this closure
        // returns. The new settings' tasks (limiter sweeper, a new alerter's worker) run on the
        // control plane's runtime (reloads run on its blocking pool).
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => tasks.into_iter().for_each(|t| drop(handle.spawn(t))),
            Err(_) => tracing::warn!("reload outside a runtime: new protect workers not started"),
        }
        Ok::<_, EdgeError>(next)
    })?;
    if let Some(identity) = &shared.identity {
        identity.retain_used(&shared.runtime.load().config);
        // Certificates the new generation obtained from the CA report their expiry from the
        // moment they are served, not from the exporter's next tick.
        identity.export_expiry_now();
    }
    Ok(())
}

/// Certificate files changed on disk: the current generation with its listeners' certificates
/// read again.
pub fn reload_certs(shared: &Shared) -> Result<(), EdgeError> {
    shared.runtime.reload("certificates", |current| {
        let tls = crate::tls::build_listener_configs(&current.config, shared.identity.as_deref())?;
        Ok::<_, EdgeError>(current.with_tls(tls))
    })
}

/// Watches the certificate and key files (kernel notification on their directories, see
/// `rampart_ops::reload::watch_files`); reloads certificates when their content changes (a
/// failed reload is retried only when the files change again).
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
