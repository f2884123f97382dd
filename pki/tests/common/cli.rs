//! Set-up shared by the tests that run the real `rampart-pki` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs `rampart-pki ARGS` in `dir` (no KEK from the environment).
pub fn pki(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart-pki"))
        .current_dir(dir)
        .env_remove("RAMPART_PKI_KEK")
        .args(args)
        .output()
        .unwrap()
}

/// Stdout of a command that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A command that must fail with `needle` on stderr.
pub fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `rampart-pki issue --dir ca --kek-file KEK ARGS` in `dir`.
pub fn issue(dir: &Path, kek: &str, args: &[&str]) -> Output {
    let mut all = vec!["issue", "--dir", "ca", "--kek-file", kek];
    all.extend_from_slice(args);
    pki(dir, &all)
}

/// A join token for `id` from `rampart-pki token create`.
pub fn token(dir: &Path, id: &str) -> String {
    ok(&pki(dir, &["token", "create", "--dir", "ca", "--id", id]))
        .trim()
        .to_string()
}

/// `rampart-pki init` arguments for the CA in `DIR/ca` with the KEK in `DIR/kek`.
pub const INIT: [&str; 9] = [
    "init",
    "--trust-domain",
    "example.org",
    "--dir",
    "ca",
    "--kek-file",
    "kek",
    "--dns-suffix",
    "edge.example.org",
];

/// A KEK in `d/kek` and a CA in `d/ca`.
pub fn init(d: &Path) {
    ok(&pki(d, &["kek", "generate", "--out", "kek"]));
    ok(&pki(d, &INIT));
}

/// A temporary directory with a KEK and a CA made by the binary ([`init`]).
pub fn initialised() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    tmp
}

/// `rampart-pki serve` on the CA in `d/ca` (127.0.0.1, port 0).
pub struct Serve {
    pub child: Child,
    pub port: u16,
}

impl Serve {
    pub async fn start(d: &Path) -> Serve {
        Self::start_with(d, "").await
    }

    pub async fn start_with(d: &Path, extra: &str) -> Serve {
        std::fs::write(
            d.join("pki.toml"),
            format!("listen = \"127.0.0.1:0\"\nca_dir = \"ca\"\nkek_file = \"kek\"\n{extra}"),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-pki"))
            .current_dir(d)
            .env_remove("RAMPART_PKI_KEK")
            .args(["serve", "--config", "pki.toml"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut child).await;
        let addr = line
            .trim()
            .strip_prefix("ready https://")
            .unwrap_or_else(|| panic!("no ready line: {line:?}"));
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Serve { child, port }
    }

    /// A request the service refuses and audits (unknown join token).
    pub async fn refused_request(&self, d: &Path) -> String {
        curl(
            d,
            &[
                "-X",
                "POST",
                "--data",
                "{\"token\":\"rpt_unknown\",\"csr\":\"x\"}",
                &format!("https://127.0.0.1:{}/v1/bootstrap", self.port),
            ],
        )
        .await
    }

    pub async fn metrics(&self, d: &Path) -> String {
        curl(d, &[&format!("https://127.0.0.1:{}/metrics", self.port)]).await
    }

    pub fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits cleanly: {status:?}");
    }
}

/// A failing test must not leave the service running.
impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// curl with the CA's bundle (bounded).
pub async fn curl(d: &Path, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("curl")
            .current_dir(d)
            .args(["--silent", "--max-time", "10", "--cacert", "ca/bundle.pem"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl hung")
    .expect("curl is needed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (bounded) for a line from a child's stdout.
pub async fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        }),
    )
    .await
    .expect("no line within 30 s")
    .unwrap()
}

/// SIGTERM, then a clean exit.
pub fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
