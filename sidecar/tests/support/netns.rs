//! Network-namespace helpers for the tests that build "pods" (root only): tool checks,
//! commands with a deadline, and namespaces (with their processes) removed on drop.

use std::process::{Command, Output, Stdio};

pub fn can_run() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    for tool in ["ip", "iptables", "setpriv", "curl", "python3"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("`{tool}` is missing (scripts/ensure-deps.sh)"));
        }
    }
    Ok(())
}

/// Runs a command with a deadline; returns its output.
pub fn sh(cmd: &str) -> Output {
    let child = Command::new("timeout")
        .args(["20", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn must(cmd: &str) {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Netns {
    pub names: Vec<String>,
    pub apps: Vec<std::process::Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for app in &mut self.apps {
            let _ = app.kill();
            let _ = app.wait();
        }
        for n in &self.names {
            let _ = sh(&format!(
                "ip netns pids {n} | xargs -r kill -9; ip netns del {n}"
            ));
        }
    }
}

/// The command prefix that runs a program in namespace `ns` as `uid` (the sidecar's user,
/// whose connections the redirect rules leave alone).
pub fn in_ns_as(ns: &str, uid: &str) -> Vec<String> {
    [
        "ip",
        "netns",
        "exec",
        ns,
        "setpriv",
        "--reuid",
        uid,
        "--regid",
        uid,
        "--clear-groups",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
