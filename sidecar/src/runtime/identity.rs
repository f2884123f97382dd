//! Identity from the Rampart CA (`[identity] ca = …`): bootstrap with a join token (or resume
//! from `state_dir`), renew at 2/3 of the lifetime, refresh the trust bundle — all done by
//! `rampart-identity`'s `SvidSource`. The source publishes each new SVID through its
//! `MeshConfigs` ([`crate::mtls::MeshTls`]): new handshakes take it, open connections keep
//! theirs. While the CA is down the current certificate is
//! served and each failed renewal is logged and counted; after expiry the sidecar fails closed.

use std::sync::Arc;
use std::time::Duration;

use rampart_identity::{SourceSettings, SvidSource};

use super::generation::Generation;
use super::log::Event;
use super::Ctx;
use crate::config::IdentityConfig;
use crate::mtls;

/// Starts the source (bootstrap or resume). `Err` is a message for the operator.
pub async fn start(identity: &IdentityConfig) -> Result<Option<Arc<SvidSource>>, String> {
    let IdentityConfig::Ca {
        endpoint,
        spiffe_id,
        bundle,
        token_file,
        state_dir,
        ttl_secs,
    } = identity
    else {
        return Ok(None);
    };
    let roots = mtls::read_certs(bundle).map_err(|e| e.to_string())?;
    let endpoint =
        rampart_identity::CaEndpoint::parse(endpoint).map_err(|e| format!("identity.ca: {e}"))?;
    let mut settings = SourceSettings::new(endpoint, spiffe_id.clone());
    settings.ttl = ttl_secs.map(Duration::from_secs);
    settings.state_dir = state_dir.clone();
    settings.mesh = mtls::mesh_options();
    let token = match token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    if let Some(dir) = state_dir {
        // The SVID's key is kept here: the folder is ours alone.
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("identity.state_dir {}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| format!("identity.state_dir {}: {e}", dir.display()))?;
    }
    let source = SvidSource::resume_or_bootstrap(settings, roots, token.as_deref())
        .await
        .map_err(|e| format!("identity from the CA: {e}"))?;
    Ok(Some(source))
}

/// Follows renewals until the process ends.
pub async fn follow(ctx: Arc<Ctx>, source: Arc<SvidSource>) {
    let _renewer = source.spawn();
    let mut status = source.status();
    let mut served = source.identity().not_after;
    loop {
        if status.changed().await.is_err() {
            return;
        }
        let s = status.borrow_and_update().clone();
        if let Some(err) = &s.last_error {
            ctx.metrics.renewals.with_label_values(&["error"]).inc();
            ctx.emit(
                Event::new("renewal_failed")
                    .with("rampart.identity", s.spiffe_id.to_string())
                    .with("rampart.certificate.expiry_seconds", s.seconds_to_expiry())
                    .with(
                        "rampart.renewal.consecutive_failures",
                        s.consecutive_failures,
                    )
                    .with(
                        "error.message",
                        format!("{err}; serving the current certificate until it expires"),
                    ),
            );
            continue;
        }
        if s.not_after == served {
            continue;
        }
        served = s.not_after;
        ctx.metrics.renewals.with_label_values(&["ok"]).inc();
        ctx.metrics.cert_expiry.set(s.seconds_to_expiry());
        // The renewal also brought the CA's bundle and deny-list: open connections re-check
        // their caller against it on a new generation (the rules themselves are unchanged).
        let c = ctx.clone();
        // Off the async workers: a file reload may hold the writer's turn briefly.
        let _ = tokio::task::spawn_blocking(move || c.generations.update(Generation::clone)).await;
        ctx.emit(
            Event::new("certificate_renewed")
                .with("rampart.identity", s.spiffe_id.to_string())
                .with("rampart.certificate.expiry_seconds", s.seconds_to_expiry())
                .with("rampart.renewals", s.renewals),
        );
    }
}
