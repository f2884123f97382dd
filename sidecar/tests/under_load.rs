//! Rotation and reload under load: continuous mTLS requests (new connections and keep-alive)
//! while the sidecar's leaf is renewed every few hundred milliseconds, the root rotated, and
//! the policy reloaded again and again — zero failed requests; then a bad policy file
//! changes nothing. Bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rampart_tls::{BundleHandle, PeerPolicy, TrustDomain};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use support::*;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const FRONTEND: &str = "spiffe://mesh.local/ns/shop/sa/frontend";
const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";

fn policy(extra_rule: bool) -> String {
    let mut p = format!(
        "[[inbound]]\nname = \"api\"\nports = [8080]\n\n[[inbound.rule]]\nname = \"frontend-reads\"\ncallers = [\"{FRONTEND}\"]\nmethods = [\"GET\"]\n"
    );
    if extra_rule {
        p.push_str("\n[[inbound.rule]]\nname = \"batch\"\ncallers = [\"spiffe://mesh.local/ns/batch/sa/nightly\"]\n");
    }
    p
}

/// Writes a file the way an agent should: to a temporary name, then renamed into place.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A client that trusts the old and the new root and presents the frontend's SVID.
fn client(old: &TestCa, new: &TestCa) -> Arc<ClientConfig> {
    let leaf = old.leaf(&[FRONTEND]);
    let bundle = BundleHandle::new(
        TrustDomain::parse("mesh.local").unwrap(),
        vec![old.root_der.clone(), new.root_der.clone()],
    )
    .unwrap();
    let me =
        rampart_tls::Identity::new(leaf.chain.clone(), leaf.key.secret_der().to_vec()).unwrap();
    rampart_tls::client_config(Some(&me), &bundle, PeerPolicy::AnyInTrustDomain).unwrap()
}

/// Four workers sending requests (see [`worker`]) until [`Load::finish`].
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

impl Load {
    fn start(addr: std::net::SocketAddr, cfg: Arc<ClientConfig>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let workers = (0..4)
            .map(|_| {
                let w = worker(
                    addr,
                    cfg.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    errors.clone(),
                );
                tokio::spawn(w)
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            errors,
            workers,
            started: Instant::now(),
        }
    }

    /// Stops the workers; asserts no request failed and enough went through. Returns the count.
    async fn finish(self, during: &str) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let errors = self.errors.lock().unwrap().clone();
        assert_eq!(
            failed,
            0,
            "{failed} failed attempts over {:?} and {during}: {errors:?}",
            self.started.elapsed()
        );
        assert!(ok > 200, "only {ok} requests went through");
        ok
    }
}

/// Keeps sending requests until `stop`: each worker opens a connection, sends up to 20
/// keep-alive requests, then opens a new one (so handshakes see each new certificate).
async fn worker(
    addr: std::net::SocketAddr,
    cfg: Arc<ClientConfig>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) && sent < 20_000 {
        let attempt = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let tls = TlsConnector::from(cfg.clone())
                .connect(ServerName::try_from("payments").unwrap(), tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let mut n = 0u64;
            for _ in 0..20 {
                let req = http::Request::get("/v1/x")
                    .header("host", "payments")
                    .body(Empty::<bytes::Bytes>::new())
                    .unwrap();
                let resp = send
                    .send_request(req)
                    .await
                    .map_err(|e| format!("request: {e}"))?;
                let status = resp.status();
                let _ = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("body: {e}"))?;
                if status != 200 {
                    return Err(format!("status {status}"));
                }
                n += 1;
            }
            Ok::<u64, String>(n)
        };
        match timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(n)) => {
                ok.fetch_add(n, Ordering::Relaxed);
                sent += n;
            }
            Ok(Err(e)) => {
                failed.fetch_add(1, Ordering::Relaxed);
                errors.lock().unwrap().push(e);
                sent += 1;
            }
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
                errors.lock().unwrap().push("timeout".into());
                sent += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_root_rotation_and_reloads_under_load_fail_no_request() {
    timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = TestCa::new("old-root");
        let new = TestCa::new("new-root");
        let app = http_app().await;
        write_leaf(d, "svid", &old.leaf(&[PAYMENTS]));
        put(&d.join("bundle.pem"), &old.root_pem);
        put(&d.join("policy.toml"), &policy(false));
        put(&d.join("directory.toml"), "");
        put(
            &d.join("sidecar.toml"),
            &sidecar_toml("payments", SVID_FILES, &http_port(8080, app)),
        );
        let mut sc = Sidecar::start(&d.join("sidecar.toml"));
        let addr = sc.addr("inbound:8080");
        let cfg = client(&old, &new);

        let load = Load::start(addr, cfg.clone());
        let mut reloads = 0;
        for step in 0..12u32 {
            match step {
                // Root rotation: first trust both roots, then serve a leaf of the new root.
                // The callers' leaves are still from the old root, so the bundle keeps both
                // (as a real rotation does until every leaf has moved).
                4 => put(&d.join("bundle.pem"), &format!("{}{}", old.root_pem, new.root_pem)),
                6 => {
                    let leaf = new.leaf(&[PAYMENTS]);
                    put(&d.join("svid.key"), &leaf.key_pem);
                    put(&d.join("svid.pem"), &leaf.chain_pem);
                }
                s if s % 2 == 0 => {
                    // Leaf renewal from the current issuer.
                    let issuer = if s > 6 { &new } else { &old };
                    let leaf = issuer.leaf(&[PAYMENTS]);
                    put(&d.join("svid.key"), &leaf.key_pem);
                    put(&d.join("svid.pem"), &leaf.chain_pem);
                }
                s => put(&d.join("policy.toml"), &policy(s % 4 == 1)),
            }
            // SIGHUP as well as the file watch: each change is loaded before the next one.
            sc.hup();
            reloads += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // A bad policy in the middle of traffic changes nothing.
        put(&d.join("policy.toml"), "[[inbound]]\nname = \"api\"\nports = [8080]\n[[inbound.rule]]\nname = \"by-ip\"\nsources = [\"127.0.0.1\"]\n");
        sc.hup();
        // (The file watch may also have refused a half-written key/certificate pair on the
        // way: that refusal is right too and kept the running SVID.)
        sc.wait_for(
            |v| {
                v["rampart.reload.result"] == "error"
                    && v["error.message"].as_str().is_some_and(|m| m.contains("S.N.10"))
            },
            "reload refused for S.N.10",
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ok = load.finish(&format!("{reloads} changes")).await;
        // The new root's leaf is what new handshakes see now.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = TlsConnector::from(cfg.clone()).connect(ServerName::try_from("payments").unwrap(), tcp).await.unwrap();
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let parsed = rampart_tls::svid::parse(&leaf).unwrap();
        assert!(parsed.issuer().to_string().contains("new-root"), "{}", parsed.issuer());
        eprintln!("under load: {ok} requests, 0 failed, {reloads} changes (leaf renewals, root rotation, policy reloads)");
    })
    .await
    .expect("test deadline");
}

