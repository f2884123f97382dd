//! The edge on the built-in CA (the real `rampart-pki` service on loopback, in this process;
//! the real `rampart-proxy` binary): its SVID from a join token, listener certificates from the
//! CA renewed live (and kept while the CA is down, with their seconds-to-expiry exported), and
//! upstreams reached over mTLS with the edge's SVID, each required to present its SPIFFE ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use rampart_pki::ca::{Ca, InitOptions};
use rampart_pki::config::ServeConfig;
use rampart_pki::keystore::{Kek, KeyProtection};
use rampart_tls::spiffe::{SpiffeId, TrustDomain};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const TD: &str = "mesh.local";
const EDGE: &str = "spiffe://mesh.local/edge/front";
const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";
const OTHER: &str = "spiffe://mesh.local/ns/shop/sa/other";
const KEK_HEX: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const NAMES: &str = r#"["www.edge.test", "pay.edge.test", "bad.edge.test"]"#;

/// A CA service on loopback that may issue edge certificates under `edge.test` to `EDGE`.
struct TestCa {
    dir: tempfile::TempDir,
    server: Option<rampart_pki::server::RunningServer>,
    addr: SocketAddr,
}

impl TestCa {
    async fn start() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("kek"), KEK_HEX).unwrap();
        let protection = KeyProtection::Encrypted(Kek::parse(KEK_HEX, "test").unwrap());
        let mut opts = InitOptions::new(TrustDomain::parse(TD).unwrap());
        opts.dns_suffixes = vec!["edge.test".into()];
        Ca::init(&d.join("ca"), &opts, protection).unwrap();
        let cfg = ServeConfig::parse(
            &format!(
                "listen = \"127.0.0.1:0\"\nca_dir = \"{}\"\nkek_file = \"{}\"\n[edge]\nidentities = [\"{EDGE}\"]\n",
                d.join("ca").display(),
                d.join("kek").display()
            ),
            Path::new("pki.toml"),
        )
        .unwrap();
        let server = rampart_pki::server::start(cfg).await.unwrap();
        let addr = server.addr;
        TestCa {
            dir,
            server: Some(server),
            addr,
        }
    }

    fn bundle_path(&self) -> PathBuf {
        self.dir.path().join("ca/bundle.pem")
    }

    fn bundle_pem(&self) -> String {
        std::fs::read_to_string(self.bundle_path()).unwrap()
    }

    fn token(&self, id: &str) -> String {
        rampart_pki::token::TokenStore::open(&self.dir.path().join("ca"))
            .unwrap()
            .create(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600))
            .unwrap()
    }

    async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A mesh workload on loopback with an SVID from the CA: requires a client certificate of the
