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
    let bundle = BundleHandle::new(
        TrustDomain::parse("example.org").unwrap(),
        common::roots(dir.path()),
    )
    .unwrap();
    let client = CaClient::new(running.addr, bundle);

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

#[tokio::test]
async fn issuance_is_rate_limited_per_identity() {
    let (dir, running) = common::serving("[rate_limit]\nper_minute = 1\nburst = 2\n").await;
    let source = common::bootstrap(dir.path(), running.addr, ID, 3600)
        .await
        .unwrap();
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
    let bundle = BundleHandle::new(
        TrustDomain::parse("example.org").unwrap(),
        common::roots(dir.path()),
    )
    .unwrap();
    let client = CaClient::new(running.addr, bundle);
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
    let (dir, running) = common::serving("[rate_limit]\nper_minute = 600\nburst = 100\n").await;
    let source = common::bootstrap(dir.path(), running.addr, ID, 3600)
        .await
        .unwrap();
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
#[tokio::test]
async fn kubernetes_service_account_tokens_attest_workloads() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let dir = tempfile::tempdir().unwrap();
    common::init_ca(dir.path());
    let cluster = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = cluster.public_key_raw();
    assert_eq!(point.len(), 65);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    }]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let running = common::start(
        dir.path(),
        &format!(
            "[attestation.kubernetes]\njwks_file = \"{}\"\nissuer = \"https://kubernetes.default.svc\"\naudience = \"rampart-pki\"\n",
            dir.path().join("jwks.json").display()
        ),
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = |key: &rcgen::KeyPair, aud: &str, exp: i64, sub: &str| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        let claims = serde_json::json!({
            "iss": "https://kubernetes.default.svc", "aud": [aud], "exp": exp, "iat": now,
            "sub": sub,
            "kubernetes.io": {"namespace": "shop", "serviceaccount": {"name": "cart", "uid": "u"}},
        });
        encode(&h, &claims, &EncodingKey::from_ec_der(&key.serialize_der())).unwrap()
    };
    const SUB: &str = "system:serviceaccount:shop:cart";
    const WANT: &str = "spiffe://example.org/ns/shop/sa/cart";
    let url = format!("https://127.0.0.1:{}/v1/attest/k8s", running.addr.port());
    let bundle = dir.path().join("ca/bundle.pem").display().to_string();
    let post = |jwt: String, csr: String| {
        let body = dir.path().join("body.json");
        std::fs::write(
            &body,
            serde_json::json!({"token": jwt, "csr": csr}).to_string(),
        )
        .unwrap();
        let args = vec![
            "--cacert".to_string(),
            bundle.clone(),
            "-X".into(),
            "POST".into(),
            "--data".into(),
            format!("@{}", body.display()),
            url.clone(),
        ];
        curl(args)
    };
    let (ok, body, err) = post(
        token(&cluster, "rampart-pki", now + 600, SUB),
        common::csr(&[WANT], false),
    )
    .await;
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
        let (_, body, _) = post(jwt, common::csr(&[csr], false)).await;
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
