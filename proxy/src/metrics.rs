//! Prometheus metrics, registered once and shared by the proxy, TLS callbacks, reload and the
//! admin listener.

use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};
use rampart_ops::reload::ReloadLog;
use std::sync::OnceLock;

#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// route, status class (2xx..5xx).
    pub requests: IntCounterVec,
    /// route.
    pub duration: HistogramVec,
    /// upstream, kind (connect_refused, connect_timeout, tls, read_timeout, ...).
    pub upstream_errors: IntCounterVec,
    /// listener, version.
    pub tls_handshakes: IntCounterVec,
    /// listener, reason: handshakes refused by the listener's profile.
    pub tls_refused: IntCounterVec,
    /// listener.
    pub active_connections: IntGaugeVec,
    /// listener.
    pub active_requests: IntGaugeVec,
    /// `rampart_config_reloads_total{what (config, certificates), result (ok, error)}`, and
    /// the log line of each reload.
    pub reloads: ReloadLog,
    pub access_log_dropped: IntCounter,
    /// upstream, endpoint: ejections by passive health.
    pub ejections: IntCounterVec,
    /// action (block, detect, pass), family (top rule family, `none` when nothing matched).
    pub waf_decisions: IntCounterVec,
    /// reason: malformed requests refused with 400 by their own reason (`space_in_target`,
    /// `bare_lf_in_chunk`, `malformed_host`, ...), so scanners and broken clients show apart
    /// from attacks (which `rampart_denials_total` counts with them as `bad_request`).
    pub malformed_requests: IntCounterVec,
    /// kind (`ip_address_sni`, `invalid_sni`, `duplicate_sni`): ClientHellos rustls warned
    /// about (see `tls::client_hello_log`: `control::server::prepare` hands it this counter).
    pub client_hello_warnings: IntCounterVec,
    /// spiffe_id: seconds until the edge's SVID (from the built-in CA) expires.
    pub identity_expiry: IntGaugeVec,
    /// names: seconds until a listener certificate from the built-in CA expires (it keeps
    /// being served while the CA is down; this is how close that gets to the end).
    pub ca_certificate_expiry: IntGaugeVec,
    /// upstream, reason: upstream mTLS connections refused because the peer's certificate
    /// failed the SPIFFE checks (not_allowed, revoked, foreign_trust_domain, ...).
    pub upstream_mtls_refused: IntCounterVec,
    /// route, cause (inspect_limit, waf_limits), action (refused, passed, detect): requests
    /// the WAF could not inspect whole.
    pub waf_uninspected: IntCounterVec,
    /// `rampart_waf_decisions_total{action="pass",family="none"}`, the decision of nearly every
    /// request, resolved on first use.
    waf_pass: OnceLock<IntCounter>,
}

