//! Prometheus helpers: register a metric in one call, render a registry as text.
//!
//! Metric names, help texts and label names are constants written by us, so an invalid one is a
//! programming error: these helpers panic on it (any test that builds the metrics finds it). A
//! name registered twice in one registry is not exported twice; the second registration is
//! logged and the returned metric still counts (but is not scraped).

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The content type of [`render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    if let Err(e) = registry.register(Box::new(m.clone())) {
        tracing::warn!("metric not registered: {e}");
    }
    m
}

fn defined<T>(name: &str, m: prometheus::Result<T>) -> T {
    m.unwrap_or_else(|e| panic!("metric {name}: invalid definition: {e}"))
}

/// A counter with labels.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        defined(name, IntCounterVec::new(Opts::new(name, help), labels)),
    )
}

/// A counter without labels.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, defined(name, IntCounter::new(name, help)))
}

/// A gauge with labels.
pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        defined(name, IntGaugeVec::new(Opts::new(name, help), labels)),
    )
}

/// A gauge without labels.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, defined(name, IntGauge::new(name, help)))
}

/// A floating-point gauge without labels (seconds to a deadline, ratios).
pub fn gauge_f64(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, defined(name, Gauge::new(name, help)))
}

/// A histogram with labels and the given bucket bounds (seconds, bytes, ...).
pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    register(registry, defined(name, HistogramVec::new(opts, labels)))
}

/// A histogram without labels.
pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    register(registry, defined(name, Histogram::with_opts(opts)))
}

/// Latency buckets in seconds, 1 ms to 10 s.
pub fn latency_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// The registry in the Prometheus text format ([`TEXT_FORMAT`]).
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The status class label of an HTTP status: `1xx` … `5xx`, `none` otherwise.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_renders() {
        let r = Registry::new();
        let c = counter_vec(&r, "t_requests_total", "requests", &["route"]);
        c.with_label_values(&["a"]).inc();
        let g = gauge(&r, "t_open", "open");
        g.set(3);
        let text = render(&r);
        assert!(text.contains("t_requests_total{route=\"a\"} 1"), "{text}");
        assert!(text.contains("t_open 3"), "{text}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(0), "none");
    }
}
