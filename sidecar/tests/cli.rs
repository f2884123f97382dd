//! The real `rampart-sidecar` binary: `check` and `policy explain` on files written by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{payments_directory, payments_sidecar, PAYMENTS_POLICY};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs the binary with a deadline: a hang is a failure with a message.
fn sidecar(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart-sidecar");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("rampart-sidecar {args:?} did not finish within {DEADLINE:?}");
        }
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The payments fixture (`sidecar.toml`, `directory.toml`) with `policy` as `policy.toml`.
fn write_files(dir: &Path, policy: &str) {
    std::fs::write(dir.join("sidecar.toml"), payments_sidecar()).unwrap();
    std::fs::write(dir.join("directory.toml"), payments_directory()).unwrap();
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
}

/// `policy explain --config CONFIG [--from FROM] --to TO EXTRA…`: (exit code, stdout, stderr).
fn explain(
    config: &str,
    from: Option<&str>,
    to: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let mut args = vec!["policy", "explain", "--config", config];
    if let Some(from) = from {
        args.extend(["--from", from]);
    }
    args.extend(["--to", to]);
    args.extend(extra);
    let out = sidecar(&args);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// (from, to, extra arguments, exit code, what the output must hold).
type Case<'a> = (Option<&'a str>, &'a str, &'a [&'a str], i32, &'a [&'a str]);

#[test]
fn explain_allow_deny_audit_and_outbound() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), PAYMENTS_POLICY);
    let config = dir.path().join("sidecar.toml");
    let config = config.to_str().unwrap();
    let frontend = Some("spiffe://mesh.local/ns/shop/sa/frontend");
    let own = Some("spiffe://mesh.local/ns/shop/sa/payments");
    let get = ["--method", "GET", "--path", "/v1/payments/7?x=1"];
    // (from, to, extra arguments, exit code, what stdout (0-3) or stderr (2) must hold)
    let cases: [Case; 7] = [
        (
            frontend,
            "payments:8080",
            &get,
            0,
            &[
                "decision: allow",
                "rule:     frontend-reads",
                "policy.toml sha256:",
            ],
        ),
        (
            frontend,
            "payments:8080",
            &["--method", "POST", "--path", "/v1/payments/7"],
            3,
            &["reason:   rule frontend-reads: method POST not in [GET]"],
        ),
        (None, "payments:8080", &get, 3, &["no client certificate"]),
        // Audit mode passes (exit 0) and says what it would have denied.
        (
            frontend,
            "payments:7000",
            &[],
            0,
            &[
                "decision: audit_deny",
                "rule batch: caller spiffe://mesh.local/ns/shop/sa/frontend not in",
            ],
        ),
        (
            frontend,
            "payments:8080",
            &[],
            2,
            &["HTTP port: give --method and --path"],
        ),
        (
            own,
            "ledger:9001",
            &[],
            3,
            &["rule to-ledger: port 9001 not in [9000]"],
        ),
        (Some("spiffe://Bad"), "payments:8080", &[], 2, &["--from"]),
    ];
    for (from, to, extra, code, needles) in cases {
        let (got, stdout, stderr) = explain(config, from, to, extra);
        assert_eq!(
            got,
            Some(code),
            "{from:?} -> {to} {extra:?}: {stdout}{stderr}"
        );
        let shown = if code == 2 { &stderr } else { &stdout };
        for needle in needles {
            assert!(
                shown.contains(needle),
                "{from:?} -> {to} {extra:?}: no `{needle}` in {shown}"
            );
        }
    }
    let (code, stdout, stderr) = explain(config, own, "ledger:9000", &["--json"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "allow");
    assert_eq!(json["direction"], "outbound");
    assert_eq!(json["rule"]["rule"], "to-ledger");
}

#[test]
fn check_reports_errors_with_place_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), PAYMENTS_POLICY);
    let config = dir.path().join("sidecar.toml");
    let config = config.to_str().unwrap();
    let out = sidecar(&["check", "--config", config]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok: config"), "{stdout}");
    assert!(stdout.contains("0 warning(s)"), "{stdout}");

    let broad = PAYMENTS_POLICY.replace(
        "spiffe://mesh.local/ns/batch/sa/nightly",
        "spiffe://mesh.local/**",
    );
    write_files(dir.path(), &broad);
    let out = sidecar(&["check", "--config", config]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("warning:") && stdout.contains("admits every workload of the trust domain"),
        "{stdout}"
    );
    assert_eq!(
        sidecar(&["check", "--config", config, "--strict"])
            .status
            .code(),
        Some(1)
    );

    let by_ip = PAYMENTS_POLICY.replace(
        "callers = [\"spiffe://mesh.local/ns/batch/sa/nightly\"]",
        "sources = [\"10.0.0.0/8\"]",
    );
    write_files(dir.path(), &by_ip);
    let out = sidecar(&["check", "--config", config]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("policy.toml:17:1: inbound[1].rule[0].callers: rule batch admits by source address alone"), "{stderr}");

    let typo = PAYMENTS_POLICY.replace("methods =", "method =");
    write_files(dir.path(), &typo);
    let out = sidecar(&["check", "--config", config]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("policy.toml:9:1") && stderr.contains("unknown field `method`"),
        "{stderr}"
    );

    let out = sidecar(&[
        "check",
        "--config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("cannot read"), "{}", text(&out).1);
}
