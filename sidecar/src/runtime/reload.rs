//! Reloads on SIGHUP and when a watched file's content changes (`rampart-ops`'s reload driver:
//! fingerprints polled every half second): policy, directory, SVID, bundle and deny-list. All or
//! nothing: one new [`Generation`] is built and swapped in, or the running one stays and the
//! refusal is logged and counted (`rampart_sidecar_policy_reloads_total{result="error"}`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_ops::reload::{on_signal, watch_files, WatchTiming};
use tokio::signal::unix::{signal, SignalKind};

use super::generation::{self, Generation};
use super::log::Event;
use super::Ctx;
use crate::config::{Config, IdentityConfig};

/// How often the files are looked at, and how long a change is left to settle (a certificate
/// and its key written one after the other are read together).
const WATCH: WatchTiming = WatchTiming {
    every: Duration::from_millis(500),
    settle: Duration::from_millis(150),
};

/// The files a reload reads.
fn files(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.policy.clone(), config.directory.clone()];
    if let IdentityConfig::Files {
        cert,
        key,
        bundle,
        revoked,
    } = &config.identity
    {
        files.extend([cert.clone(), key.clone(), bundle.clone()]);
        files.extend(revoked.clone());
    }
    files
}

/// Starts both triggers (SIGHUP and the file watch); they run until the process ends.
pub fn start(ctx: &Arc<Ctx>) {
    match signal(SignalKind::hangup()) {
        Ok(hup) => {
            let c = ctx.clone();
            tokio::spawn(on_signal(hup, move || {
                reload(&c, "sighup");
            }));
        }
        Err(e) => {
            ctx.emit(Event::new("error").with("error.message", format!("cannot watch SIGHUP: {e}")))
        }
    }
    let listed = files(&ctx.config);
    let c = ctx.clone();
    tokio::spawn(watch_files(
        move || listed.clone(),
        WATCH,
        move || reload(&c, "file_changed"),
    ));
}

/// One reload (blocking: runs on tokio's blocking pool); true when the new generation is live.
fn reload(ctx: &Ctx, cause: &str) -> bool {
    let mut next_event = None;
    // Identity from the CA: its renewals own the TLS part and a file reload keeps the live one
    // (the writers take turns, so a renewal is never lost to a reload built before it).
    let result = ctx.generations.reload("policy", |current| {
        let next = generation::reload(&ctx.config, current)?;
        next_event = Some(
            Event::new("reload")
                .with("rampart.policy.file", next.policy.version().file.clone())
                .with(
                    "rampart.policy.version",
                    next.policy.version().version.clone(),
                )
                .with("rampart.identity", next.tls.id.to_string()),
        );
        ctx.metrics.cert_expiry.set(next.tls.seconds_to_expiry());
        Ok::<Generation, String>(next)
    });
    let event = match (&result, next_event) {
        (Ok(()), Some(event)) => event.with("rampart.reload.result", "ok"),
        (_, _) => Event::new("reload")
            .with("rampart.reload.result", "error")
            .with(
                "error.message",
                format!(
                    "{}; the running configuration stays",
                    result
                        .as_ref()
                        .err()
                        .map_or("reload failed", |e| e.as_str())
                ),
            ),
    };
    ctx.emit(event.with("rampart.reload.cause", cause));
    result.is_ok()
}
