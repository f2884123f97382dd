//! The sidecar's Prometheus metrics (docs/sidecar.md lists them), registered through
//! `rampart-ops`.

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Registry};
use rampart_ops::metrics::{counter, counter_vec, gauge, gauge_f64};
use rampart_ops::reload::ReloadLog;

use super::Ctx;
use crate::policy::{Decision, Verdict};

/// All metrics, registered once.
pub struct Metrics {
    registry: Registry,
    /// Connections by direction and result (allow, deny, audit_deny, error).
    pub connections: IntCounterVec,
    /// HTTP requests by direction and result.
    pub requests: IntCounterVec,
    /// Denials (and audit would-be denials) by direction, mode, reason and rule.
    pub denials: IntCounterVec,
    /// Failed handshakes by direction and reason.
    pub handshake_failures: IntCounterVec,
    /// Connections refused before the handshake by the connection caps, by reason.
    pub connections_refused: IntCounterVec,
    /// Inbound connections open now (admitted by the caps, until closed).
    pub inbound_open: IntGauge,
    /// Open connections closed because a new policy no longer allows them.
    pub closed_by_policy: IntCounterVec,
    /// Seconds until our certificate expires.
    pub cert_expiry: Gauge,
    /// Policy/directory/identity reloads by what and result (`rampart_ops` counts and logs).
    pub reloads: ReloadLog,
    /// Certificate renewals from the CA by result.
    pub renewals: IntCounterVec,
    /// Bytes relayed by direction and flow (from_peer, to_peer).
    pub bytes: IntCounterVec,
    /// Log lines dropped because the writer fell behind.
    pub log_lines_dropped: IntCounter,
}

const P: &str = "rampart_sidecar_";

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let name = |n: &str| format!("{P}{n}");
        Metrics {
            connections: counter_vec(
                &r,
                &name("connections_total"),
                "Connections by direction and result.",
                &["direction", "result"],
            ),
            requests: counter_vec(
                &r,
                &name("requests_total"),
                "HTTP requests by direction and result.",
                &["direction", "result"],
            ),
            denials: counter_vec(
                &r,
                &name("denials_total"),
                "Policy denials (mode=audit: would-be denials that passed) by direction, reason and rule.",
                &["direction", "mode", "reason", "rule"],
            ),
            handshake_failures: counter_vec(
                &r,
                &name("handshake_failures_total"),
                "Failed TLS handshakes and peer identity checks by direction and reason.",
                &["direction", "reason"],
            ),
            connections_refused: counter_vec(
                &r,
                &name("connections_refused_total"),
                "Inbound connections refused before the TLS handshake by a connection cap, by reason.",
                &["reason"],
            ),
            inbound_open: gauge(
                &r,
                &name("inbound_connections_open"),
                "Inbound connections open now (admitted by the connection caps).",
            ),
            closed_by_policy: counter_vec(
                &r,
                &name("closed_by_policy_total"),
                "Open connections closed after a reload because the new policy denies them.",
                &["direction"],
            ),
            reloads: ReloadLog::register(&r, &name("policy_reloads_total"), "rampart-sidecar"),
            renewals: counter_vec(
                &r,
                &name("certificate_renewals_total"),
                "Certificate renewals from the CA by result (ok, error).",
                &["result"],
            ),
            bytes: counter_vec(
                &r,
                &name("bytes_total"),
                "Bytes relayed by direction and flow.",
                &["direction", "flow"],
            ),
            cert_expiry: gauge_f64(
                &r,
                &name("certificate_expiry_seconds"),
                "Seconds until the sidecar's certificate expires (negative: expired).",
            ),
            log_lines_dropped: counter(
                &r,
                &name("log_lines_dropped_total"),
                "Log lines dropped because stdout fell behind.",
            ),
            registry: r,
        }
    }

    /// The registry the admin server renders.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        rampart_ops::metrics::render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a decision (connections or requests, plus denials by reason and rule).
pub(crate) fn count(ctx: &Ctx, direction: &str, unit: &str, d: &Decision) {
    let family = if unit == "request" {
        &ctx.metrics.requests
    } else {
        &ctx.metrics.connections
    };
    family
        .with_label_values(&[direction, d.verdict.as_str()])
        .inc();
    if d.verdict != Verdict::Allow {
        let mode = if d.verdict == Verdict::AuditDeny {
            "audit"
        } else {
            "enforce"
        };
        let reason = d.reason.as_ref().map(|r| r.label()).unwrap_or("unknown");
        let rule = d.rule.as_ref().map(|r| r.rule.as_ref()).unwrap_or("");
        ctx.metrics
            .denials
            .with_label_values(&[direction, mode, reason, rule])
            .inc();
    }
}
