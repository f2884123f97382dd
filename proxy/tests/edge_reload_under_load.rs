//! Reliability under change: the real binary serves HTTPS traffic from the load generator while
//! its config is replaced and reloaded (SIGHUP) — routes, WAF policy and the listener's
//! certificate change between the variants — then gets SIGTERM. Every request sent before the
//! SIGTERM must be answered 2xx: no error, no reset, no refusal. The bounded version (6 reloads:
//! a debug build takes seconds per reload) of the 20-reload `rampart-loadtest --scenario reload`
//! run in `docs/proxy.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use rampart_loadtest::reload::ChangePlan;
use rampart_loadtest::runner::Live;
use rampart_loadtest::{mix, run, LoadMode, Plan, Scenario, Target};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const RELOADS: u32 = 6;

/// One config variant: its certificate, the WAF mode of the app route, and whether a second
/// route exists.
fn variant(b: &Basic, upstream: SocketAddr, cert: &str, waf: &str, extra: bool) -> String {
    let extra_route = match extra {
        true => "[[routes]]\nname = \"other\"\nhosts = [\"other.test\"]\nupstream = \"app\"\n",
        false => "",
    };
    b.config(upstream, extra_route)
        .replace("cert = \"edge.pem\"", &format!("cert = \"{cert}.pem\""))
        .replace("key = \"edge.key\"", &format!("key = \"{cert}.key\""))
        .replace(
            "[routes.cookies]",
            &format!("[routes.waf]\nmode = \"{waf}\"\n[routes.cookies]"),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_a_sigterm_under_load_fail_no_request() {
    let upstream = start_upstream().await;
    let pki = Pki::new("reload-load");
    let dir = tempfile::tempdir().unwrap();
    for stem in ["edge", "edge-b"] {
        pki.leaf(dir.path(), stem, &["app.test", "*.app.test", "other.test"]);
    }
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let b = Basic::new();
    let variants = [
        variant(&b, upstream, "edge", "block", false),
        variant(&b, upstream, "edge-b", "detect", true),
        variant(&b, upstream, "edge", "off", true),
    ];
    let mut files = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let path = dir.path().join(format!("variant-{i}.toml"));
        std::fs::write(&path, v).unwrap();
        files.push(path);
    }
    let mut edge = Edge::start(&variants[0], dir);
    let target = Target::parse(
        &format!("https://127.0.0.1:{}", edge.port("https")),
        Some(&ca),
        Some("app.test"),
    )
    .unwrap();
    let duration = Duration::from_secs(90);
    let plan = Plan {
        target,
        scenario: Scenario::Reload,
        duration,
        max_requests: 100_000,
        request_timeout: Duration::from_secs(5),
        max_connections: 8,
        legit_sources: vec!["127.0.0.10".parse().unwrap()],
        legit_mode: LoadMode::Open { rate: 50.0 },
        legit_requests: mix::benign_mix(),
        attack_sources: Vec::new(),
        attack_rate: 1.0,
        attack_requests: Vec::new(),
        slowloris_connections: 0,
        slowloris_interval: Duration::from_secs(1),
        change: Some(ChangePlan {
            pid: edge.child.id(),
            config_path: edge.config_path.clone(),
            variants: files,
            reloads: RELOADS,
            interval: Duration::from_millis(400),
            admin: SocketAddr::from(([127, 0, 0, 1], edge.admin())),
            sigterm: true,
        }),
    };
    let live = Live::default();
    let report = tokio::time::timeout(duration + Duration::from_secs(60), run(plan, &live))
        .await
        .expect("the run overran its deadline")
        .unwrap();
    let table = report.table();
    println!("{table}");
    let changes = report.changes.as_ref().unwrap();
    assert!(changes.problems.is_empty(), "{table}");
    assert_eq!(changes.reloads_sent, RELOADS, "{table}");
    assert_eq!(changes.reloads_applied, u64::from(RELOADS), "{table}");
    assert_eq!(changes.reloads_refused, 0, "{table}");
    assert!(changes.sigterm_at_secs.is_some(), "{table}");
    let legit = &report.legit;
    // Traffic crosses every reload: at 50 req/s, 20 per reload is 0.4 s of requests per reload
    // interval. (A fixed total would depend on how long the reloads take: the SIGTERM follows
    // the last one, so a fast machine sends fewer requests in all.)
    assert!(
        legit.sent >= 20 * u64::from(RELOADS),
        "too little traffic to mean anything: {table}"
    );
    assert_eq!(
        legit.errors_total, 0,
        "failed or reset before the drain: {table}"
    );
    assert_eq!(legit.blocked, 0, "refused before the drain: {table}");
    assert_eq!(legit.completed, legit.sent, "{table}");
    // The drain ends the process by itself, exit 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = edge.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "edge still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "edge exited {status}: {table}");
}
