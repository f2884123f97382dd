#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Prometheus alert rules in deploy/ are valid (`promtool check rules`) and
//! watch the metrics the proxy actually exports.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/rampart-alerts.yml")
}

fn promtool_check(path: &Path) -> std::process::Output {
    Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(path)
        .output()
        .expect(
            "promtool not found: install the Debian package `prometheus` (scripts/ensure-deps.sh)",
        )
}

#[test]
fn alert_rules_pass_promtool() {
    let out = promtool_check(&rules_file());
    assert!(
        out.status.success(),
        "promtool rejected the rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert!(!promtool_check(&bad).status.success());
}

#[test]
fn alert_rules_watch_exported_metrics() {
    let text = std::fs::read_to_string(rules_file()).unwrap();
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
    let text = std::fs::read_to_string(rules_file()).unwrap();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("rampart_") {
            assert!(
                exported.contains(&word),
                "rules use `{word}`, which the proxy does not export"
            );
        }
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
