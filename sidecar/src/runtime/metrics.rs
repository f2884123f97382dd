//! The sidecar's Prometheus metrics (docs/sidecar.md lists them).

use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

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
    /// Open connections closed because a new policy no longer allows them.
    pub closed_by_policy: IntCounterVec,
    /// Seconds until our certificate expires.
    pub cert_expiry: Gauge,
    /// Policy/directory/identity reloads by result.
    pub reloads: IntCounterVec,
    /// Certificate renewals from the CA by result.
    pub renewals: IntCounterVec,
    /// Bytes relayed by direction and flow (from_peer, to_peer).
    pub bytes: IntCounterVec,
    /// Log lines dropped because the writer fell behind.
    pub log_lines_dropped: IntCounter,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(c.clone()));
    c
}

#[cold]
fn unreachable_metric() -> IntCounterVec {
    // Names and labels are constants checked by the tests; this keeps the type checker happy
    // without a panic path.
    IntCounterVec::new(Opts::new("rampart_sidecar_invalid", "invalid"), &["x"])
        .unwrap_or_else(|_| std::process::abort())
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let p = "rampart_sidecar_";
        let connections = counter_vec(
            &registry,
            &format!("{p}connections_total"),
            "Connections by direction and result.",
            &["direction", "result"],
        );
        let requests = counter_vec(
            &registry,
            &format!("{p}requests_total"),
            "HTTP requests by direction and result.",
            &["direction", "result"],
        );
        let denials = counter_vec(&registry, &format!("{p}denials_total"), "Policy denials (mode=audit: would-be denials that passed) by direction, reason and rule.", &["direction", "mode", "reason", "rule"]);
        let handshake_failures = counter_vec(
            &registry,
            &format!("{p}handshake_failures_total"),
            "Failed TLS handshakes and peer identity checks by direction and reason.",
            &["direction", "reason"],
        );
        let closed_by_policy = counter_vec(
            &registry,
            &format!("{p}closed_by_policy_total"),
            "Open connections closed after a reload because the new policy denies them.",
            &["direction"],
        );
        let reloads = counter_vec(
            &registry,
            &format!("{p}policy_reloads_total"),
            "Reloads of policy, directory and identity files by result (ok, error).",
            &["result"],
        );
        let renewals = counter_vec(
            &registry,
            &format!("{p}certificate_renewals_total"),
            "Certificate renewals from the CA by result (ok, error).",
            &["result"],
        );
        let bytes = counter_vec(
            &registry,
            &format!("{p}bytes_total"),
            "Bytes relayed by direction and flow.",
            &["direction", "flow"],
        );
        let cert_expiry = Gauge::new(
            format!("{p}certificate_expiry_seconds"),
            "Seconds until the sidecar's certificate expires (negative: expired).",
        )
        .unwrap_or_else(|_| {
            Gauge::with_opts(Opts::new("rampart_sidecar_invalid_gauge", "invalid"))
                .unwrap_or_else(|_| std::process::abort())
        });
        let _ = registry.register(Box::new(cert_expiry.clone()));
        let log_lines_dropped = IntCounter::new(
            format!("{p}log_lines_dropped_total"),
            "Log lines dropped because stdout fell behind.",
        )
        .unwrap_or_else(|_| std::process::abort());
        let _ = registry.register(Box::new(log_lines_dropped.clone()));
        Metrics {
            registry,
            connections,
            requests,
            denials,
            handshake_failures,
            closed_by_policy,
            cert_expiry,
            reloads,
            renewals,
            bytes,
            log_lines_dropped,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
