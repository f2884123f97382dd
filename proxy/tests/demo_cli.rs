#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `rampart-proxy-demo` as an operator meets it: the real binary on loopback, and the curl
//! commands it prints run as printed (through `sh`). The block command must give a 403 whose
//! log line names the WAF rule, the rate-limit loop must reach 429, and the edge's own
//! response must carry the security headers the app leaves out.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command printed on the line after the line that starts with `title`.
fn command_after(out: &[String], title: &str) -> String {
    let i = out
        .iter()
        .position(|l| l.starts_with(title))
        .unwrap_or_else(|| panic!("no '{title}' in the demo's output:\n{}", out.join("\n")));
    out[i + 1].trim().to_string()
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_prints_commands_that_show_a_block_a_rate_limit_and_hardened_responses() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0 everywhere: the demo prints the ports it was given by the kernel.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-proxy-demo"))
        .arg("--dir")
        .arg(dir.path())
        .args(["--tls-port", "0", "--http-port", "0", "--admin-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let demo = Demo(child);

    // The commands are printed before the edge starts; "ready" comes on stderr once it listens.
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("rampart-proxy: ready") {
                let _ = ready_tx.send(Ok(common::ready_addresses(&line)));
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = ready_tx.send(Err(seen));
    });
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.starts_with("Stop with Ctrl-C");
            out.push(line);
            if done {
                let _ = lines_tx.send(out.clone());
            }
        }
    });
    let bound = match ready_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(bound)) => bound,
        Ok(Err(stderr)) => panic!("demo exited before ready:\n{stderr}"),
        Err(_) => panic!("demo not ready within 60 s"),
    };
    let tls = bound["listener.https"].port();
    assert_ne!(tls, 0);
    let out = lines_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        out.iter()
            .any(|l| l.contains(&format!("https://127.0.0.1:{tls}/"))),
        "the printed URLs use the chosen ports:\n{}",
        out.join("\n")
    );

    // What the edge sends instead of the careless app's response.
    let edge = sh(&command_after(&out, "What the edge sends instead"));
    let edge_lower = edge.to_ascii_lowercase();
    assert!(edge.starts_with("HTTP/"), "{edge}");
    assert!(edge.lines().next().unwrap().contains(" 200"), "{edge}");
    for h in [
        "strict-transport-security:",
        "content-security-policy:",
        "x-content-type-options: nosniff",
    ] {
        assert!(edge_lower.contains(h), "edge response lacks {h}:\n{edge}");
    }

    // The block: 403 from the edge, and the access-log line names the WAF rule.
    let block = sh(&command_after(&out, "The WAF blocks an SQL injection"));
    let status = block.lines().next().unwrap_or("");
    assert!(status.contains(" 403"), "expected a 403:\n{block}");
    let log_line = block
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no access-log line after the block:\n{block}"));
    let log: serde_json::Value = serde_json::from_str(log_line).unwrap();
    assert_eq!(log["http.response.status_code"], 403, "{log_line}");
    assert_eq!(log["rampart.waf.action"], "block", "{log_line}");
    let rules = log["rampart.waf.rule_ids"].to_string();
    assert!(
        rules.contains("100"),
        "a SQL rule (1xxx) is named: {log_line}"
    );

    // The rate limit: the printed loop reaches 429.
    let codes = sh(&command_after(&out, "Rate limit"));
    assert!(codes.contains("429"), "no 429 from the loop: {codes}");
    assert!(codes.contains("200"), "the burst passes first: {codes}");

    // The denials are counted per reason.
    let metrics = sh(&command_after(&out, "Denials by reason"));
    assert!(
        metrics.contains("family=\"sqli\",reason=\"waf_block\""),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"rate_limit\""), "{metrics}");
    drop(demo);
}
