//! Helpers for the workspace's tests (feature `testing`, a dev-dependency only): the Prometheus
//! alert rules in `deploy/prometheus` checked by `promtool` and matched against the metrics a
//! binary exports. Every failure panics with what to fix.
//!
//! ```no_run
//! use rampart_ops::testing::AlertRules;
//! let rules = AlertRules::new(env!("CARGO_MANIFEST_DIR"), "sidecar-alerts.yml");
//! rules.promtool(&["check", "rules", "sidecar-alerts.yml"]);
//! rules.promtool(&["test", "rules", "sidecar-alerts.test.yml"]);
//! let exposition = String::new(); // a registry's text exposition
//! rules.assert_exported("rampart_sidecar_", &exposition, 6);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// One rules file of the workspace's `deploy/prometheus` folder.
#[derive(Debug, Clone)]
pub struct AlertRules {
    dir: PathBuf,
    file: String,
    text: String,
}

impl AlertRules {
    /// `deploy/prometheus/FILE` of the workspace, found from a member crate's manifest folder
    /// (`env!("CARGO_MANIFEST_DIR")`).
    pub fn new(manifest_dir: &str, file: &str) -> Self {
        let dir = Path::new(manifest_dir).join("../deploy/prometheus");
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()));
        AlertRules {
            dir,
            file: file.to_string(),
            text,
        }
    }

    /// The rules file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs `promtool ARGS…` in the rules folder; panics with its output unless it succeeds.
    pub fn promtool(&self, args: &[&str]) {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("promtool: {e}: install the Debian package `prometheus` (scripts/ensure-deps.sh)")
            });
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every metric name the rules use that starts with `prefix`, sorted, once each.
    pub fn metric_names(&self, prefix: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with(prefix))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Asserts the rules name at least `at_least` metrics starting with `prefix` and that each
    /// begins a sample line of `exposition` (Prometheus text format).
    pub fn assert_exported(&self, prefix: &str, exposition: &str, at_least: usize) {
        let names = self.metric_names(prefix);
        assert!(
            names.len() >= at_least,
            "{}: only {} metric names with prefix {prefix}: {names:?}",
            self.file,
            names.len()
        );
        for name in names {
            assert!(
                exposition.lines().any(|l| l.starts_with(name)),
                "{} names {name}, which is not exported:\n{exposition}",
                self.file
            );
        }
    }
}

/// Serves every connection accepted on a fresh loopback port (`127.0.0.1:0`) with `handle`,
/// each on its own task, until the runtime ends; returns the address. The test servers of the
/// workspace (echo apps, upstreams, held requests) differ only in `handle`.
pub async fn serve_loopback<F, Fut>(handle: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding a loopback test server: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the loopback test server's address: {e}"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(handle(stream));
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> AlertRules {
        AlertRules {
            dir: PathBuf::from("."),
            file: "x.yml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn names_are_found_once_each_and_must_be_exported() {
        let r = rules("expr: rate(app_a_total[5m]) > 0 and app_b > app_a_total");
        assert_eq!(r.metric_names("app_"), ["app_a_total", "app_b"]);
        r.assert_exported("app_", "# HELP app_a_total x\napp_a_total 1\napp_b 2\n", 2);
        let missing = std::panic::catch_unwind(|| r.assert_exported("app_", "app_a_total 1\n", 1));
        assert!(missing.is_err(), "an unexported name must fail");
    }
}
