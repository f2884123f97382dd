#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CA service over real TLS on loopback: bootstrap, renew, and every
//! refusal path — each a clear error, nothing issued, audited.

mod common;

use std::time::Duration;

use rampart_identity::IdentityError;
use rampart_pki::client::{CaClient, SvidSource};
use rampart_pki::spiffe::TrustDomain;
use rampart_pki::tls::BundleHandle;

const ID: &str = "spiffe://example.org/ns/web/sa/api";
const OTHER: &str = "spiffe://example.org/ns/web/sa/other";

/// A CA serving with `extra` config, and `ID` bootstrapped for an hour.
async fn serving_with_source(
    extra: &str,
) -> (
    tempfile::TempDir,
    rampart_pki::server::RunningServer,
    std::sync::Arc<SvidSource>,
) {
    let (dir, running) = common::serving(extra).await;
    let source = common::bootstrap(dir.path(), running.addr, ID, 3600)
        .await
        .unwrap();
    (dir, running, source)
}

/// A CA client of the CA serving `dir/ca` at `addr`, trusting its roots.
fn ca_client(dir: &std::path::Path, addr: std::net::SocketAddr) -> CaClient {
    let td = TrustDomain::parse("example.org").unwrap();
    CaClient::new(addr, BundleHandle::new(td, common::roots(dir)).unwrap())
}

fn refused_reason(e: &IdentityError) -> &str {
    match e {
        IdentityError::CaRefused { reason, .. } => reason,
        other => panic!("expected a CA refusal, got {other}"),
    }
}

