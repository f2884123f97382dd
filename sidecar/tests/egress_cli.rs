//! `rampart-sidecar policy explain --egress` and `check` on egress policies, through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const POLICY: &str = r#"
[egress]
[[egress.hosts]]
name = "stripe"
host = "api.stripe.com"
ports = [443]
protocol = "tls"
[[egress.hosts]]
name = "cdn"
host = "*.cdn.example.com"
ports = [443]
protocol = "tls"
dnssec = "required"
[[egress.addresses]]
name = "wide"
networks = ["198.51.0.0/16"]
ports = [443]
protocol = "tls"

[gateway.frontend]
[[gateway.frontend.hosts]]
name = "fe-github"
host = "github.com"
ports = [443]
protocol = "tls"
"#;

fn explain(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
        .args(["policy", "explain", "--policy"])
        .arg(dir.join("policy.toml"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn explain_egress_shows_the_data_path_decision_offline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();

    let (code, out) = explain(dir.path(), &["--egress", "api.stripe.com:443"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tls   allow  rule stripe:"), "{out}");
    assert!(
        out.contains("http  deny   protocol_mismatch (rule stripe)"),
        "{out}"
    );
    assert!(out.contains("under [egress]"), "{out}");

    // The wildcard never matches its apex, and says so.
    let (code, out) = explain(dir.path(), &["--egress", "cdn.example.com:443"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("no_rule") && out.contains("never cdn.example.com itself"),
        "{out}"
    );
    let (code, out) = explain(dir.path(), &["--egress", "a.b.cdn.example.com:443"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rule cdn:") && out.contains("dnssec required"),
        "{out}"
    );

    // Wrong port, raw IPs.
    let (code, out) = explain(dir.path(), &["--egress", "api.stripe.com:80"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("port_not_allowed (rule stripe)"), "{out}");
    let (code, out) = explain(dir.path(), &["--egress", "203.0.113.9:443"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("missing_sni"), "{out}");
    let (code, out) = explain(dir.path(), &["--egress", "198.51.3.4:443"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rule wide:"), "{out}");

    // The gateway's view of a caller.
    let (code, out) = explain(
        dir.path(),
        &["--egress", "github.com:443", "--from", "frontend"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("under [gateway.frontend]") && out.contains("rule fe-github"),
        "{out}"
    );
    let (code, out) = explain(
        dir.path(),
        &["--egress", "github.com:443", "--from", "ledger"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no such section"), "{out}");

    // JSON.
    let (code, out) = explain(dir.path(), &["--egress", "api.stripe.com:443", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["decisions"][1]["reason"], "protocol_mismatch");

    // Bad input is an error, not a decision.
    let (code, out) = explain(dir.path(), &["--egress", "api.stripe.com"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("HOST:PORT"), "{out}");
}

#[test]
fn check_warns_on_broad_egress_rules_and_a_missing_egress_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("directory.toml"),
        "[[service]]\nname = \"frontend\"\nidentity = \"spiffe://mesh.local/ns/shop/sa/frontend\"\nendpoints = [{ port = 80, address = \"127.0.0.1:80\" }]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sidecar.toml"),
        "service = \"frontend\"\ntrust_domain = \"mesh.local\"\npolicy = \"policy.toml\"\ndirectory = \"directory.toml\"\nidentity = { cert = \"c.pem\", key = \"c.key\", bundle = \"b.pem\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
        .args(["check", "--strict", "--config"])
        .arg(dir.path().join("sidecar.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("[egress] wide: 198.51.0.0/16"), "{text}");
    assert!(text.contains("no [egress] section"), "{text}");
    assert!(text.contains("no [gateway] section"), "{text}");

    // A bad [egress] config section is refused with its place.
    std::fs::write(
        dir.path().join("sidecar.toml"),
        "service = \"frontend\"\ntrust_domain = \"mesh.local\"\npolicy = \"policy.toml\"\ndirectory = \"directory.toml\"\nidentity = { cert = \"c.pem\", key = \"c.key\", bundle = \"b.pem\" }\n[egress]\nproxy_listen = \"0.0.0.0:3128\"\nresolvers = [\"127.0.0.1:53\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
        .args(["check", "--config"])
        .arg(dir.path().join("sidecar.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("sidecar.toml:6:")
            && text.contains("egress.proxy_listen")
            && text.contains("loopback"),
        "{text}"
    );
}
