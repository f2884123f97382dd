#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Prometheus alert rules in deploy/ are valid (`promtool check rules`) and
//! watch the metrics the proxy actually exports.

use rampart_ops::testing::AlertRules;

fn rules() -> AlertRules {
    AlertRules::new(env!("CARGO_MANIFEST_DIR"), "rampart-alerts.yml")
}

#[test]
fn alert_rules_pass_promtool() {
    rules().promtool(&["check", "rules", "rampart-alerts.yml"]);
}

#[test]
fn promtool_rejects_a_broken_rule() {
    // Proves the check above can fail: a rule with a PromQL syntax error.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: x\n    rules:\n      - alert: Bad\n        expr: sum(rate(x[5m]) >\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    // promtool itself must run (a missing promtool panics here, not inside the catch below).
    rules().promtool(&["--version"]);
    let checked = std::panic::catch_unwind(|| rules().promtool(&["check", "rules", bad]));
    assert!(checked.is_err(), "promtool accepted a broken rule");
}

#[test]
fn alert_rules_watch_exported_metrics() {
    let rules = rules();
    let text = rules.text();
    use rampart_protect::{redis_limit, report};
    for metric in [report::DENIALS_METRIC, redis_limit::FALLBACK_METRIC] {
        assert!(text.contains(metric), "rules do not watch {metric}");
    }
    for reason in ["waf_block", "conn_cap_per_ip", "load_shed"] {
        assert!(
            text.contains(reason),
            "rules do not mention reason {reason}"
        );
    }
}

#[test]
fn alert_rules_only_use_metrics_the_proxy_exports() {
    // Names registered by proxy/src/metrics.rs, rampart_protect::report and rampart_protect::redis_limit.
    let exported = [
        "rampart_requests_total",
        "rampart_request_duration_seconds",
        "rampart_upstream_errors_total",
        "rampart_upstream_ejections_total",
        "rampart_tls_handshakes_total",
        "rampart_tls_handshakes_refused_total",
        "rampart_active_connections",
        "rampart_active_requests",
        "rampart_config_reloads_total",
        "rampart_access_log_dropped_total",
        "rampart_waf_decisions_total",
        rampart_protect::report::DENIALS_METRIC,
        rampart_protect::redis_limit::FALLBACK_METRIC,
    ];
    for word in rules().metric_names("rampart_") {
        assert!(
            exported.contains(&word),
            "rules use `{word}`, which the proxy does not export"
        );
    }
    let m = rampart_proxy::metrics::Metrics::new();
    m.waf_decisions.with_label_values(&["block", "sqli"]).inc();
    m.upstream_errors
        .with_label_values(&["app", "connect_refused"])
        .inc();
    m.requests.with_label_values(&["app", "2xx"]).inc();
    let rendered = m.render();
    for name in [
        "rampart_waf_decisions_total",
        "rampart_upstream_errors_total",
        "rampart_requests_total",
    ] {
        assert!(rendered.contains(name), "{name} not rendered");
    }
}
