//! Test kit: a throwaway CA (rcgen), the real sidecar binary with a deadline, apps on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod fixtures;
pub mod netns;

pub use fixtures::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use rampart_sidecar::pki_process::Pki;

use rampart_tls::{provider, BundleHandle, PeerPolicy, SpiffeServerVerifier};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use time::OffsetDateTime;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct TestCa {
    pub root_pem: String,
    pub root_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("test root {name}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        TestCa {
            root_pem: cert.pem(),
            root_der: cert.der().clone(),
            issuer: Issuer::new(p, key),
        }
    }

    pub fn leaf(&self, uris: &[&str]) -> Leaf {
        self.leaf_valid(
            uris,
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
    }

    pub fn leaf_valid(&self, uris: &[&str], nb: OffsetDateTime, na: OffsetDateTime) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI(rcgen::string::Ia5String::try_from(*u).unwrap()))
            .collect();
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = nb;
        p.not_after = na;
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    pub fn bundle(&self) -> BundleHandle {
        BundleHandle::new(
            rampart_tls::spiffe::TrustDomain::parse("mesh.local").unwrap(),
            vec![self.root_der.clone()],
        )
        .unwrap()
    }
}

/// A client config presenting `leaf` (any certificate, valid or not) or none.
pub fn client_config(ca: &TestCa, leaf: Option<&Leaf>) -> Arc<ClientConfig> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
            ca.bundle(),
            PeerPolicy::AnyInTrustDomain,
        )));
    Arc::new(match leaf {
        Some(l) => b
            .with_client_auth_cert(l.chain.clone(), l.key.clone_key())
            .unwrap(),
        None => b.with_no_client_auth(),
    })
}

/// Writes an SVID's files into `dir` (`NAME.pem`, `NAME.key`).
pub fn write_leaf(dir: &Path, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (cert, key)
}

/// How long building `rampart-pki` may take on a cold, loaded machine.
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// The `rampart-pki` binary: `RAMPART_PKI_BIN` when set, else the one beside rampart-sidecar in
/// the target folder, else built there once with `cargo build -p rampart-pki --bin rampart-pki`,
/// so `cargo test -p rampart-sidecar` works on a clean checkout. (After changing pki/, rebuild
/// it: `cargo build -p rampart-pki --bin rampart-pki`.) A build that fails or outlasts its
/// deadline fails the test with the reason.
pub fn pki_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os(rampart_sidecar::pki_process::ENV) {
            return PathBuf::from(p);
        }
        let out_dir = Path::new(env!("CARGO_BIN_EXE_rampart-sidecar"))
            .parent()
            .unwrap();
        let target_dir = out_dir.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "rampart-pki",
            "--bin",
            "rampart-pki",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null());
        if out_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let mut child = cmd.spawn().expect("run cargo to build rampart-pki");
        let end = Instant::now() + BUILD_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("building rampart-pki took more than {BUILD_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            status.success(),
            "cargo build -p rampart-pki failed: {status}"
        );
        let bin = out_dir.join("rampart-pki");
        assert!(bin.is_file(), "no {} after the build", bin.display());
        bin
    })
    .clone()
}

/// A CA for `trust_domain` from the real `rampart-pki` binary, in `work/ca`, serving on loopback.
pub fn start_pki(work: &Path, trust_domain: &str) -> Pki {
    Pki::start(pki_bin(), work, trust_domain).unwrap_or_else(|e| panic!("CA: {e}"))
}

/// The real binary, its log lines on a channel, killed on drop.
pub struct Sidecar {
    pub child: Child,
    pub lines: mpsc::Receiver<Value>,
    pub ready: Value,
    seen: Vec<Value>,
}

impl Sidecar {
    pub fn start(config: &Path) -> Sidecar {
        Self::start_with(&[], config)
    }

    /// Starts the sidecar under a command prefix (`ip netns exec NS setpriv …`).
    pub fn start_with(prefix: &[&str], config: &Path) -> Sidecar {
        let bin = env!("CARGO_BIN_EXE_rampart-sidecar");
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend([bin, "run", "--config", config.to_str().unwrap()]);
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rampart-sidecar");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => Value::String(line),
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut s = Sidecar {
            child,
            lines: rx,
            ready: Value::Null,
            seen: Vec::new(),
        };
        s.ready = s.wait_for(|v| v["event.name"] == "rampart.sidecar.ready", "ready line");
        s
    }

