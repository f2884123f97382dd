//! TLS: SNI selection, per-listener profiles in one process, certificate reload (bad refused,
//! good applied), upstream TLS pool isolation across trust settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::sync::Arc;

fn leaf_names(s: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<String> {
    let der = s.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect()
}

fn two_listener_config(upstream: std::net::SocketAddr) -> String {
    format!(
        "\n{head}{modern}{inter}{route}",
        head = config_head(""),
        modern = tls_listener("modern", 0, "modern", &["a", "b"]),
        inter = tls_listener("intermediate", 0, "intermediate", &["a"]),
        route = route_to("app", "app", &upstream.to_string(), r#"["*"]"#),
    )
}

struct TwoListeners {
    edge: Edge,
    pki: Pki,
    modern: u16,
    inter: u16,
    admin: u16,
}

async fn two_listeners() -> TwoListeners {
    install_provider();
    let upstream = start_upstream().await;
    let pki = Pki::new("tls-tests");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "a", &["a.test"]);
    pki.leaf(dir.path(), "b", &["b.test", "*.b.test"]);
    let edge = Edge::start(&two_listener_config(upstream), dir);
    TwoListeners {
        modern: edge.port("modern"),
        inter: edge.port("intermediate"),
        admin: edge.admin(),
        edge,
        pki,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_certificate_and_default() {
    let t = two_listeners().await;
    let cfg = client_config(&t.pki.ca_pem, &[&rustls::version::TLS13], &[]);
    let s = handshake(t.modern, "b.test", cfg.clone()).await.unwrap();
    assert!(
        leaf_names(&s).iter().any(|n| n.contains("b.test")),
        "{:?}",
        leaf_names(&s)
    );
    let s = handshake(t.modern, "x.b.test", cfg.clone()).await.unwrap();
    assert!(leaf_names(&s).iter().any(|n| n.contains("*.b.test")));
    let s = handshake(t.modern, "a.test", cfg.clone()).await.unwrap();
    assert!(leaf_names(&s).iter().any(|n| n.contains("a.test")));
    // Unknown name: the default certificate (which the client then rejects for the name).
    let err = handshake(t.modern, "unknown.test", cfg).await.unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_refused_on_modern_accepted_on_intermediate() {
    let t = two_listeners().await;
    let tls12 = client_config(&t.pki.ca_pem, &[&rustls::version::TLS12], &[]);
    let tls13 = client_config(&t.pki.ca_pem, &[&rustls::version::TLS13], &[]);
    assert!(
        handshake(t.modern, "a.test", tls12.clone()).await.is_err(),
        "TLS 1.2 accepted on modern"
    );
    let s = handshake(t.inter, "a.test", tls12).await.unwrap();
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let suite = format!(
        "{:?}",
        s.get_ref().1.negotiated_cipher_suite().unwrap().suite()
    );
    assert!(
        suite.starts_with("TLS_ECDHE_") && (suite.contains("GCM") || suite.contains("CHACHA")),
        "{suite}"
    );
    for port in [t.modern, t.inter] {
        let s = handshake(port, "a.test", tls13.clone()).await.unwrap();
        assert_eq!(
            s.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
    }
    // Requests work on both, and the refusal is counted.
    for port in [t.modern, t.inter] {
        let r = https_response(port, "a.test", &t.pki.ca_pem, &get("a.test", "/", "")).await;
        assert_eq!(r.status, 200);
    }
    let m = admin(t.admin, "/metrics").await.body;
    assert!(
        m.contains(
            "rampart_tls_handshakes_refused_total{listener=\"modern\",reason=\"incompatible\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("rampart_tls_handshakes_total{listener=\"intermediate\",version=\"1.2\"}"),
        "{m}"
    );
}

/// One connection of a client: handshake, a request read to its end (which delivers the
/// server's session tickets to the client), and whether the handshake resumed.
async fn resumes(port: u16, cfg: Arc<rustls::ClientConfig>) -> bool {
    kind_of(port, "a.test", cfg).await == rustls::HandshakeKind::Resumed
}

/// Many clients come back and resume (nginx, HAProxy and Envoy do): rustls's default server
/// store keeps 256 sessions, two per TLS 1.3 handshake, so from the 129th client on the first
/// ones lost theirs and every return was a full handshake (0 of 300 resumed). Stateless
/// tickets under rotating keys resume them all, TLS 1.3 and TLS 1.2 alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_of_many_clients_resume() {
    install_provider();
    let upstream = start_upstream().await;
    let pki = Pki::new("resume-tests");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "a", &["a.test"]);
    // 600 connections and 300 requests from one address: limits above that.
    let config = format!(
        "\n{head}\n[protect.rate_limit]\ndefault = {{ requests = 100000, burst = 100000 }}\n\
         [protect.connections]\nnew_per_ip = {{ requests = 100000, burst = 100000 }}\n{modern}{inter}{route}",
        head = config_head(""),
        modern = tls_listener("modern", 0, "modern", &["a"]),
        inter = tls_listener("intermediate", 0, "intermediate", &["a"]),
        route = route_to("app", "app", &upstream.to_string(), r#"["*"]"#),
    );
    let edge = Edge::start(&config, dir);
    let ca_pem = pki.ca_pem.clone();
    let run = async {
        for (port, version) in [
            (edge.port("modern"), &rustls::version::TLS13),
            (edge.port("intermediate"), &rustls::version::TLS12),
        ] {
            let clients: Vec<_> = (0..300)
                .map(|_| client_config(&ca_pem, &[version], &[b"http/1.1"]))
                .collect();
            for cfg in &clients {
                assert!(
                    !resumes(port, cfg.clone()).await,
                    "a first connection resumed"
                );
            }
            let mut resumed = 0;
            for cfg in &clients {
                resumed += resumes(port, cfg.clone()).await as usize;
            }
            assert_eq!(
                resumed,
                clients.len(),
                "{version:?}: resumed {resumed} of {}",
                clients.len()
            );
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_reload_refuses_bad_files_and_applies_good_ones() {
    let t = two_listeners().await;
    let cfg = client_config(&t.pki.ca_pem, &[&rustls::version::TLS13], &[]);
    // A broken certificate file: refused, the old certificate keeps serving.
    std::fs::write(
        t.edge.path("b.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    t.edge.wait_stderr("certificates reload refused", 1);
    let s = handshake(t.modern, "b.test", cfg.clone()).await.unwrap();
    assert!(leaf_names(&s).iter().any(|n| n.contains("b.test")));
    // A key that does not match: refused too.
    let other = Pki::new("other");
    let (c2, _k2) = other.ca.issue(&["b.test"]).unwrap();
    std::fs::write(t.edge.path("b.pem"), c2).unwrap();
    t.edge.wait_stderr("certificates reload refused", 2);
    assert!(handshake(t.modern, "b.test", cfg.clone()).await.is_ok());
    // A good new pair (new name added): applied without restart.
    t.pki
        .leaf(t.edge.dir.path(), "b", &["b.test", "new.b2.test"]);
    t.edge.wait_stderr("certificates reload ok", 1);
    let s = handshake(t.modern, "new.b2.test", cfg).await.unwrap();
    assert!(leaf_names(&s).iter().any(|n| n.contains("new.b2.test")));
    let m = admin(t.admin, "/metrics").await.body;
    assert!(
        m.contains("rampart_config_reloads_total{result=\"error\",what=\"certificates\"} 2"),
        "{m}"
    );
}

/// A TLS upstream presenting a certificate from `pki` for `up.test`.
async fn tls_upstream(pki: &Pki) -> std::net::SocketAddr {
    use rustls_pki_types::pem::PemObject;
    let (c, k) = pki.ca.issue(&["up.test"]).unwrap();
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(c.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    rampart_ops::testing::serve_loopback(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                serve_upstream_conn(tls).await;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_upstream_connections_never_cross_trust_settings() {
    install_provider();
    let edge_pki = Pki::new("edge");
    let up_pki = Pki::new("upstream-ca");
    let wrong_pki = Pki::new("wrong-ca");
    let up = tls_upstream(&up_pki).await;
    let dir = tempfile::tempdir().unwrap();
    edge_pki.leaf(dir.path(), "edge", &["good.test", "bad.test"]);
    std::fs::write(dir.path().join("up-ca.pem"), &up_pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("wrong-ca.pem"), &wrong_pki.ca_pem).unwrap();
    let config = format!(
        r#"
{head}{https}[[upstreams]]
name = "good"
endpoints = ["{up}"]
tls = {{ ca_file = "up-ca.pem", sni = "up.test" }}
[[upstreams]]
name = "bad"
endpoints = ["{up}"]
tls = {{ ca_file = "wrong-ca.pem", sni = "up.test" }}
{good}{bad}"#,
        head = config_head(""),
        good = route_table("good", r#"["good.test"]"#, "good"),
        bad = route_table("bad", r#"["bad.test"]"#, "bad"),
        https = tls_listener("https", 0, "intermediate", &["edge"]),
    );
    let edge = Edge::start(&config, dir);
    let port = edge.port("https");
    let ca = edge_pki.ca_pem.as_str();
    let send = |host: &'static str| async move {
        https_response(port, host, ca, &get(host, "/", "")).await
    };
    // Keep-alive request on the good route pools a verified upstream connection.
    let r = send("good.test").await;
    assert_eq!(r.status, 200, "{r:?}");
    for _ in 0..3 {
        let r = send("bad.test").await;
        assert_eq!(
            r.status, 502,
            "wrong CA must fail even with a pooled connection: {r:?}"
        );
        let r = send("good.test").await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_a_listener_profile() {
    let t = two_listeners().await;
    let tls12 = client_config(&t.pki.ca_pem, &[&rustls::version::TLS12], &[]);
    assert!(handshake(t.inter, "a.test", tls12.clone()).await.is_ok());
    let text = std::fs::read_to_string(&t.edge.config_path).unwrap();
    std::fs::write(
        &t.edge.config_path,
        text.replace("profile = \"intermediate\"", "profile = \"modern\""),
    )
    .unwrap();
    t.edge.signal("HUP");
    t.edge
        .wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
    assert!(
        handshake(t.inter, "a.test", tls12).await.is_err(),
        "TLS 1.2 still accepted after switching to modern"
    );
    let tls13 = client_config(&t.pki.ca_pem, &[&rustls::version::TLS13], &[]);
    assert!(handshake(t.inter, "a.test", tls13).await.is_ok());
}

/// A client session store that files every session under one name, whatever the server name
/// asked: it offers a ticket made for one SNI / listener to another, as an attacker could.
#[derive(Debug)]
struct OneName(Arc<rustls::client::ClientSessionMemoryCache>);
fn fixed() -> rustls_pki_types::ServerName<'static> {
    rustls_pki_types::ServerName::try_from("a.test").unwrap()
}
impl rustls::client::ClientSessionStore for OneName {
    fn set_kx_hint(&self, _: rustls_pki_types::ServerName<'static>, g: rustls::NamedGroup) {
        self.0.set_kx_hint(fixed(), g)
    }
    fn kx_hint(&self, _: &rustls_pki_types::ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.0.kx_hint(&fixed())
    }
    fn set_tls12_session(
        &self,
        _: rustls_pki_types::ServerName<'static>,
        v: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(fixed(), v)
    }
    fn tls12_session(
        &self,
        _: &rustls_pki_types::ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(&fixed())
    }
    fn remove_tls12_session(&self, _: &rustls_pki_types::ServerName<'static>) {
        self.0.remove_tls12_session(&fixed())
    }
    fn insert_tls13_ticket(
        &self,
        _: rustls_pki_types::ServerName<'static>,
        v: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(fixed(), v)
    }
    fn take_tls13_ticket(
        &self,
        _: &rustls_pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(&fixed())
    }
}

async fn kind_of(port: u16, sni: &str, cfg: Arc<rustls::ClientConfig>) -> rustls::HandshakeKind {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = handshake(port, sni, cfg).await.unwrap();
    let kind = s.get_ref().1.handshake_kind().unwrap();
    s.write_all(get(sni, "/", "").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    kind
}

/// The properties the edge's session tickets rely on (review-s15-es F5): a ticket made for one
/// name is not accepted for another on the same listener, one listener's ticket is not accepted
/// by another, and after a reload an old ticket gives a clean full handshake (then resumption
/// again), TLS 1.3 and TLS 1.2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_never_cross_names_listeners_or_reloads() {
    use rustls::HandshakeKind::{Full, Resumed};
    let t = two_listeners().await;
    let run = async {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let store = || {
                let mut c = (*client_config(&t.pki.ca_pem, &[version], &[b"http/1.1"])).clone();
                c.resumption = rustls::client::Resumption::store(Arc::new(OneName(Arc::new(
                    rustls::client::ClientSessionMemoryCache::new(64),
                ))));
                Arc::new(c)
            };
            let (main_port, other_port) = if version == &rustls::version::TLS13 {
                (t.modern, t.inter)
            } else {
                (t.inter, t.inter)
            };
            // Sanity: the same name on the same listener resumes with this store.
            let c = store();
            assert_eq!(kind_of(main_port, "a.test", c.clone()).await, Full);
            assert_eq!(
                kind_of(main_port, "a.test", c.clone()).await,
                Resumed,
                "{version:?}"
            );
            // Another name (another certificate) on the same listener: full handshake.
            if version == &rustls::version::TLS13 {
                let c = store();
                assert_eq!(kind_of(t.modern, "a.test", c.clone()).await, Full);
                assert_eq!(
                    kind_of(t.modern, "b.test", c.clone()).await,
                    Full,
                    "cross-SNI resumed"
                );
                // A ticket of the modern listener offered to the intermediate one, same name.
                let c = store();
                assert_eq!(kind_of(t.modern, "a.test", c.clone()).await, Full);
                assert_eq!(
                    kind_of(other_port, "a.test", c.clone()).await,
                    Full,
                    "cross-listener resumed"
                );
            }
            // A reload (new certificate files for b): the old ticket gives a clean full handshake.
            let c = store();
            assert_eq!(kind_of(main_port, "a.test", c.clone()).await, Full);
            let n = if version == &rustls::version::TLS13 {
                1
            } else {
                2
            };
            t.pki
                .leaf(t.edge.dir.path(), "b", &["b.test", &format!("v{n}.b.test")]);
            t.edge.wait_stderr("certificates reload ok", n);
            assert_eq!(
                kind_of(main_port, "a.test", c.clone()).await,
                Full,
                "{version:?}: resumed across a reload"
            );
            assert_eq!(
                kind_of(main_port, "a.test", c.clone()).await,
                Resumed,
                "{version:?}"
            );
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("deadline");
}