#[tokio::test]
async fn bootstrap_renew_and_every_refusal() {
    let (dir, running) = common::serving("[rate_limit]\nper_minute = 600\nburst = 100\n").await;
    let svc = running.service.clone();
    let client = ca_client(dir.path(), running.addr);

    // Bootstrap: wrong identity for the token is refused and does not burn it.
    let token = common::token(dir.path(), ID, Duration::from_secs(60));
    let e = client
        .bootstrap(&token, &common::csr(&[OTHER], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "csr_identity_mismatch", "{e}");
    let e = client
        .bootstrap(&token, &common::csr(&[ID, OTHER], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "csr_refused");
    assert!(e.to_string().contains("2 URI SANs"), "{e}");
    let e = client
        .bootstrap(&token, &common::csr(&[ID], true), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cA=true"), "{e}");
    let e = client
        .bootstrap(
            &token,
            &common::csr(&[ID], false),
            Some(Duration::from_secs(91 * 86400)),
        )
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "lifetime_over_cap");
    let e = client
        .bootstrap("rpt_unknown", &common::csr(&[ID], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "token_unknown");
    let expired = common::token(dir.path(), ID, Duration::ZERO);
    let e = client
        .bootstrap(&expired, &common::csr(&[ID], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "token_expired");
    assert_eq!(svc.issued_total(), 0, "nothing issued by refused requests");

    // The real bootstrap, then reuse of the token.
    let source = SvidSource::bootstrap(
        common::settings(running.addr, ID, 3600),
        common::roots(dir.path()),
        &token,
    )
    .await
    .unwrap();
    assert_eq!(source.identity().spiffe_id.as_str(), ID);
    let e = client
        .bootstrap(&token, &common::csr(&[ID], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "token_reused");

    // Renew over mTLS; a CSR for another identity is refused.
    let before = source.identity().chain[0].clone();
    source.renew_now().await.unwrap();
    assert_ne!(source.identity().chain[0], before);
    let e = client
        .renew(&source.identity(), &common::csr(&[OTHER], false), None)
        .await
        .unwrap_err();
    assert_eq!(refused_reason(&e), "csr_identity_mismatch");
    assert_eq!(svc.issued_total(), 2);

    // Renewal with an expired certificate: refused at the TLS layer.
    let brief = common::bootstrap(dir.path(), running.addr, OTHER, 1)
        .await
        .unwrap();
    assert_eq!(svc.issued_total(), 3);
    while brief.seconds_to_expiry() > -1.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = brief.renew_now().await.unwrap_err();
    assert!(matches!(e, IdentityError::CertificateNotValidNow(_)), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(
        svc.issued_total(),
        3,
        "nothing issued for an expired certificate"
    );

    let metrics = svc.metrics_text();
    for reason in [
        "csr_identity_mismatch",
        "token_reused",
        "token_expired",
        "lifetime_over_cap",
        "certificate_expired",
    ] {
        assert!(
            metrics.contains(&format!("reason=\"{reason}\"")),
            "metric for {reason} missing:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("rampart_pki_ca_seconds_to_expiry{ca=\"intermediate\""),
        "{metrics}"
    );
    let bundle = client.bundle().await.unwrap();
    assert_eq!(bundle.trust_domain, "example.org");
    running.shutdown().await;

    let audit = rampart_pki::audit::verify(&dir.path().join("ca/audit.jsonl")).unwrap();
    assert!(
        audit.records >= 12,
        "every issuance and refusal audited: {}",
        audit.records
    );
    let text = std::fs::read_to_string(dir.path().join("ca/audit.jsonl")).unwrap();
    assert!(!text.contains(&token), "tokens never reach the audit log");
}

/// Every connection to the CA is a full handshake: a renewal on a resumed
/// session would skip the client-certificate verifier (a revoked or
/// superseded leaf would renew). A client that would resume (rustls's
/// default session cache) and reads a whole answer (so any ticket sent
/// reaches it) gets no session to resume.
#[test]
fn the_ca_listener_never_resumes_a_session() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    common::run(Duration::from_secs(60), async {
        let (dir, running) = common::serving("").await;
        let mut roots = rustls::RootCertStore::empty();
        for r in common::roots(dir.path()) {
            roots.add(r).unwrap();
        }
        let mut client = rampart_pki::tls::Profile::Intermediate
            .client_builder()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // A client that resumes whenever the server lets it.
        client.resumption = rustls::client::Resumption::in_memory_sessions(16);
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
        for attempt in ["first", "second"] {
            let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
            let name = rustls_pki_types::ServerName::IpAddress(running.addr.ip().into());
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(b"GET /v1/bundle HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200"), "{attempt}: {answer:?}");
            assert_eq!(
                tls.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full),
                "{attempt} connection"
            );
        }
        running.shutdown().await;
    });
}

#[tokio::test]
async fn issuance_is_rate_limited_per_identity() {
    let (dir, running, source) =
        serving_with_source("[rate_limit]\nper_minute = 1\nburst = 2\n").await;
    source.renew_now().await.unwrap();
    let e = source.renew_now().await.unwrap_err();
    assert_eq!(refused_reason(&e), "rate_limited", "{e}");
    // Another identity has its own budget.
    let token2 = common::token(dir.path(), OTHER, Duration::from_secs(60));
    SvidSource::bootstrap(
        common::settings(running.addr, OTHER, 3600),
        common::roots(dir.path()),
        &token2,
    )
    .await
    .unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn restarted_workload_resumes_without_a_new_token() {
    let (dir, running) = common::serving("").await;
    let state = dir.path().join("workload");
    std::fs::create_dir(&state).unwrap();
    let mut settings = common::settings(running.addr, ID, 3600);
    settings.state_dir = Some(state.clone());
    let e = SvidSource::resume_or_bootstrap(settings.clone(), common::roots(dir.path()), None)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("no join token"), "{e}");
    let token = common::token(dir.path(), ID, Duration::from_secs(60));
    let first =
        SvidSource::resume_or_bootstrap(settings.clone(), common::roots(dir.path()), Some(&token))
            .await
            .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("svid.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let leaf = first.identity().chain[0].clone();
    drop(first);
    // "Restart": no token needed, same certificate, and it renews.
    let again = SvidSource::resume_or_bootstrap(settings, common::roots(dir.path()), None)
        .await
        .unwrap();
    assert_eq!(again.identity().chain[0], leaf);
    again.renew_now().await.unwrap();
    let stored =
        rampart_pki::tls::Identity::load(&state.join("svid.pem"), &state.join("svid.key")).unwrap();
    assert_eq!(
        stored.chain[0],
        again.identity().chain[0],
        "renewed SVID kept on disk"
    );
    running.shutdown().await;
}

/// Runs curl against the CA, trusting only its bundle; returns (exit ok, stdout, stderr).
async fn curl(args: Vec<String>) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl hung")
    .expect("curl is needed (apt install curl)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn curl_verifies_the_ca_by_its_bundle() {
    // The default names: the listen IP. Configured names add DNS and IPs.
    let (dir, running) = common::serving("server_names = [\"127.0.0.1\", \"::1\"]\n").await;
    let port = running.addr.port();
    let bundle = dir.path().join("ca/bundle.pem").display().to_string();
    let (ok, body, err) = curl(vec![
        "--cacert".into(),
        bundle.clone(),
        format!("https://127.0.0.1:{port}/v1/bundle"),
    ])
    .await;
    assert!(ok, "curl --cacert bundle.pem failed: {err}");
    assert!(body.contains("\"trust_domain\":\"example.org\""), "{body}");
    // A name the certificate does not carry is refused by curl: the check
    // above is a real verification, not a pass-through.
    let (ok, _, err) = curl(vec![
        "--cacert".into(),
        bundle,
        "--resolve".into(),
        format!("ca.other.test:{port}:127.0.0.1"),
        format!("https://ca.other.test:{port}/v1/bundle"),
    ])
    .await;
    assert!(!ok, "curl accepted a name not in the certificate");
    assert!(
        err.contains("certificate") || err.contains("SSL"),
        "unexpected curl error: {err}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn configured_reserved_ids_are_refused_at_bootstrap() {
    const RESERVED: &str = "spiffe://example.org/ns/kube-system/sa/admin";
    let dir = tempfile::tempdir().unwrap();
    common::init_ca(dir.path());
    let running = common::start(
        dir.path(),
        &format!("[issuance]\nreserved_ids = [\"{RESERVED}\"]\n"),
    )
    .await;
    let client = ca_client(dir.path(), running.addr);
    for id in [RESERVED, "spiffe://example.org/rampart/pki"] {
        // The CLI refuses tokens for built-in reservations; the store does not know.
        let token = common::token(dir.path(), id, Duration::from_secs(60));
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            client.bootstrap(&token, &common::csr(&[id], false), None),
        )
        .await
        .expect("bootstrap hung")
        .unwrap_err();
        assert_eq!(refused_reason(&e), "reserved_identity", "{id}: {e}");
    }
    assert_eq!(running.service.issued_total(), 0);
    running.shutdown().await;
}

/// 1,030 idle TCP connections from one address (more than the old global
/// cap of 1,024) must not stop another client from being served, and the
/// idle ones are closed at the handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_cannot_starve_others() {
    let (dir, running) = common::serving("[limits]\nhandshake_timeout_ms = 1500\n").await;
    let addr = running.addr;
    let mut idle = Vec::new();
    for i in 0..1030 {
        let c = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect {i} hung"))
            .unwrap_or_else(|e| panic!("connect {i}: {e}"));
        idle.push(c);
    }
    let bundle = dir.path().join("ca/bundle.pem").display().to_string();
    let url = format!("https://127.0.0.1:{}/v1/bundle", addr.port());
    // Another client (another source address on loopback) is served now.
    let (ok, body, err) = curl(vec![
        "--interface".into(),
        "127.0.0.2".into(),
        "--cacert".into(),
        bundle.clone(),
        url.clone(),
    ])
    .await;
    assert!(ok, "a client from 127.0.0.2 was starved: {err}");
    assert!(body.contains("bundle_pem"), "{body}");
    // The idle ones hold at most the per-address cap, and those are closed
    // at the handshake deadline; then the same address is served again.
    let m = running.service.metrics_text();
    let capped = metric(
        &m,
        "rampart_pki_connections_closed_total{reason=\"per_ip_cap\"}",
    );
    assert!(
        capped >= 1030.0 - 64.0,
        "per-address cap not applied: {capped}\n{m}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = running.service.metrics_text();
        if metric(
            &m,
            "rampart_pki_connections_closed_total{reason=\"handshake_timeout\"}",
        ) >= 64.0
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle connections never timed out\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, _, err) = curl(vec!["--cacert".into(), bundle, url]).await;
    assert!(
        ok,
        "127.0.0.1 not served after its idle connections closed: {err}"
    );
    drop(idle);
    running.shutdown().await;
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn revocation_is_honoured_at_once_and_published_with_the_bundle() {
    use rampart_pki::revocation::{revoke, Target};
    let (dir, running, source) =
        serving_with_source("[rate_limit]\nper_minute = 600\nburst = 100\n").await;
    tokio::time::timeout(Duration::from_secs(10), source.renew_now())
        .await
        .expect("renew hung")
        .unwrap();
    // Revoke the current certificate: its renewal is refused at once.
    let serial = rampart_pki::inspect::serial_hex(&source.identity().chain[0]).unwrap();
    revoke(
        &dir.path().join("ca"),
        &Target::Serial(serial.clone()),
        "key leaked",
    )
    .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), source.renew_now())
        .await
        .expect("renew hung")
        .unwrap_err();
    assert_eq!(refused_reason(&e), "revoked", "{e}");
    assert!(e.to_string().contains(&serial), "{e}");
    let bundle = tokio::time::timeout(Duration::from_secs(10), source.ca_client().bundle())
        .await
        .expect("bundle hung")
        .unwrap();
    assert_eq!(
        bundle.revoked.unwrap_or_default().serials,
        vec![serial.clone()]
    );
    // A workload's bundle refresh installs the list for its verifiers.
    tokio::time::timeout(Duration::from_secs(10), source.refresh_bundle())
        .await
        .expect("bundle refresh hung")
        .unwrap();
    assert!(
        source.bundle().revocations().serials().any(|s| s == serial),
        "the workload's verifiers did not get the deny-list"
    );
    // Revoke the identity: a fresh bootstrap for it is refused too.
    revoke(
        &dir.path().join("ca"),
        &Target::Id(rampart_pki::spiffe::SpiffeId::parse(OTHER).unwrap()),
        "gone",
    )
    .unwrap();
    let e = common::bootstrap(dir.path(), running.addr, OTHER, 3600)
        .await
        .err()
        .expect("revoked identity bootstrapped");
    assert_eq!(refused_reason(&e), "revoked", "{e}");
    let m = running.service.metrics_text();
    assert!(
        m.contains("rampart_pki_revoked_entries{kind=\"id\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rampart_pki_certificates_refused_total{reason=\"revoked\"} 2"),
        "{m}"
    );
    running.shutdown().await;
}

/// Kubernetes projected service-account tokens: keys and JWKS made here.
mod k8s {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    pub const ISSUER: &str = "https://kubernetes.default.svc";
    pub const SUB: &str = "system:serviceaccount:shop:cart";
    pub const WANT: &str = "spiffe://example.org/ns/shop/sa/cart";

    /// A cluster signing key (P-256).
    pub fn key() -> rcgen::KeyPair {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    /// The JWKS of `keys` (kid, key).
    pub fn jwks(keys: &[(&str, &rcgen::KeyPair)]) -> String {
        let keys: Vec<_> = keys
            .iter()
            .map(|(kid, key)| {
                let point = key.public_key_raw();
                assert_eq!(point.len(), 65);
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..]),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A projected service-account token signed by `key` under `kid`.
    pub fn token(key: &rcgen::KeyPair, kid: &str, aud: &str, exp_in: i64, sub: &str) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.into());
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": [aud], "exp": now + exp_in, "iat": now,
            "sub": sub,
            "kubernetes.io": {"namespace": "shop", "serviceaccount": {"name": "cart", "uid": "u"}},
        });
        encode(&h, &claims, &EncodingKey::from_ec_der(&key.serialize_der())).unwrap()
    }

    /// `[attestation.kubernetes]` with the given JWKS source lines.
    pub fn config(source: &str) -> String {
        format!(
            "[attestation.kubernetes]\n{source}issuer = \"{ISSUER}\"\naudience = \"rampart-pki\"\n"
        )
    }

    /// POSTs `jwt` and a CSR for `csr_id` to `/v1/attest/k8s` with curl
    /// (verifying the CA by its bundle); returns (ok, body, stderr).
    pub async fn attest(
        dir: &std::path::Path,
        port: u16,
        jwt: String,
        csr_id: &str,
    ) -> (bool, String, String) {
        let body = dir.join(format!("body-{}.json", rand::random::<u64>()));
        let request =
            serde_json::json!({"token": jwt, "csr": super::common::csr(&[csr_id], false)});
        std::fs::write(&body, request.to_string()).unwrap();
        super::curl(vec![
            "--cacert".to_string(),
            dir.join("ca/bundle.pem").display().to_string(),
            "-X".into(),
            "POST".into(),
            "--data".into(),
            format!("@{}", body.display()),
            format!("https://127.0.0.1:{port}/v1/attest/k8s"),
        ])
        .await
    }
}

#[tokio::test]
async fn kubernetes_service_account_tokens_attest_workloads() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use k8s::{SUB, WANT};
    let dir = tempfile::tempdir().unwrap();
    common::init_ca(dir.path());
    let cluster = k8s::key();
    std::fs::write(dir.path().join("jwks.json"), k8s::jwks(&[("k1", &cluster)])).unwrap();
    let running = common::start(
        dir.path(),
        &k8s::config(&format!(
            "jwks_file = \"{}\"\n",
            dir.path().join("jwks.json").display()
        )),
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = |key: &rcgen::KeyPair, aud: &str, exp: i64, sub: &str| {
        k8s::token(key, "k1", aud, exp - now, sub)
    };
    let port = running.addr.port();
    let post = |jwt: String, csr: &'static str| k8s::attest(dir.path(), port, jwt, csr);
    let (ok, body, err) = post(token(&cluster, "rampart-pki", now + 600, SUB), WANT).await;
    assert!(ok, "{err}");
    let resp: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["spiffe_id"], WANT, "{body}");
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    for (jwt, csr, want) in [
        (token(&cluster, "someone-else", now + 600, SUB), WANT, "InvalidAudience"),
        (token(&cluster, "rampart-pki", now - 600, SUB), WANT, "ExpiredSignature"),
        (token(&other, "rampart-pki", now + 600, SUB), WANT, "InvalidSignature"),
        (token(&cluster, "rampart-pki", now + 600, "system:serviceaccount:shop:other"), WANT, "disagree"),
        (token(&cluster, "rampart-pki", now + 600, SUB), "spiffe://example.org/ns/shop/sa/admin", "csr_identity_mismatch"),
        // alg none: header {"alg":"none"} with an empty signature.
        (
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
                URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"https://kubernetes.default.svc","aud":"rampart-pki","exp":{},"sub":"{SUB}"}}"#, now + 600))
            ),
            WANT,
            "attestation_refused",
        ),
    ] {
        let (_, body, _) = post(jwt, csr).await;
        assert!(body.contains(want), "expected {want}: {body}");
        assert!(!body.contains("chain_pem"), "{body}");
    }
    assert_eq!(
        running
            .service
            .metrics_text()
            .lines()
            .find(|l| l.starts_with("rampart_pki_certificates_issued_total{kind=\"k8s\"}")),
        Some("rampart_pki_certificates_issued_total{kind=\"k8s\"} 1")
    );
    running.shutdown().await;
}

