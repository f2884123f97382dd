//! Prometheus metrics of the CA service.

use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
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
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let issued = IntCounterVec::new(
            Opts::new(
                "rampart_pki_certificates_issued_total",
                "Certificates issued",
            ),
            &["kind"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "rampart_pki_certificates_refused_total",
                "Issuance requests refused",
            ),
            &["reason"],
        )?;
        let ca_expiry = GaugeVec::new(
            Opts::new(
                "rampart_pki_ca_seconds_to_expiry",
                "Seconds until a CA certificate expires",
            ),
            &["ca", "serial"],
        )?;
        let audit_breaks = IntCounter::new(
            "rampart_pki_audit_chain_breaks_total",
            "Audit hash-chain breaks found since start (each sealed the log)",
        )?;
        let audit_restarts = IntCounter::new(
            "rampart_pki_audit_chain_restarts_total",
            "Audit logs sealed and restarted since start",
        )?;
        let audit_verified = IntGauge::new(
            "rampart_pki_audit_chain_verified",
            "1: the last full audit verification passed; 0: it failed; 2: none yet",
        )?;
        let audit_records = IntCounter::new(
            "rampart_pki_audit_records_written_total",
            "Audit records written (fsynced) by this process",
        )?;
        for c in [&audit_breaks, &audit_restarts, &audit_records] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(audit_verified.clone()))?;
        let live_workloads = IntGaugeVec::new(
            Opts::new(
                "rampart_pki_live_workloads",
                "Workloads holding an unexpired leaf, by the root it chains to",
            ),
            &["root"],
        )?;
        registry.register(Box::new(live_workloads.clone()))?;
        let workloads_on_old_root = IntGauge::new(
            "rampart_pki_workloads_on_old_root",
            "During a root rotation: live workloads whose newest leaf still chains to the old root",
        )?;
        registry.register(Box::new(workloads_on_old_root.clone()))?;
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "rampart_pki_connections_closed_total",
                "Connections closed by the CA before an answer (caps and deadlines)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(connections_closed.clone()))?;
        let revoked = IntGaugeVec::new(
            Opts::new(
                "rampart_pki_revoked_entries",
                "Entries on the revocation deny-list published with the bundle",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(revoked.clone()))?;
        let rotations = IntCounterVec::new(
            Opts::new("rampart_pki_rotations_total", "CA rotation steps done"),
            &["event"],
        )?;
        registry.register(Box::new(rotations.clone()))?;
        let rotation_failures = IntCounter::new(
            "rampart_pki_rotation_failures_total",
            "CA rotation steps that failed (retried at the next check)",
        )?;
        registry.register(Box::new(rotation_failures.clone()))?;
        registry.register(Box::new(issued.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(ca_expiry.clone()))?;
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
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
