//! Reloads on SIGHUP and when a watched file changes (checked every second by size and
//! modification time): policy, directory, SVID and bundle. All or nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use super::generation::{self, Generation};
use super::log::Event;
use super::Ctx;

type Stamp = Vec<Option<(u64, SystemTime)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

/// Runs until the process ends.
pub async fn run(ctx: Arc<Ctx>, tx: Arc<watch::Sender<Arc<Generation>>>) {
    let mut files = vec![ctx.config.policy.clone(), ctx.config.directory.clone()];
    if let crate::config::IdentityConfig::Files {
        cert,
        key,
        bundle,
        revoked,
    } = &ctx.config.identity
    {
        files.extend([cert.clone(), key.clone(), bundle.clone()]);
        files.extend(revoked.clone());
    }
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            ctx.emit(
                Event::new("error").with("error.message", format!("cannot watch SIGHUP: {e}")),
            );
            None
        }
    };
    let mut last = stamp(&files);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let cause = tokio::select! {
            _ = tick.tick() => {
                let now = stamp(&files);
                if now == last { continue; }
                last = now;
                "file_changed"
            }
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                last = stamp(&files);
                "sighup"
            }
        };
        reload(&ctx, &tx, cause).await;
    }
}

async fn reload(ctx: &Ctx, tx: &watch::Sender<Arc<Generation>>, cause: &str) {
    let config = ctx.config.clone();
    let current = ctx.generation();
    let loaded = tokio::task::spawn_blocking(move || generation::reload(&config, &current)).await;
    let loaded = loaded.unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
    match loaded {
        Ok(next) => {
            let event = Event::new("reload")
                .with("rampart.reload.cause", cause)
                .with("rampart.reload.result", "ok")
                .with("rampart.policy.file", next.policy.version().file.clone())
                .with(
                    "rampart.policy.version",
                    next.policy.version().version.clone(),
                )
                .with("rampart.identity", next.tls.id.to_string());
            ctx.metrics.reloads.with_label_values(&["ok"]).inc();
            ctx.metrics.cert_expiry.set(next.tls.seconds_to_expiry());
            // Keep a certificate renewed while the files were read (CA mode).
            tx.send_modify(|g| {
                let tls = if matches!(
                    ctx.config.identity,
                    crate::config::IdentityConfig::Ca { .. }
                ) {
                    g.tls.clone()
                } else {
                    next.tls.clone()
                };
                *g = Arc::new(Generation {
                    policy: next.policy.clone(),
                    directory: next.directory.clone(),
                    tls,
                });
            });
            ctx.emit(event);
        }
        Err(why) => {
            ctx.metrics.reloads.with_label_values(&["error"]).inc();
            ctx.emit(
                Event::new("reload")
                    .with("rampart.reload.cause", cause)
                    .with("rampart.reload.result", "error")
                    .with(
                        "error.message",
                        format!("{why}; the running configuration stays"),
                    ),
            );
        }
    }
}
