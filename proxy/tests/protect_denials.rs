#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every denial reason flows to its three sinks: the Prometheus counter, the
//! JSON event line, and (at its threshold) one webhook POST to a real local
//! HTTP listener.

use rampart_protect::alert::testing::webhook_receiver as webhook;
use rampart_protect::alert::{self, AlertConfig, AlertRule};
use rampart_protect::denial::{Denial, DenialReason};
use rampart_protect::report::Denials;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn every_reason_is_counted_logged_and_alerted() {
    let (url, mut rx) = webhook().await;
    let config = AlertConfig {
        webhook_url: Some(url),
        default_rule: AlertRule {
            threshold: 2,
            window_secs: 60,
            cooldown_secs: 600,
        },
        ..AlertConfig::default()
    };
    let (alerts, _worker) = alert::spawn(&config).unwrap();
    let registry = prometheus::Registry::new();
    let denials = Denials::fixed(&registry, ["api".to_string()], Some(alerts)).unwrap();

    for reason in DenialReason::ALL {
        for _ in 0..2 {
            let denial = Denial::new(reason)
                .route("api")
                .client("127.0.0.9:5000".parse().unwrap())
                .detail("test");
            denials.record(&denial);
            let line: serde_json::Value = serde_json::from_str(&denial.event_line()).unwrap();
            assert_eq!(line["rampart.denial.reason"], reason.as_str());
            assert_eq!(line["rampart.denial.route"], "api");
        }
        assert_eq!(denials.count(reason, "api", "none"), 2, "{reason}");
    }

    let mut alerted = BTreeSet::new();
    while alerted.len() < DenialReason::ALL.len() {
        let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("missing webhook calls")
            .unwrap();
        assert_eq!(body["alert"], "rampart_denials");
        assert_eq!(body["denials"], 2);
        assert_eq!(body["routes"]["api"], 2);
        assert!(
            alerted.insert(body["reason"].as_str().unwrap().to_string()),
            "duplicate alert"
        );
    }
    let expected: BTreeSet<String> = DenialReason::ALL
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    assert_eq!(alerted, expected);
}
