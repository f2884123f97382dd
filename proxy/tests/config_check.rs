//! `rampart-proxy check`: errors name file, line and key; warnings for weak choices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::process::Command;

fn check(dir: &std::path::Path, text: &str) -> (bool, String) {
    let path = dir.join("rampart.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart-proxy"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const BASE: &str = concat!(
    web_and_app!(),
    r#"
[[routes]]
name = "app"
hosts = ["*"]
upstream = "app"
[routes.cookies]
http_only_exceptions = ["csrf_token"]
"#
);

#[test]
fn valid_config_passes_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = check(dir.path(), BASE);
    assert!(ok, "{out}");
    assert!(
        out.contains("warning: listener `web` serves plain HTTP"),
        "{out}"
    );
    assert!(
        out.contains("cookie `csrf_token` is readable by scripts"),
        "{out}"
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = check(
        dir.path(),
        &BASE.replace(
            "name = \"app\"\nendpoints",
            "name = \"app\"\nendpoint_list = 1\nendpoints",
        ),
    );
    assert!(!ok);
    assert!(out.contains("rampart.toml:9:"), "{out}");
    assert!(out.contains("endpoint_list"), "{out}");
}

#[test]
fn validation_error_names_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = check(
        dir.path(),
        &BASE.replace("upstream = \"app\"", "upstream = \"missing\""),
    );
    assert!(!ok);
    assert!(
        out.contains("rampart.toml:14: `routes.0.upstream`: no upstream named `missing`"),
        "{out}"
    );
}

#[test]
fn bad_certificate_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("check");
    pki.leaf(dir.path(), "edge", &["a.test"]);
    std::fs::write(
        dir.path().join("edge.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let text = BASE.replace("insecure_plaintext = true\n", "[listeners.tls]\n[[listeners.tls.certificates]]\ncert = \"edge.pem\"\nkey = \"edge.key\"\n");
    let (ok, out) = check(dir.path(), &text);
    assert!(!ok, "{out}");
    assert!(out.contains("edge.key"), "{out}");
}
