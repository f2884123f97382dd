#![allow(clippy::unwrap_used, clippy::expect_used)]
//! deploy/prometheus/pki-alerts.yml: valid (promtool check), behaving as
//! intended (promtool test rules), and naming only metrics the CA exports.

mod common;

use rampart_ops::testing::AlertRules;

fn rules() -> AlertRules {
    AlertRules::new(env!("CARGO_MANIFEST_DIR"), "pki-alerts.yml")
}

#[test]
fn rules_are_valid_and_their_unit_tests_pass() {
    let rules = rules();
    rules.promtool(&["check", "rules", "pki-alerts.yml"]);
    rules.promtool(&["test", "rules", "pki-alerts.test.yml"]);
}

#[tokio::test]
async fn every_metric_in_the_rules_is_exported() {
    let (_dir, running) = common::serving("").await;
    rules().assert_exported("rampart_pki_", &running.service.metrics_text(), 5);
    running.shutdown().await;
}
