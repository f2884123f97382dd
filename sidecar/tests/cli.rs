//! The real `rampart-sidecar` binary: `check` and `policy explain` on files written by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{line_of, payments_directory, payments_sidecar, PAYMENTS_POLICY};

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

/// Runs the binary: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = sidecar(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder with the payments fixture (`sidecar.toml`, `directory.toml`, `policy.toml`).
struct Payments {
    dir: tempfile::TempDir,
    config: String,
}

impl Payments {
    fn new() -> Payments {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sidecar.toml"), payments_sidecar()).unwrap();
        std::fs::write(dir.path().join("directory.toml"), payments_directory()).unwrap();
        std::fs::write(dir.path().join("policy.toml"), PAYMENTS_POLICY).unwrap();
        let config = dir
            .path()
            .join("sidecar.toml")
            .to_str()
            .unwrap()
            .to_string();
        Payments { dir, config }
    }

    /// `check --config … EXTRA…` with `policy` as `policy.toml`.
    fn check(&self, policy: &str, extra: &[&str]) -> (Option<i32>, String, String) {
        std::fs::write(self.dir.path().join("policy.toml"), policy).unwrap();
        let mut args = vec!["check", "--config", &self.config];
        args.extend(extra);
        run(&args)
    }
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
    run(&args)
}

/// (from, to, extra arguments, exit code, what the output must hold).
type Case<'a> = (Option<&'a str>, &'a str, &'a [&'a str], i32, &'a [&'a str]);

#[test]
fn explain_allow_deny_audit_and_outbound() {
    let files = Payments::new();
    let config = files.config.as_str();
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
                "rule batch-raw: caller spiffe://mesh.local/ns/shop/sa/frontend not in",
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
    let files = Payments::new();
    let broad =
        PAYMENTS_POLICY.replace("spiffe://mesh.local/ns/batch/**", "spiffe://mesh.local/**");
    let by_ip = PAYMENTS_POLICY.replace(
        "callers = [\"spiffe://mesh.local/ns/batch/**\"]",
        "sources = [\"10.0.0.0/8\"]",
    );
    // An error points at the rule's `[[inbound.rule]]` line (just above its name), a field's
    // at its own line.
    let by_ip_error = format!(
        "policy.toml:{}:1: inbound[2].rule[0].callers: rule batch-raw admits by source address alone",
        line_of(PAYMENTS_POLICY, "name = \"batch-raw\"") - 1
    );
    let typo_at = format!("policy.toml:{}:1", line_of(PAYMENTS_POLICY, "methods ="));
    let typo = PAYMENTS_POLICY.replace("methods =", "method =");
    // (policy, extra arguments, exit code, what stdout (0, 1) or stderr (2) must hold)
    let cases: [(&str, &[&str], i32, &[&str]); 5] = [
        (PAYMENTS_POLICY, &[], 0, &["ok: config", "0 warning(s)"]),
        (
            &broad,
            &[],
            0,
            &["warning:", "admits every workload of the trust domain"],
        ),
        (
            &broad,
            &["--strict"],
            1,
            &["admits every workload of the trust domain"],
        ),
        (&by_ip, &[], 2, &[&by_ip_error]),
        (&typo, &[], 2, &[&typo_at, "unknown field `method`"]),
    ];
    for (policy, extra, code, needles) in cases {
        let (got, stdout, stderr) = files.check(policy, extra);
        assert_eq!(got, Some(code), "{extra:?}: {stdout}{stderr}");
        let shown = if code == 2 { &stderr } else { &stdout };
        for needle in needles {
            assert!(
                shown.contains(needle),
                "{extra:?}: no `{needle}` in {shown}"
            );
        }
    }

    let missing = files.dir.path().join("missing.toml");
    let (code, _, stderr) = run(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read"), "{stderr}");
}
