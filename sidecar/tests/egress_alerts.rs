//! deploy/prometheus/egress-alerts.yml names only metrics the sidecar exports, and only reason
//! codes the egress path reports. (`promtool check rules` and its unit tests,
//! egress-alerts.test.yml, run in sidecar/tests/alert_rules.rs with the sidecar's rules.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

#[test]
fn egress_rules_watch_exported_metrics_and_reasons() {
    let rules = std::fs::read_to_string(deploy().join("egress-alerts.yml")).unwrap();
    let metrics = rampart_sidecar::runtime::metrics::Metrics::new();
    metrics
        .denials
        .with_label_values(&["egress", "enforce", "no_rule", ""])
        .inc();
    let exported = metrics.render();
    assert!(exported.contains(
        "rampart_sidecar_denials_total{direction=\"egress\",mode=\"enforce\",reason=\"no_rule\",rule=\"\"} 1"
    ));
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("rampart_sidecar_") {
            assert!(
                exported.contains(word),
                "the rules name {word}, not exported"
            );
        }
    }
    // Every reason the rules select on is one the egress path reports.
    for reason in [
        "raw_ip_not_named",
        "connect_sni_mismatch",
        "host_mismatch",
        "address_refused",
        "dnssec_bogus",
        "resolver_unreachable",
        "resolver_failure",
        "dnssec_indeterminate",
        "gateway_unavailable",
        "unexpected_peer_identity",
    ] {
        assert!(rules.contains(reason), "{reason} not watched");
    }
    // Every reason the rules select on is one the egress path reports.
    let known: Vec<&str> = rampart_egress::decide::REASONS
        .iter()
        .chain(rampart_sidecar::runtime::egress::REASONS)
        .copied()
        .collect();
    for line in rules.lines().filter(|l| l.contains("reason=")) {
        let selector = line.split("reason=").nth(1).unwrap();
        let value = selector.trim_start_matches('~').split('"').nth(1).unwrap();
        for reason in value.split('|') {
            assert!(
                known.contains(&reason),
                "the rules select reason {reason}, which the egress path never reports"
            );
        }
    }
}
