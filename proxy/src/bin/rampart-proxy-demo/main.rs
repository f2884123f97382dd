//! `rampart-proxy-demo`: a careless app on loopback behind the edge, with an ephemeral CA, so an
//! operator sees in one command what the edge changes. A binary of its own: none of this is in
//! the production library.
#![forbid(unsafe_code)]

mod ca;
mod config;

use ca::{write_private, EphemeralCa};
use clap::Parser;
use rampart_proxy::control::server;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(
    name = "rampart-proxy-demo",
    version,
    about = "Run the Rampart edge on loopback in front of a careless app"
)]
struct Cli {
    /// Directory for the demo's CA, certificates, config and logs (a temp dir by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Loopback port of the edge's TLS listener (each port: 0 for one the kernel picks; the
    /// printed commands use the bound ports).
    #[arg(long, default_value_t = Ports::DEFAULT.tls)]
    tls_port: u16,
    /// Loopback port of the plain listener (it redirects to https).
    #[arg(long, default_value_t = Ports::DEFAULT.http)]
    http_port: u16,
    /// Loopback port of the admin endpoint (/metrics).
    #[arg(long, default_value_t = Ports::DEFAULT.admin)]
    admin_port: u16,
}

fn main() -> ExitCode {
    rampart_ops::logging::init("RAMPART_LOG", rampart_proxy::control::server::DEFAULT_LOG);
    let cli = Cli::parse();
    let ports = Ports {
        tls: cli.tls_port,
        http: cli.http_port,
        admin: cli.admin_port,
    };
    match run(cli.dir, ports) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-proxy-demo: error: {e}");
            ExitCode::FAILURE
        }
    }
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
                // The request head, parsed by httparse once complete.
                let (end, seen) = loop {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(&buf[..len]) {
                        Ok(httparse::Status::Complete(end)) => {
                            break (end, forwarding_headers(request.headers));
                        }
                        Ok(httparse::Status::Partial) if len < buf.len() => {}
                        _ => return,
                    }
                    match s.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                };
                buf.copy_within(end..len, 0);
                len -= end;
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

/// The forwarding headers (and Host) the edge sent, one indented line each.
fn forwarding_headers(headers: &[httparse::Header<'_>]) -> String {
    headers
        .iter()
        .filter(|h| {
            let name = h.name.to_ascii_lowercase();
            [
                "x-forwarded",
                "forwarded",
                "x-real-ip",
                "x-request-id",
                "host",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        })
        .map(|h| format!("  {}: {}\n", h.name, String::from_utf8_lossy(h.value)))
        .collect()
}

/// Starts the careless app on an ephemeral loopback port; returns its address.
fn start_careless_app() -> Result<std::net::SocketAddr, String> {
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
struct Ports {
    tls: u16,
    http: u16,
    admin: u16,
}

impl Ports {
    /// What the demo uses unless told otherwise (README, docs/proxy.md).
    const DEFAULT: Ports = Ports {
        tls: 8443,
        http: 8080,
        admin: 9901,
    };
}

fn run(dir: Option<PathBuf>, ports: Ports) -> Result<(), String> {
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
        r#"# Generated by `rampart-proxy-demo`.
[admin]
address = "127.0.0.1:{admin}"

[log]
access_log = "access.log"

{listeners}
{route}# The WAF inspects request line, headers, cookies, query and the first 128 KiB of the body
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
# Low so one curl loop shows a 429 even on a slow machine; production: see examples/rampart.toml.
default = {{ requests = 1, per_seconds = 1, burst = 20 }}
[protect.connections]
max_connections = 10000
max_per_ip = 64
new_per_ip = {{ requests = 200, burst = 400 }}
[protect.shed]
max_in_flight = 4096
[protect.slow_clients]
header_timeout_secs = 10
"#,
        listeners = config::edge_listeners(tls, http),
        route = config::route_to("app", "careless-app", &app.to_string(), r#"["*"]"#),
    );
    let config_path = dir.join("rampart.toml");
    std::fs::write(&config_path, config).map_err(io)?;
    // Bound before the commands are printed: a port given as 0 is the kernel's choice.
    let loaded = rampart_proxy::config::load(&config_path).map_err(|e| e.to_string())?;
    let shared = server::prepare(&config_path, loaded).map_err(|e| e.to_string())?;
    let port = |name: &str| {
        let bound = &shared.bound.listeners;
        bound
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, a)| a.port())
    };
    let (tls, http) = (port("https"), port("http"));
    let admin = shared.bound.admin.map_or(admin, |a| a.port());
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
Rate limit (burst 20, then 1/s; over it 429 with Retry-After):
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
    server::run_prepared(shared).map_err(|e| e.to_string())
}
