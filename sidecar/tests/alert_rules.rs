//! deploy/prometheus/sidecar-alerts.yml is valid, its promtool unit tests pass (each alert
//! fires on the series it is meant for), and every metric it names is one the sidecar exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_ops::testing::AlertRules;

fn rules() -> AlertRules {
    AlertRules::new(env!("CARGO_MANIFEST_DIR"), "sidecar-alerts.yml")
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let rules = rules();
    rules.promtool(&["check", "rules", "sidecar-alerts.yml"]);
    rules.promtool(&["test", "rules", "sidecar-alerts.test.yml"]);
    // The egress path's rules (sidecar/tests/egress_alerts.rs checks their metrics).
    rules.promtool(&["check", "rules", "egress-alerts.yml"]);
    rules.promtool(&["test", "rules", "egress-alerts.test.yml"]);
}

#[test]
fn rules_watch_exported_metrics() {
    let metrics = rampart_sidecar::runtime::metrics::Metrics::new();
    // Touch one child of every vector so it appears in the exposition.
    metrics
        .denials
        .with_label_values(&["inbound", "enforce", "caller", "r"])
        .inc();
    metrics
        .handshake_failures
        .with_label_values(&["inbound", "unknown_ca"])
        .inc();
    metrics
        .reloads
        .record("policy", &Err::<(), _>("test: a refused reload"));
    metrics.renewals.with_label_values(&["error"]).inc();
    rules().assert_exported("rampart_sidecar_", &metrics.render(), 5);
}
