#![allow(clippy::unwrap_used, clippy::expect_used)]
//! deploy/prometheus/pki-alerts.yml: valid (promtool check), behaving as
//! intended (promtool test rules), and naming only metrics the CA exports.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .current_dir(rules_dir())
        .args(args)
        .output()
        .expect("promtool is needed (apt install prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_are_valid_and_their_unit_tests_pass() {
    promtool(&["check", "rules", "pki-alerts.yml"]);
    promtool(&["test", "rules", "pki-alerts.test.yml"]);
}

#[tokio::test]
async fn every_metric_in_the_rules_is_exported() {
    let rules = std::fs::read_to_string(rules_dir().join("pki-alerts.yml")).unwrap();
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("rampart_pki_"))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 5, "{names:?}");
    let (_dir, running) = common::serving("").await;
    let text = running.service.metrics_text();
    for n in names {
        assert!(
            text.lines().any(|l| l.starts_with(n)),
            "{n} is not exported:\n{text}"
        );
    }
    running.shutdown().await;
}
