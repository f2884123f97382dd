//! Test harness: the real binary on loopback port 0 (its ready line names the bound ports), a
//! test upstream, TLS clients.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

/// The demo binary's CA: test certificates come from the code the demo runs.
#[path = "../../src/bin/rampart-proxy-demo/ca.rs"]
mod demo_ca;
/// The demo's config sections: test configs are built from them.
#[path = "../../src/bin/rampart-proxy-demo/config.rs"]
mod demo_config;
use demo_ca::EphemeralCa;
#[allow(unused_imports)] // each test file uses some of them
pub use demo_config::{edge_listeners, route_table, route_to, tls_listener};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A loopback port that refuses connections for as long as this lives: bound, never listening
/// (nobody else can take it meanwhile; a connect gets a reset).
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl RefusedPort {
    pub fn new() -> RefusedPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let port = socket.local_addr().unwrap().port();
        RefusedPort {
            _socket: socket,
            port,
        }
    }
}

pub fn install_provider() {
    rampart_proxy::tls::install_crypto_provider();
}

/// How long a reload may take to be reported: it compiles the WAF rules, seconds of CPU in a
/// debug build on a loaded machine.
pub const RELOAD_WAIT: Duration = Duration::from_secs(90);

/// The config head `config check` and `audit dnssec` tests start from (a plain listener `web`
/// and an upstream `app`; never run), as a literal for `concat!`.
#[macro_export]
macro_rules! web_and_app {
    () => {
        r#"
[[listeners]]
name = "web"
address = "127.0.0.1:18080"
insecure_plaintext = true

[[upstreams]]
name = "app"
endpoints = ["127.0.0.1:9000"]
"#
    };
}

/// A running `rampart-proxy run`.
pub struct Edge {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub stderr: Arc<Mutex<String>>,
    pub config_path: PathBuf,
    /// The bound addresses from the ready line: `listener.<name>` and `admin`.
    pub bound: HashMap<String, SocketAddr>,
}

/// The bound addresses a ready line names (`rampart-proxy: ready listener.https=127.0.0.1:41443
/// … admin=127.0.0.1:41911`), by key.
pub fn ready_addresses(line: &str) -> HashMap<String, SocketAddr> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, addr)| {
            let addr = addr
                .parse()
                .unwrap_or_else(|e| panic!("ready line: `{key}={addr}`: {e}: {line}"));
            (key.to_string(), addr)
        })
        .collect()
}

impl Edge {
    /// The port the listener `name` was bound to (configs give port 0).
    pub fn port(&self, name: &str) -> u16 {
        self.address(&format!("listener.{name}")).port()
    }

    /// The admin listener's port.
    pub fn admin(&self) -> u16 {
        self.address("admin").port()
    }

    fn address(&self, key: &str) -> SocketAddr {
        *self
            .bound
            .get(key)
            .unwrap_or_else(|| panic!("no `{key}` in the ready line: {:?}", self.bound))
    }

    /// One request to the `https` listener, trusting `ca_pem` (see [`https_response`]).
    pub async fn send(&self, ca_pem: &str, sni: &str, request: &str) -> Resp {
        https_response(self.port("https"), sni, ca_pem, request).await
    }

