#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The audit log with the real binaries: `serve` and CLI commands writing
//! the same log keep one intact chain; a broken chain never stops the CA.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::{curl, first_line, issue, ok, pki, stop, token, Serve};

fn sealed(d: &Path) -> Vec<String> {
    std::fs::read_dir(d.join("ca"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sealed-"))
        .collect()
}

/// A leaf issued offline (`rampart-pki issue`) for `spiffe://example.org/ns/jobs/sa/SA`.
fn offline_leaf(d: &Path, sa: &str) {
    ok(&issue(d, "kek", &["--ns", "jobs", "--sa", sa, "--out", sa]));
}

/// The reported defect: `token create` / `issue` while `serve` runs, then
/// one more request to the service, broke the chain; afterwards the CLI
/// and a restarted service refused to work.
#[tokio::test]
async fn cli_and_service_share_one_intact_chain() {
    let tmp = common::cli::initialised();
    let d = tmp.path();
    let serve = Serve::start(d).await;
    let mut expected = 0;
    for i in 0..4 {
        let id = format!("spiffe://example.org/ns/web/sa/w{i}");
        let (body, created) = tokio::join!(
            serve.refused_request(d),
            tokio::task::spawn_blocking({
                let d = d.to_path_buf();
                move || pki(&d, &["token", "create", "--dir", "ca", "--id", &id])
            })
        );
        assert!(body.contains("token_unknown"), "{body}");
        ok(&created.unwrap());
        let out = format!("w{i}");
        ok(&issue(
            d,
            "kek",
            &["--ns", "web", "--sa", &out, "--out", &out],
        ));
        expected += 3;
    }
    // One more request to the service after the CLI wrote.
    assert!(serve.refused_request(d).await.contains("token_unknown"));
    expected += 1;
    serve.stop();
    let verified = ok(&pki(d, &["audit", "verify", "ca/audit.jsonl"]));
    assert!(
        verified.contains(&format!("OK: {expected} records, chain intact")),
        "{verified}"
    );
    assert!(sealed(d).is_empty(), "nothing was sealed: {:?}", sealed(d));
}

/// A chain broken inside (an edited record) does not stop the CLI (no full
/// verification at every start) nor the service: the service reports the
/// break, seals the log and starts a new chain saying where it broke.
#[tokio::test]
async fn a_broken_chain_is_sealed_and_the_ca_keeps_serving() {
    let tmp = common::cli::initialised();
    let d = tmp.path();
    for i in 0..3 {
        let id = format!("spiffe://example.org/ns/web/sa/t{i}");
        ok(&pki(d, &["token", "create", "--dir", "ca", "--id", &id]));
    }
    let log = d.join("ca/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("sa/t1", "sa/xx", 1)).unwrap();
    assert!(!pki(d, &["audit", "verify", "ca/audit.jsonl"])
        .status
        .success());
    // The CLI still works: it reads only the (intact) tail.
    ok(&pki(
        d,
        &[
            "token",
            "create",
            "--dir",
            "ca",
            "--id",
            "spiffe://example.org/ns/web/sa/t3",
        ],
    ));
    let serve = Serve::start(d).await;
    // The background check finds the break; wait for it (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = serve.metrics(d).await;
        if m.contains("rampart_pki_audit_chain_restarts_total 1") {
            assert!(m.contains("rampart_pki_audit_chain_breaks_total 1"), "{m}");
            assert!(m.contains("rampart_pki_audit_chain_verified 0"), "{m}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service did not report the break: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(serve.refused_request(d).await.contains("token_unknown"));
    serve.stop();
    let names = sealed(d);
    assert_eq!(names.len(), 1, "{names:?}");
    let verified = ok(&pki(d, &["audit", "verify", "ca/audit.jsonl"]));
    assert!(verified.contains("chain intact"), "{verified}");
    let restarted = format!(
        "this chain was started after a break: {} broke at line 2 (",
        names[0]
    );
    assert!(verified.contains(&restarted), "{verified}");
}

fn files(d: &Path, sub: &str, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.join("ca").join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn roots_in_bundle(d: &Path) -> usize {
    std::fs::read_to_string(d.join("ca/bundle.pem"))
        .unwrap()
        .matches("BEGIN CERTIFICATE")
        .count()
}

/// Manual and emergency rotation against the running service, through
/// its admin socket; retired keys are destroyed; the service keeps
/// answering with a certificate that verifies against the new bundle.
#[tokio::test]
async fn rotate_commands_drive_the_running_service() {
    let tmp = common::cli::initialised();
    let d = tmp.path();
    let out = pki(d, &["rotate", "intermediate", "--dir", "ca"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running service answers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serve = Serve::start(d).await;
    let keys_before = files(d, "intermediates", ".key");
    let out = ok(&pki(d, &["rotate", "intermediate", "--dir", "ca"]));
    assert!(out.contains("IntermediateRotated"), "{out}");
    let keys_after = files(d, "intermediates", ".key");
    assert_eq!(
        keys_after.len(),
        1,
        "old intermediate key destroyed: {keys_after:?}"
    );
    assert_ne!(keys_before, keys_after);
    assert_eq!(
        files(d, "intermediates", ".pem").len(),
        2,
        "certificates stay"
    );

    let root_keys = files(d, "roots", ".key");
    // One live workload (an offline leaf): the old root waits for it.
    offline_leaf(d, "batch");
    let out = ok(&pki(d, &["rotate", "root", "--dir", "ca", "--emergency"]));
    assert!(
        out.contains("RootIntroduced") && out.contains("RootActivated"),
        "{out}"
    );
    assert!(
        out.contains("1 of 1 live workloads still hold a leaf under the old root"),
        "{out}"
    );
    assert_eq!(
        roots_in_bundle(d),
        2,
        "old root stays trusted while a live workload holds a leaf under it"
    );
    let now_keys = files(d, "roots", ".key");
    assert_eq!(now_keys.len(), 1, "{now_keys:?}");
    assert!(
        !root_keys.contains(&now_keys[0]),
        "the old root's key is destroyed"
    );
    // The service answers under the new root, verified by curl.
    assert!(serve
        .metrics(d)
        .await
        .contains("rampart_pki_rotations_total{event=\"root_activated\"} 1"));

    let out = pki(
        d,
        &["rotate", "root", "--dir", "ca", "--break-workloads-now"],
    );
    assert!(
        !out.status.success(),
        "--break-workloads-now needs --emergency"
    );
    let out = ok(&pki(
        d,
        &[
            "rotate",
            "root",
            "--dir",
            "ca",
            "--emergency",
            "--break-workloads-now",
        ],
    ));
    assert!(out.contains("RootRetired"), "{out}");
    assert!(out.contains("1 of them on an old root"), "{out}");
    assert_eq!(roots_in_bundle(d), 1, "every older root retired at once");
    assert!(serve
        .metrics(d)
        .await
        .contains("rampart_pki_rotations_total{event=\"root_retired\"} 2"));
    // Without the flag, a draining root is not cut short.
    offline_leaf(d, "batch2");
    let out = pki(d, &["rotate", "root", "--dir", "ca", "--emergency"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pki(d, &["rotate", "root", "--dir", "ca", "--emergency"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still draining"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serve.stop();
    assert!(!d.join("ca/admin.sock").exists(), "socket removed at exit");
}

fn agent(d: &Path, port: u16, with_token: bool) -> Child {
    let ca = format!("127.0.0.1:{port}");
    let mut args = vec![
        "agent",
        "--ca",
        &ca,
        "--id",
        "spiffe://example.org/ns/web/sa/py",
        "--bundle-file",
        "ca/bundle.pem",
        "--out",
        "out",
        "--ttl",
        "6s",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    if with_token {
        args.extend(["--token-file", "token"]);
    }
    Command::new(env!("CARGO_BIN_EXE_rampart-pki"))
        .current_dir(d)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The agent: files a workload in any language can use, renewed at 2/3 of
/// life, verifiable with openssl, expiry as a metric, resumed after a
/// restart without a new token.
#[tokio::test]
async fn agent_keeps_files_for_any_workload() {
    let tmp = common::cli::initialised();
    let d = tmp.path();
    let serve = Serve::start_with(d, "[issuance]\nmax_ttl_secs = 6\ndefault_ttl_secs = 6\n").await;
    let token = token(d, "spiffe://example.org/ns/web/sa/py");
    std::fs::write(d.join("token"), token).unwrap();
    let mut child = agent(d, serve.port, true);
    let line = first_line(&mut child).await;
    assert!(line.starts_with("ready out"), "{line:?}");
    let metrics_url = line.trim().rsplit(' ').next().unwrap().to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.join("out/key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let verify = || {
        Command::new("openssl")
            .current_dir(d.join("out"))
            .args([
                "verify",
                "-CAfile",
                "bundle.pem",
                "-untrusted",
                "cert.pem",
                "cert.pem",
            ])
            .output()
            .unwrap()
    };
    let v = verify();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let key_matches = || {
        let pubkey = |args: &[&str]| {
            Command::new("openssl")
                .current_dir(d.join("out"))
                .args(args)
                .output()
                .unwrap()
                .stdout
        };
        pubkey(&["x509", "-in", "cert.pem", "-noout", "-pubkey"])
            == pubkey(&["pkey", "-in", "key.pem", "-pubout"])
    };
    assert!(key_matches());
    let first = std::fs::read(d.join("out/cert.pem")).unwrap();
    // Renewed at about 2/3 of the 6 s life.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read(d.join("out/cert.pem")).unwrap() == first {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no renewal written within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(key_matches(), "key and certificate written as a pair");
    let m = curl(d, &[&metrics_url]).await;
    let expiry: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("rampart_pki_agent_svid_seconds_to_expiry "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no expiry metric: {m}"));
    assert!(expiry > 0.0 && expiry <= 6.0, "{expiry}");
    stop(child);
    // Restart without a token: resumes from the files.
    std::fs::remove_file(d.join("token")).unwrap();
    let mut child = agent(d, serve.port, false);
    let line = first_line(&mut child).await;
    assert!(
        line.starts_with("ready out"),
        "resumed without a token: {line:?}"
    );
    stop(child);
    serve.stop();
}
