//! deploy/prometheus/sidecar-alerts.yml is valid, its promtool unit tests pass (each alert
//! fires on the series it is meant for), and every metric it names is one the sidecar exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(deploy())
        .output()
        .expect(
            "promtool not found: install the Debian package `prometheus` (scripts/ensure-deps.sh)",
        )
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    for args in [
        &["check", "rules", "sidecar-alerts.yml"][..],
        &["test", "rules", "sidecar-alerts.test.yml"][..],
        // The egress path's rules (sidecar/tests/egress_alerts.rs checks their metrics).
        &["check", "rules", "egress-alerts.yml"][..],
        &["test", "rules", "egress-alerts.test.yml"][..],
    ] {
        let out = promtool(args);
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rules_watch_exported_metrics() {
    let rules = std::fs::read_to_string(deploy().join("sidecar-alerts.yml")).unwrap();
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
    let exported = metrics.render();
    let mut named = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("rampart_sidecar_") {
            named += 1;
            assert!(
                exported.contains(&format!("\n{word}")) || exported.starts_with(word),
                "alert rule names {word}, which the sidecar does not export"
            );
        }
    }
    assert!(named >= 6, "only {named} metric names found in the rules");
}
