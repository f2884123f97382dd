//! Reloads on SIGHUP and when a watched file's content changes (`rampart-ops`'s reload driver:
//! kernel notification on the files' directories, so a rename into place and a Kubernetes
//! ConfigMap/Secret `..data` swap are seen; nothing runs while nothing changes): policy,
//! directory, SVID, bundle and deny-list. All or nothing: one new [`Generation`] is built and swapped in, or the running one stays and the
//! refusal is logged and counted (`rampart_sidecar_policy_reloads_total{result="error"}`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_ops::reload::{on_signal, watch_files, WatchTiming};
use tokio::signal::unix::{signal, SignalKind};

use super::generation::Generation;
use super::log::Event;
use super::Ctx;
use crate::config::Config;
use crate::mtls::SvidFiles;

/// How long a change is left to settle (a certificate and its key written one after the other
/// are read together), and how often the files are read if the kernel cannot notify.
const WATCH: WatchTiming = WatchTiming {
    settle: Duration::from_millis(150),
    fallback_poll: Duration::from_secs(5),
    list_check: Duration::from_secs(5),
};

/// The files a reload reads.
fn files(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.policy.clone(), config.directory.clone()];
    if let Some(svid) = SvidFiles::of(&config.identity) {
        files.extend([svid.cert, svid.key, svid.bundle].map(PathBuf::from));
        files.extend(svid.revoked.map(PathBuf::from));
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
    // Identity from the CA: its renewals publish the TLS configs and a file reload leaves them.
    let result = ctx.generations.reload("policy", |_current| {
        let next = Generation::load(&ctx.config)?;
        let svid = SvidFiles::of(&ctx.config.identity);
        let staged = svid
            .and_then(|files| ctx.tls.stage_files(&files))
            .transpose();
        // Everything is read and checked: the SVID, bundle and deny-list go live now, just
        // before the rules (open connections re-check their caller on the new generation).
        if let Some(staged) = staged.map_err(|e| e.to_string())? {
            staged.publish().map_err(|e| e.to_string())?;
        }
        next_event = Some(
            Event::new("reload")
                .with("rampart.policy.file", next.policy.version().file.clone())
                .with(
                    "rampart.policy.version",
                    next.policy.version().version.clone(),
                )
                .with("rampart.identity", ctx.tls.id().to_string()),
        );
        ctx.metrics.cert_expiry.set(ctx.tls.seconds_to_expiry());
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
