#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `rampart-pki` binary: init, issue, inspect, token, serve (with
//! a client bootstrapping against it), bundle, audit verify.

mod common;

use std::process::{Command, Stdio};

use common::cli::{fails_with, issue, mode, ok, pki, token, Serve, INIT};
use rampart_pki::client::SvidSource;

#[tokio::test]
async fn cli_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&pki(d, &["kek", "generate", "--out", "kek"]));
    assert_eq!(mode(&d.join("kek")), 0o600);
    fails_with(
        &pki(d, &["init", "--trust-domain", "example.org", "--dir", "ca"]),
        "no key-encryption key",
    );
    let init = INIT;
    ok(&pki(d, &init));
    fails_with(&pki(d, &init), "already holds a CA");

    std::fs::write(d.join("wrong"), "ab".repeat(32)).unwrap();
    fails_with(
        &issue(d, "wrong", &["--ns", "web", "--sa", "a", "--out", "w"]),
        "wrong key-encryption key",
    );
    ok(&issue(
        d,
        "kek",
        &["--ns", "web", "--sa", "a", "--out", "w"],
    ));
    assert_eq!(mode(&d.join("w.key")), 0o600);
    let report = ok(&pki(d, &["inspect", "w.pem"]));
    assert!(
        report.contains("X.509-SVID:    yes (spiffe://example.org/ns/web/sa/a)"),
        "{report}"
    );
    assert!(
        report.contains("SHA-256:") && report.contains("rotation due:"),
        "{report}"
    );
    fails_with(
        &issue(
            d,
            "kek",
            &["--ns", "web", "--sa", "a", "--ttl", "91d", "--out", "x"],
        ),
        "over the cap",
    );
    fails_with(
        &issue(d, "kek", &["--dns", "www.other.com", "--out", "x"]),
        "not under any configured DNS suffix",
    );
    ok(&issue(
        d,
        "kek",
        &["--dns", "api.edge.example.org", "--out", "edge"],
    ));
    assert!(ok(&pki(d, &["inspect", "edge.pem"])).contains("DNS:api.edge.example.org"));
    fails_with(
        &pki(
            d,
            &[
                "token",
                "create",
                "--dir",
                "ca",
                "--id",
                "spiffe://evil.org/ns/a/sa/b",
            ],
        ),
        "outside trust domain",
    );
    let token = token(d, "spiffe://example.org/ns/web/sa/b");
    assert!(token.starts_with("rpt_"));

    let serve = Serve::start(d).await;
    let addr = format!("127.0.0.1:{}", serve.port);
    let settings = common::settings(
        addr.parse().unwrap(),
        "spiffe://example.org/ns/web/sa/b",
        3600,
    );
    let roots =
        rampart_pki::client::certs_from_pem(&ok(&pki(d, &["bundle", "--dir", "ca"]))).unwrap();
    let source = SvidSource::bootstrap(settings, roots, &token).await;
    // SIGTERM: a clean stop that flushes the audit log.
    serve.stop();
    let source = source.unwrap();
    assert!(source.seconds_to_expiry() > 3500.0);

    let verified = ok(&pki(d, &["audit", "verify", "ca/audit.jsonl"]));
    assert!(verified.contains("chain intact"), "{verified}");
    let log = std::fs::read_to_string(d.join("ca/audit.jsonl")).unwrap();
    assert!(
        log.contains("\"kind\":\"bootstrap\""),
        "the service's issuance is in the log"
    );
    let log = std::fs::read_to_string(d.join("ca/audit.jsonl")).unwrap();
    std::fs::write(
        d.join("ca/audit.jsonl"),
        log.replacen("web/sa/a", "web/sa/z", 1),
    )
    .unwrap();
    fails_with(&pki(d, &["audit", "verify", "ca/audit.jsonl"]), "line 1");
}

#[test]
fn closed_pipe_and_conflicting_flags_are_clear() {
    let tmp = common::cli::initialised();
    let d = tmp.path();
    // `inspect … | head`: the reader is gone before anything is written.
    for args in [
        &["inspect", "ca/bundle.pem"][..],
        &["bundle", "--dir", "ca"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-pki"))
            .current_dir(d)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {err}");
    }
    // --ns/--sa with --dns: refused, not silently ignored.
    let out = issue(
        d,
        "kek",
        &[
            "--ns",
            "web",
            "--sa",
            "a",
            "--dns",
            "www.edge.example.org",
            "--out",
            "x",
        ],
    );
    fails_with(&out, "cannot be used with");
    assert!(!d.join("x.pem").exists());
    // revoke: one of --id / --serial; listed in revoked.json and audited.
    fails_with(&pki(d, &["revoke", "--dir", "ca"]), "--id");
    let out = ok(&pki(
        d,
        &[
            "revoke",
            "--dir",
            "ca",
            "--serial",
            "01:AB:CD",
            "--reason",
            "key leaked",
        ],
    ));
    assert!(out.contains("revoked certificate serial 01abcd"), "{out}");
    let out = ok(&pki(
        d,
        &[
            "revoke",
            "--dir",
            "ca",
            "--id",
            "spiffe://example.org/ns/web/sa/old",
        ],
    ));
    assert!(out.contains("renewal and bootstrap refuse it now"), "{out}");
    fails_with(
        &pki(
            d,
            &[
                "revoke",
                "--dir",
                "ca",
                "--id",
                "spiffe://other.org/ns/a/sa/b",
            ],
        ),
        "outside trust domain",
    );
    let list = std::fs::read_to_string(d.join("ca/revoked.json")).unwrap();
    assert!(list.contains("01abcd") && list.contains("sa/old"), "{list}");
    let verified = ok(&pki(d, &["audit", "verify", "ca/audit.jsonl"]));
    assert!(verified.contains("OK: 2 records"), "{verified}");
    // Reserved identities: no token, no certificate.
    for id in ["spiffe://example.org/rampart/pki", "spiffe://example.org"] {
        fails_with(
            &pki(d, &["token", "create", "--dir", "ca", "--id", id]),
            "is reserved",
        );
        fails_with(
            &issue(d, "kek", &["--spiffe-id", id, "--out", "y"]),
            "is reserved",
        );
    }
}
