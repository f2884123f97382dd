//! Prometheus metrics, registered once and shared by the proxy, TLS callbacks, reload and the
//! admin listener.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

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
    /// what (config, certificates), result (ok, error).
    pub reloads: IntCounterVec,
    pub access_log_dropped: IntCounter,
    /// upstream, endpoint: ejections by passive health.
    pub ejections: IntCounterVec,
    /// action (block, detect, pass), family (top rule family, `none` when nothing matched).
    pub waf_decisions: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let requests = counter(
            "rampart_requests_total",
            "Client requests by route and status class",
            &["route", "status_class"],
        );
        let upstream_errors = counter(
            "rampart_upstream_errors_total",
            "Upstream failures by kind",
            &["upstream", "kind"],
        );
        let tls_handshakes = counter(
            "rampart_tls_handshakes_total",
            "Completed downstream TLS handshakes by version",
            &["listener", "version"],
        );
        let tls_refused = counter(
            "rampart_tls_handshakes_refused_total",
            "Handshakes refused by the listener profile",
            &["listener", "reason"],
        );
        let reloads = counter(
            "rampart_config_reloads_total",
            "Reloads by what was reloaded and result",
            &["what", "result"],
        );
        let ejections = counter(
            "rampart_upstream_ejections_total",
            "Endpoints ejected by passive health checks",
            &["upstream", "endpoint"],
        );
        let waf_decisions = counter(
            "rampart_waf_decisions_total",
            "WAF decisions by action and the family of the highest-scoring rule",
            &["action", "family"],
        );
        let active_connections = gauge(
            "rampart_active_connections",
            "Open downstream connections (after the TLS handshake on TLS listeners)",
            &["listener"],
        );
        let active_requests = gauge(
            "rampart_active_requests",
            "Requests in flight",
            &["listener"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "rampart_request_duration_seconds",
                "Time from request to end of response",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("histogram: {e}"));
        let _ = registry.register(Box::new(duration.clone()));
        let access_log_dropped = IntCounter::new(
            "rampart_access_log_dropped_total",
            "Access log lines dropped because the writer queue was full",
        )
        .unwrap_or_else(|e| panic!("counter: {e}"));
        let _ = registry.register(Box::new(access_log_dropped.clone()));
        Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            tls_handshakes,
            tls_refused,
            active_connections,
            active_requests,
            reloads,
            access_log_dropped,
            ejections,
            waf_decisions,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}
