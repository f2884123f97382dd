//! `rampart-proxy audit dnssec` against real DNS: the rampart-dns lab (Knot serving signed,
//! bogus and unsigned zones behind a validating Unbound on loopback, started by the test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use rampart_dns::testlab::{DnsLab, LabError};

#[test]
fn reports_each_served_name() {
    let lab = match DnsLab::start() {
        Ok(l) => l,
        Err(LabError::Missing(tools)) => {
            eprintln!(
                "SKIP: DNS lab tools not installed: {tools:?} (run scripts/ensure-deps.sh as root)"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        concat!(
            web_and_app!(),
            r#"
[[routes]]
name = "shop"
hosts = ["www.signed.test", "www.plain.test", "*.signed.test"]
upstream = "app"

[[routes]]
name = "legacy"
hosts = ["www.bogus.test", "WWW.Signed.test"]
upstream = "app"
"#
        ),
    )
    .unwrap();
    let run = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rampart-proxy"));
        c.args(["audit", "dnssec", "--config"])
            .arg(&config)
            .arg("--resolver")
            .arg(lab.resolver.to_string())
            .arg("--trust-anchor")
            .arg(&lab.anchor_file);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(true);
    assert!(
        !ok,
        "a bogus and an insecure name must fail the audit\n{stdout}{stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["verdict"].as_str().unwrap().to_string(),
                v["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("www.signed.test", "secure", "secure"),
        ("www.plain.test", "insecure", "insecure"),
        ("www.bogus.test", "bogus", "dnssec_bogus"),
        ("*.signed.test", "skipped", "not_a_name"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .to_vec(),
        "{stdout}"
    );
    // The duplicate (another case) is audited once, with both sources.
    assert_eq!(
        lines[0]["sources"],
        serde_json::json!(["route shop", "route legacy"])
    );
    assert!(
        stderr.contains("not every name is DNSSEC-secure"),
        "{stderr}"
    );

    let (_, text, _) = run(false);
    assert!(
        text.contains(
            "bogus     www.bogus.test  (route legacy): www.bogus.test: DNSSEC validation failed"
        ),
        "{text}"
    );
    assert!(text.contains("insecure  www.plain.test"), "{text}");

    // Only secure names: success.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(", \"www.plain.test\"", "")
            .replace("\"www.bogus.test\", ", ""),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(false);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("secure    www.signed.test"), "{stdout}");
}
