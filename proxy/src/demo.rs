//! `rampart-proxy demo`: a careless app on loopback behind the edge, with an ephemeral CA, so an
//! operator sees in one command what the edge changes.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA that signs server certificates (PEM).
pub struct EphemeralCa {
    ca: rcgen::CertifiedIssuer<'static, KeyPair>,
}

impl EphemeralCa {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, CA_LIFETIME);
        let ca = rcgen::CertifiedIssuer::self_signed(params, key)?;
        Ok(EphemeralCa { ca })
    }

    pub fn cert_pem(&self) -> String {
        self.ca.pem()
    }

    /// A leaf for `names` (DNS names or IP addresses): (chain PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_LIFETIME);
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The demo CA lives a quarter at most (S.N.2); its leaves a month, well under the 90 days that
/// TLS checkers (sslyze's Mozilla profiles) accept, instead of rcgen's default of year 4096.
const CA_LIFETIME: time::Duration = time::Duration::days(90);
const LEAF_LIFETIME: time::Duration = time::Duration::days(30);

/// Valid from an hour ago (clock skew) for `lifetime`.
fn set_validity(params: &mut CertificateParams, lifetime: time::Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + lifetime;
}

/// Writes a file readable only by the owner (keys).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// The careless app: leaks its stack, sets a bare cookie, sends no security headers.
async fn careless_app(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16384];
            let mut len = 0;
            loop {
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    if len == buf.len() {
                        return;
                    }
                }
                let end = buf[..len]
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(0)
                    + 4;
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.copy_within(end..len, 0);
                len -= end;
                let seen: String = head
                    .lines()
                    .filter(|l| {
                        let l = l.to_ascii_lowercase();
                        l.starts_with("x-forwarded")
                            || l.starts_with("forwarded")
                            || l.starts_with("x-real-ip")
                            || l.starts_with("x-request-id")
                            || l.starts_with("host")
                    })
                    .map(|l| format!("  {l}\n"))
                    .collect();
                let body = format!("Hello from the careless demo app.\nForwarding headers it received from the edge:\n{seen}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nServer: Apache/2.2.15 (CentOS)\r\nX-Powered-By: PHP/5.3.3\r\nX-AspNet-Version: 4.0.30319\r\nSet-Cookie: session=d3m0s3ss10n; Path=/\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if s.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts the careless app on an ephemeral loopback port; returns its address.
pub fn start_careless_app() -> Result<std::net::SocketAddr, String> {
    let std_listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("demo app: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("demo-app".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(l) = tokio::net::TcpListener::from_std(std_listener) {
                    careless_app(l).await;
                }
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(addr)
}

/// Where the demo's edge listens, all on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub tls: u16,
    pub http: u16,
    pub admin: u16,
}

impl Ports {
    /// What `rampart-proxy demo` uses unless told otherwise (README, docs/proxy.md).
    pub const DEFAULT: Ports = Ports {
        tls: 8443,
        http: 8080,
        admin: 9901,
    };
}

pub fn run(dir: Option<PathBuf>, ports: Ports) -> Result<(), String> {
    let Ports { tls, http, admin } = ports;
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rampart-demo-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("demo certificates: {e}");
    let ca = EphemeralCa::new("Rampart demo CA (ephemeral)").map_err(err)?;
    let (chain, key) = ca.issue(&["localhost", "127.0.0.1"]).map_err(err)?;
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let ca_path = dir.join("demo-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).map_err(io)?;
    std::fs::write(dir.join("edge.pem"), chain).map_err(io)?;
    write_private(&dir.join("edge.key"), &key).map_err(io)?;
    let app = start_careless_app()?;
    let config = format!(
        r#"# Generated by `rampart-proxy demo`.
[admin]
address = "127.0.0.1:{admin}"

[log]
access_log = "access.log"

[[listeners]]
name = "https"
address = "127.0.0.1:{tls}"
[listeners.tls]
profile = "intermediate"
[[listeners.tls.certificates]]
cert = "edge.pem"
key = "edge.key"

[[listeners]]
name = "http"
address = "127.0.0.1:{http}"
redirect_https_port = {tls}

[[upstreams]]
name = "careless-app"
endpoints = ["{app}"]

[[routes]]
name = "app"
hosts = ["*"]
upstream = "careless-app"
# The WAF inspects request line, headers, cookies, query and the first 128 KiB of the body
# before anything is forwarded; at paranoia 1 a score of 5 blocks with 403.
[routes.waf]
mode = "block"
paranoia = 1
threshold = 5
inspect_limit = 131072
max_body = 10485760

# Head limits: 414 / 431.
[limits]
max_header_bytes = 32768
max_headers = 100
max_uri_bytes = 8192

# DoS defences (S.N.4): per-client rate limits (429 + Retry-After), connection caps before
# TLS, slow-client deadlines, h2 stream limits, load shedding (503).
[protect.rate_limit]
# Low so the demo shows a 429 from one curl loop; production: see examples/rampart.toml.
default = {{ requests = 5, per_seconds = 1, burst = 20 }}
[protect.connections]
max_connections = 10000
max_per_ip = 64
new_per_ip = {{ requests = 200, burst = 400 }}
[protect.shed]
max_in_flight = 4096
[protect.slow_clients]
header_timeout_secs = 10
"#
    );
    let config_path = dir.join("rampart.toml");
    std::fs::write(&config_path, config).map_err(io)?;
    let ca = ca_path.display();
    println!(
        r#"Rampart demo
  careless app (direct):  http://{app}/
  edge (TLS):             https://127.0.0.1:{tls}/   CA file: {ca}
  edge (plain, redirect): http://127.0.0.1:{http}/
  admin:                  http://127.0.0.1:{admin}/metrics
  config:                 {cfg}
  access log:             {log}

What the app sends (stack leaks, bare cookie, no security headers):
  curl -si http://{app}/
What the edge sends instead:
  curl -si --cacert {ca} https://127.0.0.1:{tls}/
Edge error page (404 from the edge is hardened too), and the https redirect:
  curl -si --cacert {ca} https://127.0.0.1:{tls}/ -H 'Host: unknown.example' ; curl -si http://127.0.0.1:{http}/x
The WAF blocks an SQL injection (403 naming the request id; the log line says which rule):
  curl -si --cacert {ca} 'https://127.0.0.1:{tls}/?q=1%27%20OR%201=1--' ; sleep 0.5 ; tail -n1 {log}
Rate limit (burst 20, then 5/s; over it 429 with Retry-After):
  for i in $(seq 40); do curl -s -o /dev/null -w '%{{http_code}} ' --cacert {ca} https://127.0.0.1:{tls}/; done; echo
Denials by reason, route and rule family:
  curl -s http://127.0.0.1:{admin}/metrics | grep rampart_denials_total
Spoofed forwarding headers are replaced:
  curl -s --cacert {ca} https://127.0.0.1:{tls}/ -H 'X-Forwarded-For: 6.6.6.6'
HTTP/2, metrics, and the JSON access log (token value redacted):
  curl -s --http2 --cacert {ca} -o /dev/null -w '%{{http_version}}\n' 'https://127.0.0.1:{tls}/?token=s3cret'
  curl -s http://127.0.0.1:{admin}/metrics | grep rampart_requests_total ; sleep 0.5 ; tail -n1 {log}
Stop with Ctrl-C.
"#,
        cfg = config_path.display(),
        log = dir.join("access.log").display(),
    );
    crate::server::run(&config_path)
}
