//! Alerter tests against a real HTTP listener on loopback.

use super::testing::webhook_receiver as webhook_server;
use super::*;

async fn next(rx: &mut mpsc::UnboundedReceiver<serde_json::Value>) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no webhook call within 5 s")
        .unwrap()
}

fn config(url: &str, cooldown_secs: u64) -> AlertConfig {
    let mut c = AlertConfig {
        webhook_url: Some(url.to_string()),
        ..AlertConfig::default()
    };
    c.rules.insert(
        "rate_limit".into(),
        AlertRule {
            threshold: 5,
            window_secs: 60,
            cooldown_secs,
        },
    );
    c
}

/// Waits until the worker has handled everything sent so far.
async fn settle(handle: &AlertHandle) {
    for _ in 0..500 {
        if handle.tx.capacity() == handle.tx.max_capacity() {
            tokio::task::yield_now().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("alert queue never drained");
}

#[tokio::test]
async fn fires_at_threshold_dedups_in_cooldown_and_fires_again_after() {
    let (url, mut rx) = webhook_server().await;
    let (handle, _task) = spawn(&config(&url, 1)).unwrap();

    for _ in 0..4 {
        handle.observe(DenialReason::RateLimit, "api");
    }
    settle(&handle).await;
    assert!(rx.try_recv().is_err(), "fired below the threshold");

    handle.observe(DenialReason::RateLimit, "api");
    let body = next(&mut rx).await;
    assert_eq!(body["alert"], "rampart_denials");
    assert_eq!(body["reason"], "rate_limit");
    assert_eq!(body["denials"], 5);
    assert_eq!(body["threshold"], 5);
    assert_eq!(body["routes"]["api"], 5);
    let cooldown_started = Instant::now();

    // Twice the threshold during the cool-down: de-duplicated.
    for _ in 0..10 {
        handle.observe(DenialReason::RateLimit, "api");
    }
    settle(&handle).await;
    assert_eq!(handle.stats().suppressed.load(Ordering::Relaxed), 2);
    assert!(rx.try_recv().is_err(), "fired during the cool-down");
    assert!(
        cooldown_started.elapsed() < Duration::from_secs(1),
        "test too slow to prove de-dup"
    );

    // After the cool-down: fires again and says how much it suppressed.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(cooldown_started.elapsed())).await;
    for _ in 0..5 {
        handle.observe(DenialReason::RateLimit, "api");
    }
    let body = next(&mut rx).await;
    assert_eq!(body["reason"], "rate_limit");
    assert_eq!(body["suppressed"], 2);
    for _ in 0..500 {
        if handle.stats().sent.load(Ordering::Relaxed) == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("2xx answers not counted as sent");
}

#[tokio::test]
async fn reasons_have_separate_windows_and_events_dedup() {
    let (url, mut rx) = webhook_server().await;
    let mut cfg = config(&url, 60);
    cfg.default_rule.threshold = 3;
    let (handle, _task) = spawn(&cfg).unwrap();
    for _ in 0..2 {
        handle.observe(DenialReason::WafBlock, "none");
        handle.observe(DenialReason::RateLimit, "none");
    }
    settle(&handle).await;
    assert!(rx.try_recv().is_err());
    handle.observe(DenialReason::WafBlock, "none");
    assert_eq!(next(&mut rx).await["reason"], "waf_block");

    let event = AlertEvent {
        kind: "redis_fallback".into(),
        severity: Severity::Critical,
        message: "redis unreachable".into(),
    };
    handle.raise(event.clone());
    handle.raise(event);
    let body = next(&mut rx).await;
    assert_eq!(body["alert"], "rampart_event");
    assert_eq!(body["kind"], "redis_fallback");
    assert_eq!(body["severity"], "critical");
    settle(&handle).await;
    assert!(rx.try_recv().is_err(), "duplicate event not suppressed");
}

#[tokio::test]
async fn failed_webhook_is_counted_not_fatal() {
    // A port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(&format!("http://127.0.0.1:{port}/"), 0);
    cfg.default_rule.threshold = 1;
    let (handle, _task) = spawn(&cfg).unwrap();
    handle.observe(DenialReason::LoadShed, "none");
    for _ in 0..500 {
        if handle.stats().failed.load(Ordering::Relaxed) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("failed POST not counted");
}

#[test]
fn config_is_validated() {
    assert!(toml::from_str::<AlertConfig>("webhook = \"x\"").is_err());
    let c: AlertConfig = toml::from_str(
        "webhook_url = \"http://127.0.0.1:9/h\"\n[rules.rate_limit]\nthreshold = 10\nwindow_secs = 60\ncooldown_secs = 300\n",
    )
    .unwrap();
    assert!(c.validate().is_ok());
    let c: AlertConfig = toml::from_str(
        "[rules.rate_limt]\nthreshold = 10\nwindow_secs = 60\ncooldown_secs = 300\n",
    )
    .unwrap();
    assert!(c.validate().unwrap_err().contains("rate_limt"));
    let c: AlertConfig = toml::from_str("webhook_url = \"gopher://x\"").unwrap();
    assert!(c.validate().unwrap_err().contains("webhook_url"));
}

/// A CA file that does not load is blamed on `alerts.ca_file` (naming the file), a bad URL on
/// `alerts.webhook_url`; validation reads the URL only.
#[test]
fn webhook_errors_name_their_own_field() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let c = AlertConfig {
        webhook_url: Some("https://alerts.example/hook".into()),
        ca_file: Some(empty),
        ..AlertConfig::default()
    };
    assert!(c.validate().is_ok());
    let e = new(&c).err().expect("an empty CA file is refused");
    assert!(e.starts_with("alerts.ca_file: "), "{e}");
    assert!(e.contains("empty.pem"), "{e}");
    let c = AlertConfig {
        webhook_url: Some("https://user@alerts.example/hook".into()),
        ..c
    };
    let e = new(&c).err().expect("user-info in the URL is refused");
    assert!(e.starts_with("alerts.webhook_url: "), "{e}");
    // TLS settings refused (no CA file involved): not blamed on `alerts.ca_file`.
    let settings = rampart_tls::TlsError::Bundle("refused".into());
    let e = WebhookError::Tls(rampart_tls::web::ClientError::Settings(settings));
    assert_eq!(webhook_field(&e), "alerts.webhook_url");
}

#[test]
fn full_queue_drops_and_counts() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = AlertConfig {
            queue: 2,
            ..AlertConfig::default()
        };
        let (handle, _task) = spawn(&cfg).unwrap();
        // The worker cannot run between these sends (current-thread runtime).
        for _ in 0..5 {
            handle.observe(DenialReason::RateLimit, "none");
        }
        assert_eq!(handle.stats().dropped.load(Ordering::Relaxed), 3);
    });
}
