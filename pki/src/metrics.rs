//! Prometheus metrics of the CA service.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use time::OffsetDateTime;

/// The CA's metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Certificates issued, by kind (`bootstrap`, `renew`, `edge`, `server`).
    pub issued: IntCounterVec,
    /// Requests refused, by reason (see `PkiError::reason`).
    pub refused: IntCounterVec,
    /// Seconds until each CA certificate expires.
    pub ca_expiry: GaugeVec,
    /// CA rotations done, by event (`intermediate_rotated`,
    /// `root_introduced`, `root_activated`, `root_retired`).
    pub rotations: IntCounterVec,
    /// Rotation steps that failed (retried at the next check).
    pub rotation_failures: IntCounter,
    /// Entries on the revocation deny-list, by kind (`id`, `serial`).
    pub revoked: IntGaugeVec,
    /// Connections closed before a request was answered, by reason
    /// (`per_ip_cap`, `global_cap`, `handshake_timeout`, `request_timeout`).
    pub connections_closed: IntCounterVec,
    /// Audit chain breaks found since start.
    pub audit_breaks: IntCounter,
    /// Audit logs sealed and restarted since start.
    pub audit_restarts: IntCounter,
    /// 1 when the last full audit verification passed, 0 when it failed,
    /// 2 while none has completed.
    pub audit_verified: IntGauge,
    /// Audit records written by this process.
    pub audit_records: IntCounter,
    /// Live workloads (unexpired newest leaf), by the root their leaf
    /// chains to.
    pub live_workloads: IntGaugeVec,
    /// During a root rotation: live workloads whose newest leaf still
    /// chains to the old root (0 otherwise).
    pub workloads_on_old_root: IntGauge,
    /// Kubernetes JWKS refreshes, by result (`ok`, `unchanged`, `failed`);
    /// a failed one keeps the last good key set.
    pub jwks_refreshes: IntCounterVec,
    /// Keys in the Kubernetes JWKS in use.
    pub jwks_keys: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        use rampart_ops::metrics::{counter, counter_vec, gauge, gauge_vec};
        let registry = Registry::new();
        let r = &registry;
        let ca_expiry = GaugeVec::new(
            Opts::new(
                "rampart_pki_ca_seconds_to_expiry",
                "Seconds until a CA certificate expires",
            ),
            &["ca", "serial"],
        )?;
        registry.register(Box::new(ca_expiry.clone()))?;
        let [issued, refused, connections_closed, jwks_refreshes, rotations] = [
            (
                "rampart_pki_certificates_issued_total",
                "Certificates issued",
                "kind",
            ),
            (
                "rampart_pki_certificates_refused_total",
                "Issuance requests refused",
                "reason",
            ),
            (
                "rampart_pki_connections_closed_total",
                "Connections closed by the CA before an answer (caps and deadlines)",
                "reason",
            ),
            (
                "rampart_pki_jwks_refreshes_total",
                "Kubernetes JWKS refreshes by result (failed: the last good key set stays)",
                "result",
            ),
            (
                "rampart_pki_rotations_total",
                "CA rotation steps done",
                "event",
            ),
        ]
        .map(|(name, help, label)| counter_vec(r, name, help, &[label]));
        let [live_workloads, revoked] = [
            (
                "rampart_pki_live_workloads",
                "Workloads holding an unexpired leaf, by the root it chains to",
                "root",
            ),
            (
                "rampart_pki_revoked_entries",
                "Entries on the revocation deny-list published with the bundle",
                "kind",
            ),
        ]
        .map(|(name, help, label)| gauge_vec(r, name, help, &[label]));
        let [audit_breaks, audit_restarts, audit_records, rotation_failures] = [
            (
                "rampart_pki_audit_chain_breaks_total",
                "Audit hash-chain breaks found since start (each sealed the log)",
            ),
            (
                "rampart_pki_audit_chain_restarts_total",
                "Audit logs sealed and restarted since start",
            ),
            (
                "rampart_pki_audit_records_written_total",
                "Audit records written (fsynced) by this process",
            ),
            (
                "rampart_pki_rotation_failures_total",
                "CA rotation steps that failed (retried at the next check)",
            ),
        ]
        .map(|(name, help)| counter(r, name, help));
        let [audit_verified, workloads_on_old_root, jwks_keys] = [
            ("rampart_pki_audit_chain_verified", "1: the last full audit verification passed; 0: it failed; 2: none yet"),
            ("rampart_pki_workloads_on_old_root", "During a root rotation: live workloads whose newest leaf still chains to the old root"),
            ("rampart_pki_jwks_keys", "Keys in the Kubernetes JWKS in use"),
        ]
        .map(|(name, help)| gauge(r, name, help));
        // Every label value alerts look at exists from the start (0), so a
        // rate() over it is defined before the first event.
        for r in [
            "per_ip_cap",
            "global_cap",
            "handshake_timeout",
            "request_timeout",
        ] {
            connections_closed.with_label_values(&[r]);
        }
        for e in [
            "intermediate_rotated",
            "root_introduced",
            "root_activated",
            "root_retired",
        ] {
            rotations.with_label_values(&[e]);
        }
        for k in ["id", "serial"] {
            revoked.with_label_values(&[k]);
        }
        for k in ["ok", "unchanged", "failed"] {
            jwks_refreshes.with_label_values(&[k]);
        }
        Ok(Metrics {
            registry,
            issued,
            refused,
            ca_expiry,
            connections_closed,
            revoked,
            rotations,
            rotation_failures,
            audit_breaks,
            audit_restarts,
            audit_verified,
            audit_records,
            jwks_refreshes,
            jwks_keys,
            live_workloads,
            workloads_on_old_root,
        })
    }

    /// Replaces the CA expiry gauges with the current CA certificates.
    pub fn set_ca_expiry(&self, cas: &[(&str, &str, OffsetDateTime)]) {
        self.ca_expiry.reset();
        let now = OffsetDateTime::now_utc();
        for (kind, serial, not_after) in cas {
            self.ca_expiry
                .with_label_values(&[kind, serial])
                .set((*not_after - now).as_seconds_f64());
        }
    }

    /// Counts a connection closed before an answer (`per_ip_cap`,
    /// `global_cap`, `handshake_timeout`, `request_timeout`).
    pub fn connection_closed(&self, reason: &str) {
        self.connections_closed.with_label_values(&[reason]).inc();
    }

    /// Copies the audit chain's health into the gauges.
    pub fn set_audit(&self, h: &crate::audit::ChainHealth) {
        use std::sync::atomic::Ordering::Relaxed;
        let up = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        up(&self.audit_breaks, h.breaks.load(Relaxed));
        up(&self.audit_restarts, h.restarts.load(Relaxed));
        up(&self.audit_records, h.records.load(Relaxed));
        self.audit_verified
            .set(i64::try_from(h.verified.load(Relaxed)).unwrap_or(0));
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        rampart_ops::metrics::render(&self.registry)
    }
}
