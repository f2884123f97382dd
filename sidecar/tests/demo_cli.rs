//! `rampart-sidecar demo` prints commands; this test runs each printed command through `sh`
//! and checks what it shows: the allowed call, the denial and its explanation, the refused
//! caller without a certificate, the dry-run denial, the reload cutting a stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn sh(cmd: &str) -> String {
    let out = Command::new("timeout")
        .args(["20", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn printed_commands_show_the_mesh_at_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .env(rampart_sidecar::pki_process::ENV, support::pki_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut commands = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo printed no 'ready' line within 60 s");
        if let Some(cmd) = line.strip_prefix("$ ") {
            commands.push(cmd.to_string());
        }
        if line.starts_with("ready") {
            break;
        }
    }
    assert_eq!(commands.len(), 7, "{commands:#?}");

    let allowed = sh(&commands[0]);
    assert!(allowed.starts_with("app=payments;xfcc=By=spiffe://mesh.local/ns/shop/sa/payments;URI=spiffe://mesh.local/ns/shop/sa/frontend;path=/v1/payments/42"), "{allowed}");
    let denied = sh(&commands[1]);
    assert!(
        denied.contains("inbound deny: rule frontend-reads: method POST not in [GET]"),
        "{denied}"
    );
    let explained = sh(&commands[2]);
    assert!(
        explained.contains("decision: deny (inbound)")
            && explained.contains("reason:   rule frontend-reads: method POST not in [GET]"),
        "{explained}"
    );
    let no_cert = sh(&commands[3]);
    assert!(no_cert.contains("no client certificate"), "{no_cert}");
    let audited = sh(&commands[4]);
    assert!(
        audited.starts_with("app=ledger;"),
        "the audit-mode denial must pass: {audited}"
    );
    // The log writer drains its queue every few milliseconds: poll for the line, with a deadline.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let mut count = sh(&commands[5]);
    while count.trim() != "1" && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        count = sh(&commands[5]);
    }
    assert_eq!(count.trim(), "1", "one audit_deny line in ledger's log");
    let cut = sh(&commands[6]);
    assert!(
        cut.contains("tick 0"),
        "the stream was open before the reload: {cut}"
    );
    assert!(
        cut.contains("[curl exit 18]"),
        "the reload must cut the stream (curl 18: transfer closed): {cut}"
    );
    assert!(!cut.contains("tick 100"), "{cut}");
    drop(demo);
}

#[test]
fn without_the_ca_binary_the_demo_says_how_to_build_it() {
    // A copy of the sidecar alone in a folder, nothing on PATH, no RAMPART_PKI_BIN.
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("rampart-sidecar");
    std::fs::copy(env!("CARGO_BIN_EXE_rampart-sidecar"), &lone).unwrap();
    let mut cmd = Command::new(&lone);
    cmd.args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .env_remove(rampart_sidecar::pki_process::ENV)
        .env("PATH", dir.path().join("empty"))
        .stdin(Stdio::null());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(cmd.output().unwrap()));
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the demo must fail at once without the CA binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rampart-pki") && err.contains("cargo build -p rampart-pki --bin rampart-pki"),
        "{err}"
    );
    assert!(
        !dir.path().join("demo").exists(),
        "nothing started, nothing written"
    );
}
