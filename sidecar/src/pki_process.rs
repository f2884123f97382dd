//! The Rampart CA as a child process: the real `rampart-pki` binary, for `rampart-sidecar demo`
//! and the tests (the sidecar links no CA code). Found through `RAMPART_PKI_BIN`, else next to
//! our own executable (where `cargo build` puts it), else on `PATH`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that names the `rampart-pki` binary.
pub const ENV: &str = "RAMPART_PKI_BIN";
const NAME: &str = "rampart-pki";

/// Where `rampart-pki` is, or a message saying how to get it.
pub fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{ENV}={} is not a file: point it at a built rampart-pki binary",
                path.display()
            ))
        };
    }
    let own = std::env::current_exe().ok();
    let beside = own
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join(NAME))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(NAME))
                .find(|p| p.is_file())
        })
    };
    beside.or_else(on_path).ok_or_else(|| {
        let here = own
            .as_deref()
            .and_then(Path::parent)
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "this executable's folder".into());
        format!(
            "the demo runs the Rampart CA, the `rampart-pki` binary, and it was not found \
             (not in {here}, {ENV} unset, not on PATH). Build it with \
             `cargo build -p rampart-pki --bin rampart-pki` (it lands next to rampart-sidecar), \
             or set {ENV}=/path/to/rampart-pki"
        )
    })
}

/// Writes a file, the error naming it.
pub fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a secret (a key, a token) readable by us alone (0600 from creation).
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A running CA service, killed on drop.
pub struct Pki {
    bin: PathBuf,
    /// The CA directory.
    pub dir: PathBuf,
    kek: PathBuf,
    /// `HOST:PORT` of its HTTPS service.
    pub addr: String,
    child: Child,
}

fn run(bin: &Path, args: &[&OsStr]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            bin.display(),
            args.first()
                .map(|a| a.to_string_lossy())
                .unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Pki {
    /// `rampart-pki init` a CA for `trust_domain` in `work/ca` (keys encrypted under a random
    /// key-encryption key in `work/kek`, 0600), then `rampart-pki serve` it on a loopback port,
    /// its output in `work/ca.log`. Waits (20 s at most) for its ready line.
    pub fn start(bin: PathBuf, work: &Path, trust_domain: &str) -> Result<Pki, String> {
        let kek = work.join("kek");
        let dir = work.join("ca");
        write_private(&kek, &hex::encode(rand::random::<[u8; 32]>()))?;
        run(
            &bin,
            &[
                "init".as_ref(),
                "--trust-domain".as_ref(),
                trust_domain.as_ref(),
                "--dir".as_ref(),
                dir.as_os_str(),
                "--kek-file".as_ref(),
                kek.as_os_str(),
            ],
        )?;
        let config = work.join("pki.toml");
        let toml_path = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        write_file(
            &config,
            &format!(
                "listen = \"127.0.0.1:0\"\nca_dir = {}\nkek_file = {}\n",
                toml_path(&dir),
                toml_path(&kek)
            ),
        )?;
        let log = work.join("ca.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args(["serve".as_ref(), "--config".as_ref(), config.as_os_str()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut pki = Pki {
            bin,
            dir,
            kek,
            addr: String::new(),
            child,
        };
        pki.addr = pki.wait_ready(&log)?;
        Ok(pki)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<String, String> {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(f) = std::fs::File::open(log) {
                let lines = BufReader::new(f).lines().map_while(Result::ok);
                for line in lines {
                    if let Some(addr) = line.strip_prefix("ready https://") {
                        return Ok(addr.trim().to_string());
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!(
                    "the CA (rampart-pki serve) exited ({status}): {}",
                    text.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the CA printed no ready line in {} within 20 s",
            log.display()
        ))
    }

    /// A one-time join token for `id`, valid `ttl`.
    pub fn token(&self, id: &str, ttl: &str) -> Result<String, String> {
        let out = run(
            &self.bin,
            &[
                "token".as_ref(),
                "create".as_ref(),
                "--dir".as_ref(),
                self.dir.as_os_str(),
                "--id".as_ref(),
                id.as_ref(),
                "--ttl".as_ref(),
                ttl.as_ref(),
            ],
        )?;
        Ok(out.trim().to_string())
    }

    /// `rampart-pki issue`: an SVID for `id` valid `ttl`, written to `PREFIX.pem` (chain) and
    /// `PREFIX.key` (0600), signed by the current intermediate.
    pub fn issue(&self, id: &str, ttl: &str, prefix: &Path) -> Result<(), String> {
        run(
            &self.bin,
            &[
                "issue".as_ref(),
                "--dir".as_ref(),
                self.dir.as_os_str(),
                "--spiffe-id".as_ref(),
                id.as_ref(),
                "--ttl".as_ref(),
                ttl.as_ref(),
                "--out".as_ref(),
                prefix.as_os_str(),
                "--kek-file".as_ref(),
                self.kek.as_os_str(),
            ],
        )
        .map(drop)
    }

    /// `rampart-pki rotate intermediate`: a new intermediate now, through the running
    /// service's admin socket. Returns what the CA says it did.
    pub fn rotate_intermediate(&self) -> Result<String, String> {
        run(
            &self.bin,
            &[
                "rotate".as_ref(),
                "intermediate".as_ref(),
                "--dir".as_ref(),
                self.dir.as_os_str(),
            ],
        )
    }

    /// Stops the service (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The binary, for printed commands.
    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        self.stop();
    }
}