    pub fn addr(&self, key: &str) -> SocketAddr {
        self.ready[format!("rampart.listen.{key}")]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.ready))
            .parse()
            .unwrap()
    }

    /// Waits (deadline) for a log line matching `pred`; lines seen earlier count too.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        self.wait_next(pred, what)
    }

    /// Waits (deadline) for a log line matching `pred` among the lines not read yet.
    pub fn wait_next(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the sidecar exited before {what}; lines seen: {:#?}",
                        self.seen
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {what} within {DEADLINE:?}; lines seen: {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    pub fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP echo app on loopback.
pub async fn echo_app() -> SocketAddr {
    rampart_ops::testing::serve_loopback(|mut s| async move {
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

/// An HTTP app on loopback that answers with what it received: `xfcc=…;path=…`.
pub async fn http_app() -> SocketAddr {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    rampart_ops::testing::serve_loopback(|s| async move {
        let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let xfcc: Vec<String> = req
                .headers()
                .get_all("x-forwarded-client-cert")
                .iter()
                .map(|v| v.to_str().unwrap_or("").to_string())
                .collect();
            let body = format!("xfcc={};path={}", xfcc.join("|"), req.uri().path());
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(bytes::Bytes::from(
                body,
            ))))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(s), svc)
            .await;
    })
    .await
}

/// A TLS connection to a sidecar's inbound port with `cfg` (the server name is not checked:
/// mesh peers are authenticated by SPIFFE ID).
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(
            rustls_pki_types::ServerName::try_from("payments").unwrap(),
            tcp,
        )
        .await
}

/// The body of a GET on the admin listener.
pub async fn admin_get(addr: SocketAddr, path: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    String::from_utf8_lossy(
        &http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .into_owned()
}

/// Writes a sidecar fronting `id` with SVID files from `ca` into `dir` (`svid.pem`/`.key`,
/// `bundle.pem`, `policy.toml`, `directory.toml`) and its `sidecar.toml`: service `service`,
/// admin on a free loopback port, then `body` (ports, limits, outbound listeners). Returns the
/// config's path.
pub fn write_files_sidecar(
    dir: &Path,
    ca: &TestCa,
    (service, id): (&str, &str),
    policy: &str,
    directory: &str,
    body: &str,
) -> PathBuf {
    write_leaf(dir, "svid", &ca.leaf(&[id]));
    std::fs::write(dir.join("bundle.pem"), &ca.root_pem).unwrap();
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    std::fs::write(dir.join("directory.toml"), directory).unwrap();
    let config = dir.join("sidecar.toml");
    let body = format!("admin = {{ listen = \"127.0.0.1:0\" }}\n\n{body}");
    std::fs::write(&config, sidecar_toml(service, SVID_FILES, &body)).unwrap();
    config
}

/// The identity of `id` from the CA at `addr` (`ca/bundle.pem`, join token in `token`, state in
/// `state`), asking for SVIDs of `ttl_secs`.
pub fn ca_identity(addr: &str, id: &str, ttl_secs: u64) -> String {
    format!("{{ ca = \"https://{addr}\", spiffe_id = \"{id}\", bundle = \"ca/bundle.pem\", token_file = \"token\", state_dir = \"state\", ttl_secs = {ttl_secs} }}")
}

/// Waits (deadline) until the admin `/metrics` holds `needle`; returns the text.
pub async fn wait_metric(admin: SocketAddr, needle: &str) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        let text = admin_get(admin, "/metrics").await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "no `{needle}` in /metrics within {DEADLINE:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `msg` on an established connection and expects it echoed back (deadline).
pub async fn echo_roundtrip<S>(s: &mut S, msg: &[u8]) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(msg).await?;
    s.flush().await?;
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut back))
        .await
        .map_err(|_| std::io::Error::other("no echo in time"))??;
    if back != msg {
        return Err(std::io::Error::other("echo differs"));
    }
    Ok(())
}

/// Reads until the peer closes (or fails); `Err` if it is still open after `within`.
pub async fn closed_within<S>(s: &mut S, within: Duration) -> Result<Duration, String>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .map_err(|_| format!("still open after {within:?}"))?;
    Ok(start.elapsed())
}

/// Fails, showing `text` (e.g. a `/metrics` exposition), unless every one of `needles` is in it.
pub fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