/// Where a test publishes the cluster's JWKS: a file, or an https server
/// (its own test CA) that answers 500 while failing.
enum JwksSource {
    File(std::path::PathBuf),
    Url {
        served: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        config: String,
    },
}

impl JwksSource {
    async fn url(dir: &std::path::Path) -> Self {
        use http_body_util::Full;
        use rampart_tls::test_ca::{ip, TestCa};
        let ca = TestCa::new();
        let (chain, key) = ca.leaf(vec![ip("127.0.0.1")], time::Duration::hours(1));
        let ca_file = dir.join("jwks-ca.pem");
        std::fs::write(&ca_file, ca.root_pem()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(rampart_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain,
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
        let served = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let state = served.clone();
        let addr = rampart_ops::testing::serve_loopback(move |tcp| {
            let (acceptor, state) = (acceptor.clone(), state.clone());
            async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let answer = state.lock().unwrap().clone();
                        async move {
                            let (status, body) = match answer {
                                Some(jwks) if req.uri().path() == "/openid/v1/jwks" => (200, jwks),
                                _ => (500, "failing".to_string()),
                            };
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(bytes::Bytes::from(body)))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            }
        })
        .await;
        let config = format!(
            "jwks_url = \"https://127.0.0.1:{}/openid/v1/jwks\"\njwks_ca_file = \"{}\"\n",
            addr.port(),
            ca_file.display()
        );
        JwksSource::Url { served, config }
    }

    /// Serves `jwks`, or fails (500 / a file that is not a JWKS) on `None`.
    fn publish(&self, jwks: Option<String>) {
        match self {
            JwksSource::File(path) => {
                std::fs::write(path, jwks.unwrap_or_else(|| "{not json".into())).unwrap()
            }
            JwksSource::Url { served, .. } => *served.lock().unwrap() = jwks,
        }
    }

    fn config(&self) -> String {
        match self {
            JwksSource::File(path) => format!("jwks_file = \"{}\"\n", path.display()),
            JwksSource::Url { config, .. } => config.clone(),
        }
    }
}

/// The value of one sample in the CA's metrics (0 when absent).
fn sample(running: &rampart_pki::server::RunningServer, name: &str) -> u64 {
    metric(&running.service.metrics_text(), name) as u64
}

/// Waits (bounded) until the JWKS refresh counter `result` passes `above`.
async fn refreshed(running: &rampart_pki::server::RunningServer, result: &str, above: u64) -> u64 {
    let name = format!("rampart_pki_jwks_refreshes_total{{result=\"{result}\"}}");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = sample(running, &name);
            if n > above {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no JWKS refresh with result {result} within 20 s"))
}

/// The cluster's keys change after start, from a file and from an https URL
/// alike: a key added later verifies at once (unknown kid → refresh), a
/// failing source keeps the last good key set (logged, counted at every refresh
/// while it stays bad), and a key removed from the JWKS is refused after the
/// next refresh.
#[test]
fn kubernetes_jwks_follows_the_cluster_keys_from_a_file_or_a_url() {
    common::run(Duration::from_secs(120), async {
        for url in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            common::init_ca(dir.path());
            let source = if url {
                JwksSource::url(dir.path()).await
            } else {
                JwksSource::File(dir.path().join("jwks.json"))
            };
            let (k1, k2) = (k8s::key(), k8s::key());
            source.publish(Some(k8s::jwks(&[("k1", &k1)])));
            let extra = format!(
                "{}jwks_refresh_ms = 300\njwks_unknown_kid_refresh_ms = 0\n",
                source.config()
            );
            let running = common::start(dir.path(), &k8s::config(&extra)).await;
            let port = running.addr.port();
            let attest = |key: &rcgen::KeyPair, kid: &str| {
                let jwt = k8s::token(key, kid, "rampart-pki", 600, k8s::SUB);
                k8s::attest(dir.path(), port, jwt, k8s::WANT)
            };
            let issued = |(ok, body, err): (bool, String, String), what: &str| {
                assert!(
                    ok && body.contains("chain_pem"),
                    "{what} (url: {url}): {body} {err}"
                );
            };
            issued(attest(&k1, "k1").await, "a token of the key at start");

            source.publish(Some(k8s::jwks(&[("k1", &k1), ("k2", &k2)])));
            issued(
                attest(&k2, "k2").await,
                "a token of a key added after start",
            );

            let failed = sample(
                &running,
                "rampart_pki_jwks_refreshes_total{result=\"failed\"}",
            );
            source.publish(None);
            let failed = refreshed(&running, "failed", failed).await;
            // A source that stays bad fails every refresh (the alert keeps firing), not once.
            refreshed(&running, "failed", failed).await;
            issued(attest(&k1, "k1").await, "k1 after a failed refresh");
            issued(attest(&k2, "k2").await, "k2 after a failed refresh");
            assert_eq!(sample(&running, "rampart_pki_jwks_keys"), 2);

            let ok = sample(&running, "rampart_pki_jwks_refreshes_total{result=\"ok\"}");
            source.publish(Some(k8s::jwks(&[("k2", &k2)])));
            refreshed(&running, "ok", ok).await;
            let (_, body, _) = attest(&k1, "k1").await;
            assert!(
                body.contains("attestation_refused") && body.contains("no key with kid \\\"k1\\\""),
                "a removed key must be refused (url: {url}): {body}"
            );
            issued(attest(&k2, "k2").await, "k2 after k1 was removed");
            running.shutdown().await;
        }
    });
}