impl Metrics {
    pub fn new() -> Self {
        use rampart_ops::metrics::{
            counter, counter_vec, gauge_vec, histogram_vec, latency_buckets,
        };
        let registry = Registry::new();
        let r = &registry;
        let client_hello_warnings = counter_vec(
            r,
            "rampart_tls_client_hello_warnings_total",
            "TLS ClientHellos with an unusable SNI (IP address, invalid or duplicate name), ignored",
            &["kind"],
        );
        Metrics {
            client_hello_warnings,
            requests: counter_vec(
                r,
                "rampart_requests_total",
                "Client requests by route and status class",
                &["route", "status_class"],
            ),
            duration: histogram_vec(
                r,
                "rampart_request_duration_seconds",
                "Time from request to end of response",
                &["route"],
                latency_buckets(),
            ),
            upstream_errors: counter_vec(
                r,
                "rampart_upstream_errors_total",
                "Upstream failures by kind",
                &["upstream", "kind"],
            ),
            tls_handshakes: counter_vec(
                r,
                "rampart_tls_handshakes_total",
                "Completed downstream TLS handshakes by version",
                &["listener", "version"],
            ),
            tls_refused: counter_vec(
                r,
                "rampart_tls_handshakes_refused_total",
                "Handshakes refused by the listener profile",
                &["listener", "reason"],
            ),
            active_connections: gauge_vec(
                r,
                "rampart_active_connections",
                "Open downstream connections (after the TLS handshake on TLS listeners)",
                &["listener"],
            ),
            active_requests: gauge_vec(
                r,
                "rampart_active_requests",
                "Requests in flight",
                &["listener"],
            ),
            reloads: ReloadLog::register(r, "rampart_config_reloads_total", "rampart-proxy"),
            access_log_dropped: counter(
                r,
                "rampart_access_log_dropped_total",
                "Access log lines dropped because the writer queue was full",
            ),
            ejections: counter_vec(
                r,
                "rampart_upstream_ejections_total",
                "Endpoints ejected by passive health checks",
                &["upstream", "endpoint"],
            ),
            waf_decisions: counter_vec(
                r,
                "rampart_waf_decisions_total",
                "WAF decisions by action and the family of the highest-scoring rule",
                &["action", "family"],
            ),
            malformed_requests: counter_vec(
                r,
                "rampart_malformed_requests_total",
                "Malformed requests refused (400) by reason",
                &["reason"],
            ),
            identity_expiry: gauge_vec(
                r,
                "rampart_identity_expiry_seconds",
                "Seconds until the edge's SVID from the built-in CA expires",
                &["spiffe_id"],
            ),
            ca_certificate_expiry: gauge_vec(
                r,
                "rampart_ca_certificate_expiry_seconds",
                "Seconds until a listener certificate from the built-in CA expires",
                &["names"],
            ),
            upstream_mtls_refused: counter_vec(
                r,
                "rampart_upstream_mtls_refused_total",
                "Upstream mTLS connections refused by the SPIFFE checks, by reason",
                &["upstream", "reason"],
            ),
            waf_uninspected: counter_vec(
                r,
                "rampart_waf_uninspected_total",
                "Requests the WAF could not inspect whole, by route, cause and what was done",
                &["route", "cause", "action"],
            ),
            waf_pass: OnceLock::new(),
            registry,
        }
    }

    /// Counts a WAF decision (`action`, family label).
    pub fn count_waf_decision(&self, action: &str, family: &str) {
        if action == "pass" && family == "none" {
            self.waf_pass
                .get_or_init(|| self.waf_decisions.with_label_values(&["pass", "none"]))
                .inc();
        } else {
            self.waf_decisions
                .with_label_values(&[action, family])
                .inc();
        }
    }

    /// Counts a refusal in `rampart_malformed_requests_total` when it is a malformed request.
    pub fn count_malformed(&self, denial: &rampart_protect::denial::Denial) {
        if denial.reason == rampart_protect::denial::DenialReason::BadRequest {
            self.malformed_requests
                .with_label_values(&[denial.label()])
                .inc();
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        rampart_ops::metrics::render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub use rampart_ops::metrics::status_class;

/// The status classes of `rampart_requests_total`, in the order of [`RouteMetrics`]' slots.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The slot of [`STATUS_CLASSES`] holding `status_class(status)`, from the number alone.
fn class_slot(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => STATUS_CLASSES.len() - 1,
    }
}

/// One route's series of `rampart_requests_total` (by status class) and
/// `rampart_request_duration_seconds`, each resolved on its first use and kept with the route:
/// a request counts through an atomic instead of hashing its labels. A series still appears in
/// the exposition only once something was counted in it, as with `with_label_values`.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    requests: [OnceLock<IntCounter>; STATUS_CLASSES.len()],
    duration: OnceLock<Histogram>,
}

impl RouteMetrics {
    /// Counts one request of `route` that ended with `status` after `seconds`.
    pub fn finish(&self, m: &Metrics, route: &str, status: u16, seconds: f64) {
        let slot = class_slot(status);
        self.requests[slot]
            .get_or_init(|| m.requests.with_label_values(&[route, STATUS_CLASSES[slot]]))
            .inc();
        self.duration
            .get_or_init(|| m.duration.with_label_values(&[route]))
            .observe(seconds);
    }
}

/// A listener's `rampart_active_requests` gauge, resolved on first use and kept with the
/// listener.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    active_requests: OnceLock<IntGauge>,
}

impl ListenerMetrics {
    pub fn active_requests(&self, m: &Metrics, listener: &str) -> &IntGauge {
        self.active_requests
            .get_or_init(|| m.active_requests.with_label_values(&[listener]))
    }
}

impl Clone for ListenerMetrics {
    /// A copy resolves its gauge again (the same series).
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_slot_is_the_status_class() {
        for status in 0..=u16::MAX {
            assert_eq!(
                STATUS_CLASSES[class_slot(status)],
                status_class(status),
                "{status}"
            );
        }
    }
}