/// trust domain and answers each request with the caller's SPIFFE ID and certificate serial,
/// closing the connection after it (so every request is a new upstream connection).
async fn mesh_upstream(ca: &TestCa, id: &str) -> SocketAddr {
    let roots = rampart_identity::certs_from_pem(&ca.bundle_pem()).unwrap();
    let settings = rampart_identity::SourceSettings::new(ca.addr, SpiffeId::parse(id).unwrap());
    let source = rampart_identity::SvidSource::bootstrap(settings, roots, &ca.token(id))
        .await
        .unwrap();
    let acceptor = source.mesh().acceptor();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = source;
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) = timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let (caller, serial) = {
                    let conn = tls.get_ref().1;
                    let leaf = conn.peer_certificates().unwrap()[0].clone();
                    (
                        rampart_tls::peer_spiffe_id(conn).unwrap().to_string(),
                        rampart_tls::svid::serial_hex(&leaf).unwrap(),
                    )
                };
                let mut buf = vec![0u8; 16384];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match timeout(Duration::from_secs(5), tls.read(&mut buf[len..])).await {
                        Ok(Ok(n)) if n > 0 => len += n,
                        _ => return,
                    }
                }
                let body = format!("caller={caller}\nserial={serial}\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn edge_config(ca: &TestCa, app: SocketAddr, pay: SocketAddr, bad: SocketAddr) -> String {
    format!(
        r#"
{head}{GENEROUS_LIMITS}
[identity]
ca = "https://{ca}"
spiffe_id = "{EDGE}"
bundle = "{bundle}"
token_file = "token"
ttl_seconds = 6
[[listeners]]
name = "https"
address = "127.0.0.1:0"
[listeners.tls]
[[listeners.tls.certificates]]
from_ca = {{ dns_names = {NAMES}, ttl_seconds = 6 }}
[[upstreams]]
name = "app"
endpoints = ["{app}"]
[[upstreams]]
name = "payments"
endpoints = ["{pay}"]
mtls = {{ spiffe_id = "{PAYMENTS}" }}
[[upstreams]]
name = "imposter"
endpoints = ["{bad}"]
mtls = {{ spiffe_id = "{PAYMENTS}" }}
{app_route}{payments_route}{imposter_route}"#,
        head = config_head(""),
        app_route = route_table("app", r#"["www.edge.test"]"#, "app"),
        payments_route = route_table("payments", r#"["pay.edge.test"]"#, "payments"),
        imposter_route = route_table("imposter", r#"["bad.edge.test"]"#, "imposter"),
        ca = ca.addr,
        bundle = ca.bundle_path().display(),
    )
}

/// Handshakes with the edge (trusting only the CA's bundle, checking the name) and returns the
/// serial of the certificate it served.
async fn served_serial(port: u16, sni: &str, bundle: &str) -> Result<String, String> {
    let cfg = client_config(bundle, &[&rustls::version::TLS13], &[b"http/1.1"]);
    let tls = handshake(port, sni, cfg).await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    Ok(rampart_tls::svid::serial_hex(&leaf).unwrap())
}

/// A value of a metric line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Setup {
    ca: TestCa,
    edge: Edge,
    bundle: String,
}

async fn setup() -> Setup {
    install_provider();
    let ca = TestCa::start().await;
    let app = start_upstream().await;
    let pay = mesh_upstream(&ca, PAYMENTS).await;
    let bad = mesh_upstream(&ca, OTHER).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), ca.token(EDGE)).unwrap();
    let edge = Edge::start(&edge_config(&ca, app, pay, bad), dir);
    let bundle = ca.bundle_pem();
    Setup { ca, edge, bundle }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_certificate_from_the_ca_renews_live_and_outlives_a_ca_outage() {
    timeout(Duration::from_secs(120), async {
        let Setup {
            mut ca,
            edge,
            bundle,
        } = setup().await;
        // Served under the CA's bundle, for its name, and the request goes through.
        let r = edge.send(&bundle, "www.edge.test", &get("www.edge.test", "/", "")).await;
        assert_eq!(r.status, 200, "{r:?}");
        // A connection opened now keeps its certificate across the renewal.
        let cfg = client_config(&bundle, &[&rustls::version::TLS13], &[b"http/1.1"]);
        let mut open = handshake(edge.port("https"), "www.edge.test", cfg).await.unwrap();
        let first = rampart_tls::svid::serial_hex(
            &open.get_ref().1.peer_certificates().unwrap()[0].clone(),
        )
        .unwrap();

        // Renewed at about 2/3 of 6 s: new handshakes get the new certificate.
        let second = eventually(20, "a renewed listener certificate", || async {
            let s = served_serial(edge.port("https"), "www.edge.test", &bundle).await.ok()?;
            (s != first).then_some(s)
        })
        .await;
        open.write_all(get("www.edge.test", "/", "").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = timeout(Duration::from_secs(10), open.read_to_end(&mut buf)).await;
        assert!(
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
            "the open connection still works with its first certificate"
        );

        let m = admin(edge.admin(), "/metrics").await.body;
        let expiry = metric(
            &m,
            "rampart_ca_certificate_expiry_seconds{names=\"www.edge.test,pay.edge.test,bad.edge.test\"}",
        )
        .unwrap_or_else(|| panic!("no expiry gauge: {m}"));
        assert!(expiry > 0.0 && expiry <= 7.0, "{expiry}");
        assert!(
            metric(&m, &format!("rampart_identity_expiry_seconds{{spiffe_id=\"{EDGE}\"}}"))
                .is_some(),
            "{m}"
        );

        // A reload that adds a certificate from the CA obtains it before the new generation is
        // published; the running one keeps its renewal.
        let config = std::fs::read_to_string(&edge.config_path).unwrap();
        let added = config.replacen(
            "[[upstreams]]",
            "[[listeners.tls.certificates]]\nfrom_ca = { dns_names = [\"new.edge.test\"] }\n[[upstreams]]",
            1,
        );
        std::fs::write(&edge.config_path, added).unwrap();
        edge.signal("HUP");
        edge.wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
        let cfg = client_config(&bundle, &[&rustls::version::TLS13], &[b"http/1.1"]);
        let tls = handshake(edge.port("https"), "new.edge.test", cfg).await.unwrap();
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(rampart_tls::svid::dns_names(&leaf), vec!["new.edge.test".to_string()]);
        let m = admin(edge.admin(), "/metrics").await.body;
        assert!(
            metric(&m, "rampart_ca_certificate_expiry_seconds{names=\"new.edge.test\"}")
                .is_some(),
            "{m}"
        );

        // The CA goes away: the renewal fails, the current certificate is still served, and
        // its seconds-to-expiry keep being reported (going down).
        ca.stop().await;
        edge.wait_stderr("edge certificate renewal failed; serving the current one", 1);
        let served = served_serial(edge.port("https"), "www.edge.test", &bundle).await;
        let still = served.expect("still served while the CA is down and the certificate valid");
        assert_ne!(still, first);
        let later = eventually(10, "the expiry gauge going down", || async {
            let m = admin(edge.admin(), "/metrics").await.body;
            let v = metric(
                &m,
                "rampart_ca_certificate_expiry_seconds{names=\"www.edge.test,pay.edge.test,bad.edge.test\"}",
            )?;
            (v < expiry).then_some(v)
        })
        .await;
        assert!(later < expiry);
        let _ = second;
    })
    .await
    .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_upstream_gets_the_edge_svid_and_must_present_its_spiffe_id() {
    timeout(Duration::from_secs(120), async {
        let Setup { ca, edge, bundle } = setup().await;
        // Allowed: the upstream sees the edge's SPIFFE ID.
        let r = edge
            .send(&bundle, "pay.edge.test", &get("pay.edge.test", "/", ""))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains(&format!("caller={EDGE}\n")), "{}", r.body);
        let serial = |body: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix("serial="))
                .unwrap()
                .to_string()
        };
        let first = serial(&r.body);

        // An upstream presenting another SPIFFE ID (same CA, valid chain): 502, nothing sent.
        let r = edge
            .send(&bundle, "bad.edge.test", &get("bad.edge.test", "/", ""))
            .await;
        assert_eq!(r.status, 502, "{r:?}");
        edge.wait_stderr(
            "upstream refused: its certificate failed the SPIFFE checks",
            1,
        );
        let stderr = edge.stderr.lock().unwrap().clone();
        assert!(
            stderr.contains("not_allowed") && stderr.contains(OTHER),
            "the log names the reason and the identity seen: {stderr}"
        );
        let m = admin(edge.admin(), "/metrics").await.body;
        assert_eq!(
            metric(
                &m,
                "rampart_upstream_mtls_refused_total{reason=\"not_allowed\",upstream=\"imposter\"}"
            ),
            Some(1.0),
            "{m}"
        );
        let lines = edge.access_lines(3);
        assert!(
            lines
                .iter()
                .any(|l| l["error.type"] == "upstream_identity_refused"),
            "{lines:?}"
        );

        // The edge's SVID (6 s) is renewed: new upstream connections present the new one.
        let renewed = eventually(20, "the upstream seeing a renewed edge SVID", || async {
            let r = https(
                edge.port("https"),
                "pay.edge.test",
                &bundle,
                &get("pay.edge.test", "/", ""),
            )
            .await
            .ok()?;
            assert_eq!(r.status, 200, "{r:?}");
            assert!(r.body.contains(&format!("caller={EDGE}\n")), "{}", r.body);
            let s = serial(&r.body);
            (s != first).then_some(s)
        })
        .await;
        assert_ne!(renewed, first);
        // The imposter is still refused afterwards (its leaf is not cached as good).
        let r = edge
            .send(&bundle, "bad.edge.test", &get("bad.edge.test", "/", ""))
            .await;
        assert_eq!(r.status, 502, "{r:?}");

        // `rampart-pki revoke --id` on the upstream: the deny-list reaches the edge with its
        // next renewal, and the upstream's (still valid, already verified) certificate is
        // refused from then on.
        let target = rampart_pki::revocation::Target::Id(
            rampart_pki::spiffe::SpiffeId::parse(PAYMENTS).unwrap(),
        );
        let ca_dir = ca.dir.path().join("ca");
        assert!(rampart_pki::revocation::revoke(&ca_dir, &target, "test").unwrap());
        eventually(20, "the revoked upstream refused", || async {
            let get = get("pay.edge.test", "/", "");
            let r = https(edge.port("https"), "pay.edge.test", &bundle, &get)
                .await
                .ok()?;
            (r.status == 502).then_some(())
        })
        .await;
        let m = admin(edge.admin(), "/metrics").await.body;
        let revoked =
            "rampart_upstream_mtls_refused_total{reason=\"revoked\",upstream=\"payments\"}";
        assert!(metric(&m, revoked).is_some_and(|v| v >= 1.0), "{m}");
    })
    .await
    .expect("test deadline");
}