/// The intermediate of the chain a fresh handshake is served.
async fn served_intermediate(addr: std::net::SocketAddr, cfg: Arc<ClientConfig>) -> Vec<u8> {
    let tls = tls_connect(addr, cfg).await.unwrap();
    let chain = tls.get_ref().1.peer_certificates().unwrap();
    assert!(chain.len() >= 2, "the sidecar must send its intermediate");
    chain[1].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_rotation_under_load_fails_no_request() {
    // Built (or found) before the test's own deadline starts: a cold build takes minutes.
    support::pki_bin();
    timeout(Duration::from_secs(300), async {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        // The real CA (rampart-pki serve), a caller SVID it issued, the sidecar on 6 s SVIDs.
        let ca = tokio::task::spawn_blocking(move || {
            let ca = start_pki(&d, "mesh.local");
            ca.issue(FRONTEND, "1h", &d.join("frontend")).unwrap();
            std::fs::write(d.join("token"), ca.token(PAYMENTS, "10m").unwrap()).unwrap();
            ca
        })
        .await
        .unwrap();
        let d = dir.path();
        let app = http_app().await;
        put(&d.join("policy.toml"), &policy(false));
        put(&d.join("directory.toml"), "");
        put(
            &d.join("sidecar.toml"),
            &sidecar_toml("payments", &ca_identity(&ca.addr, PAYMENTS, 6), &http_port(8080, app)),
        );
        let mut sc = Sidecar::start(&d.join("sidecar.toml"));
        let addr = sc.addr("inbound:8080");
        let me = rampart_tls::Identity::load(&d.join("frontend.pem"), &d.join("frontend.key")).unwrap();
        let roots = rampart_identity::certs_from_pem(&std::fs::read_to_string(d.join("ca/bundle.pem")).unwrap()).unwrap();
        let bundle = BundleHandle::new(TrustDomain::parse("mesh.local").unwrap(), roots).unwrap();
        let cfg = rampart_tls::client_config(Some(&me), &bundle, PeerPolicy::AnyInTrustDomain).unwrap();
        let before = served_intermediate(addr, cfg.clone()).await;

        let load = Load::start(addr, cfg.clone());
        let said = ca.rotate_intermediate().unwrap();
        // The sidecar's next renewal (at 2/3 of 6 s) comes from the new intermediate; new
        // handshakes are served it while the callers' leaves of the old one still verify.
        let rotated_at = Instant::now();
        let renewed = |v: &serde_json::Value| v["event.name"] == "rampart.sidecar.certificate_renewed";
        let mut renewals = 0;
        loop {
            tokio::task::block_in_place(|| sc.wait_next(renewed, "renewal"));
            renewals += 1;
            if served_intermediate(addr, cfg.clone()).await != before {
                break;
            }
            assert!(rotated_at.elapsed() < Duration::from_secs(60), "no SVID from the new intermediate within 60 s ({said})");
        }
        // Keep the load on across one more renewal, from the new intermediate.
        tokio::task::block_in_place(|| sc.wait_next(renewed, "renewal after the rotation"));
        let ok = load.finish("an intermediate rotation").await;
        eprintln!("intermediate rotation under load: {ok} requests, 0 failed ({renewals} renewals before the new intermediate was served)");
        drop(ca);
    })
    .await
    .expect("test deadline");
}