    /// Writes `config` to a temp dir (with `files`), starts the binary, waits for "ready".
    pub fn start(config: &str, dir: tempfile::TempDir) -> Edge {
        let config_path = dir.path().join("rampart.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-proxy"))
            .args(["run", "--config"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let buf = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains("rampart-proxy: ready") {
                    let _ = tx.send(ready_addresses(&line));
                }
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        let Ok(bound) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("edge not ready; stderr:\n{}", stderr.lock().unwrap());
        };
        Edge {
            child,
            dir,
            stderr,
            config_path,
            bound,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits until stderr contains `needle` (count occurrences >= n).
    pub fn wait_stderr(&self, needle: &str, n: usize) {
        self.wait_stderr_within(needle, n, Duration::from_secs(15))
    }

    /// `wait_stderr` with its own deadline (a reload compiles the WAF rules: seconds of CPU in
    /// a debug build on a loaded machine).
    pub fn wait_stderr_within(&self, needle: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr.lock().unwrap().matches(needle).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no `{needle}` x{n} in stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Access log lines (JSON), waiting until at least `n` are present.
    pub fn access_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.path("access.log")).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test PKI written to `dir`: a CA and leaves; returns paths.
pub struct Pki {
    pub ca: EphemeralCa,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca = EphemeralCa::new(name).unwrap();
        let ca_pem = ca.cert_pem();
        Pki { ca, ca_pem }
    }

    /// Writes `<stem>.pem` and `<stem>.key` for `names` into `dir`.
    pub fn leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let (c, k) = self.ca.issue(names).unwrap();
        let cp = dir.join(format!("{stem}.pem"));
        let kp = dir.join(format!("{stem}.key"));
        std::fs::write(&cp, c).unwrap();
        std::fs::write(&kp, k).unwrap();
        (cp, kp)
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends raw bytes over plain TCP and reads to EOF.
pub async fn raw(port: u16, request: &str) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

pub fn client_config(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(cfg)
}

/// TLS handshake result: Ok((version, peer leaf DER)) or the error text.
pub async fn handshake(
    port: u16,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    handshake_from(LOOPBACK, port, sni, cfg).await
}

/// The client address of the tests' connections.
pub const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// [`handshake`] from another loopback address (`127.0.0.2`: another client for per-IP limits).
pub async fn handshake_from(
    source: std::net::IpAddr,
    port: u16,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let tcp = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// One HTTPS/1.1 request with `Connection: close`.
pub async fn https(port: u16, sni: &str, ca_pem: &str, request: &str) -> Result<Resp, String> {
    https_from(LOOPBACK, port, sni, ca_pem, request).await
}

/// [`https`] that must get a response: a transport error fails the test, naming the request.
pub async fn https_response(port: u16, sni: &str, ca_pem: &str, request: &str) -> Resp {
    https(port, sni, ca_pem, request)
        .await
        .unwrap_or_else(|e| panic!("{sni}: {request:?}: {e}"))
}

/// [`https`] from another loopback address.
pub async fn https_from(
    source: std::net::IpAddr,
    port: u16,
    sni: &str,
    ca_pem: &str,
    request: &str,
) -> Result<Resp, String> {
    let cfg = client_config(
        ca_pem,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[b"http/1.1"],
    );
    let mut s = handshake_from(source, port, sni, cfg).await?;
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if !buf.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("timeout".into()),
    }
    Ok(parse_response(&buf))
}

pub fn get(host: &str, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n")
}

/// The test upstream: careless headers, a bare cookie, echoes forwarding headers in the body.
/// `/csp` sends its own CSP; `/cookies` sends several cookies.
pub async fn start_upstream() -> SocketAddr {
    rampart_ops::testing::serve_loopback(serve_upstream_conn).await
}

pub async fn serve_upstream_conn<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
) {
    let mut buf = vec![0u8; 65536];
    let mut len = 0;
    loop {
        let end = loop {
            if let Some(p) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match s.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => len += n,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.copy_within(end..len, 0);
        len -= end;
        // Skip a Content-Length body (the bench mix posts forms and JSON).
        let mut body_left: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while body_left > 0 {
            if len == 0 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => len = n,
                }
            }
            let take = body_left.min(len);
            buf.copy_within(take..len, 0);
            len -= take;
            body_left -= take;
        }
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        if path.starts_with("/slow") {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        }
        let mut extra = String::new();
        if path.starts_with("/csp") {
            extra.push_str("Content-Security-Policy: default-src 'self' upstream.example\r\n");
        }
        if path.contains("/cookies") {
            extra.push_str("Set-Cookie: __Host-id=1; Domain=example.com; Path=/x\r\nSet-Cookie: csrf=tok; Path=/\r\nSet-Cookie: strictone=1; SameSite=Strict\r\n");
        }
        let body = head.replace("\r\n", "\n");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nServer: Apache/2.2\r\nX-Powered-By: PHP/5.3\r\nX-AspNet-Version: 4.0\r\nX-Runtime: 0.1\r\nX-Drupal-Cache: HIT\r\nSet-Cookie: session=abc; Path=/\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Rate and connection limits far above what the functional tests send from 127.0.0.1 (the
/// protection tests set their own).
pub const GENEROUS_LIMITS: &str = r#"
[protect.rate_limit]
default = { requests = 100000, burst = 100000 }
[protect.connections]
max_per_ip = 100000
new_per_ip = { requests = 100000, burst = 100000 }
"#;

/// A basic edge config: one intermediate TLS listener `https`, one plain `http` (redirect to
/// port 443), admin, each on loopback port 0; a route to `upstream`.
pub struct Basic;

impl Basic {
    pub fn new() -> Basic {
        Basic
    }

    pub fn config(&self, upstream: SocketAddr, extra_route: &str) -> String {
        self.config_with(upstream, extra_route, GENEROUS_LIMITS)
    }

    /// `config` with `protect` (top-level tables: `[limits]`, `[protect.*]`, `[waf]`) in place
    /// of the generous limits the functional tests use.
    pub fn config_with(&self, upstream: SocketAddr, extra_route: &str, protect: &str) -> String {
        format!(
            r#"
{head}{protect}
{listeners}[[upstreams]]
name = "app"
endpoints = ["{upstream}"]
connect_timeout_ms = 500
[[upstreams]]
name = "dead"
endpoints = ["127.0.0.1:1"]
connect_timeout_ms = 500
[[routes]]
name = "app"
hosts = ["app.test", "*.app.test"]
upstream = "app"
[routes.cookies]
http_only_exceptions = ["csrf"]
[[routes]]
name = "dead"
hosts = ["dead.test"]
upstream = "dead"
{extra_route}
"#,
            head = config_head("trusted_proxies = [\"10.0.0.0/8\"]"),
            listeners = edge_listeners(0, 0),
        )
    }
}

/// What most edge tests start from: the test upstream, a CA with the edge's leaf
/// (`edge.pem`/`edge.key`, for `names`) in a fresh folder, and a [`Basic`] config.
pub async fn bench(name: &str, names: &[&str]) -> (SocketAddr, Pki, tempfile::TempDir, Basic) {
    let upstream = start_upstream().await;
    let pki = Pki::new(name);
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", names);
    (upstream, pki, dir, Basic::new())
}

/// The sections every test edge starts with: `[server]` with one worker thread (and `server`,
/// more `[server]` lines), `[admin]` on loopback port 0, the access log in the config's folder.
pub fn config_head(server: &str) -> String {
    format!(
        "[server]\nthreads = 1\n{server}\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [log]\naccess_log = \"access.log\"\n"
    )
}

/// Admin GET.
pub async fn admin(port: u16, path: &str) -> Resp {
    raw(port, &format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n")).await
}
