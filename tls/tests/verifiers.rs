#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SPIFFE verifiers over real handshakes and direct calls: SVID rules, trust domain,
//! chain to the bundle, expiry, and a bundle swap seen by an existing verifier.

use std::sync::Arc;
use std::time::Duration;

use rampart_tls::test_ca::{dns, id, ip, uri, TestCa};
use rampart_tls::{
    client_config, peer_spiffe_id, server_config, Identity, MeshOptions, PeerPolicy, Rejection,
    RevocationList, Revoked, SpiffeClientVerifier, SpiffeServerVerifier,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(10);

/// A CA, its bundle for `example.org`, and the SVIDs of a server and a client workload.
fn web_pki() -> (TestCa, rampart_tls::BundleHandle, Identity, Identity) {
    let ca = TestCa::new();
    let b = ca.bundle("example.org");
    let server_id = ca.svid("spiffe://example.org/ns/web/sa/server");
    let client_id = ca.svid("spiffe://example.org/ns/web/sa/client");
    (ca, b, server_id, client_id)
}

#[tokio::test]
async fn mtls_handshake_both_directions_yields_spiffe_ids() {
    let (_ca, b, server_id, client_id) = web_pki();
    let server_cfg = server_config(&server_id, &b, PeerPolicy::AnyInTrustDomain).unwrap();
    let client_cfg = client_config(
        Some(&client_id),
        &b,
        PeerPolicy::OneOf(vec![server_id.spiffe_id.clone()]),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_cfg);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let peer = peer_spiffe_id(tls.get_ref().1).unwrap();
        assert_eq!(
            tls.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3),
            "mesh configs speak TLS 1.3 only"
        );
        tls.write_all(peer.as_str().as_bytes()).await.unwrap();
        tls.shutdown().await.unwrap();
        peer
    });
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client_cfg);
        let mut tls = connector
            .connect(ServerName::try_from("workload").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(
            peer_spiffe_id(tls.get_ref().1).unwrap(),
            server_id.spiffe_id
        );
        let mut echoed = String::new();
        tls.read_to_string(&mut echoed).await.unwrap();
        echoed
    };
    let echoed = tokio::time::timeout(DEADLINE, client)
        .await
        .expect("handshake hung");
    assert_eq!(echoed, client_id.spiffe_id.as_str());
    let peer = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("server hung");
    assert_eq!(peer.unwrap(), client_id.spiffe_id);
}

/// The typed reason of a client-certificate refusal.
fn client_reason(
    v: &SpiffeClientVerifier,
    chain: &[rustls_pki_types::CertificateDer<'static>],
    now: UnixTime,
) -> Rejection {
    Rejection::classify(
        &v.verify_client_cert(&chain[0], &chain[1..], now)
            .unwrap_err(),
    )
}

#[test]
fn verifiers_reject_with_typed_reasons() {
    let ca = TestCa::new();
    let life = time::Duration::hours(1);
    let (no_uri, _) = ca.leaf(vec![dns("a.example.org")], life);
    let (two_uris, _) = ca.leaf(
        vec![
            uri("spiffe://example.org/ns/a/sa/b"),
            uri("spiffe://example.org/ns/a/sa/c"),
        ],
        life,
    );
    let (not_spiffe, _) = ca.leaf(vec![uri("https://example.org/a")], life);
    let (good, _) = ca.leaf(vec![uri("spiffe://example.org/ns/a/sa/b")], life);
    let now = UnixTime::now();
    let b = ca.bundle("example.org");
    let cv = SpiffeClientVerifier::new(b.clone(), PeerPolicy::AnyInTrustDomain);
    let sv = SpiffeServerVerifier::new(b, PeerPolicy::AnyInTrustDomain);
    let name = ServerName::try_from("x").unwrap();
    for (cert, want) in [
        (&no_uri, "no_uri_san"),
        (&two_uris, "several_uri_sans"),
        (&not_spiffe, "not_spiffe_id"),
    ] {
        let r = client_reason(&cv, cert, now);
        assert_eq!(r.reason(), want, "{r}");
        assert!(r.to_string().contains("URI SAN"), "{r}");
        let e = sv
            .verify_server_cert(&cert[0], &[], &name, &[], now)
            .unwrap_err();
        assert_eq!(Rejection::classify(&e).reason(), want);
    }
    assert_eq!(
        client_reason(&cv, &two_uris, now),
        Rejection::SeveralUriSans(2)
    );
    cv.verify_client_cert(&good[0], &[], now).unwrap();
    sv.verify_server_cert(&good[0], &[], &name, &[], now)
        .unwrap();
    let foreign = SpiffeClientVerifier::new(ca.bundle("other.org"), PeerPolicy::AnyInTrustDomain);
    assert_eq!(
        client_reason(&foreign, &good, now).reason(),
        "foreign_trust_domain"
    );
    // A CA from another installation does not chain to our bundle.
    let other = TestCa::new().svid("spiffe://example.org/ns/a/sa/b");
    assert_eq!(client_reason(&cv, &other.chain, now), Rejection::UnknownCa);
    // Expired: verify as of two hours from now.
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 7200));
    assert_eq!(client_reason(&cv, &good, later), Rejection::Expired);
    // Policy: only the listed identities.
    let only = SpiffeClientVerifier::new(
        ca.bundle("example.org"),
        PeerPolicy::OneOf(vec![id("spiffe://example.org/ns/a/sa/c")]),
    );
    assert_eq!(
        client_reason(&only, &good, now),
        Rejection::NotAllowed(id("spiffe://example.org/ns/a/sa/b"))
    );
}

#[test]
fn revoked_ids_and_serials_are_refused_by_both_verifiers() {
    let ca = TestCa::new();
    let b = ca.bundle("example.org");
    let alice = ca.svid("spiffe://example.org/ns/a/sa/alice");
    let alice2 = ca.svid("spiffe://example.org/ns/a/sa/alice");
    let bob = ca.svid("spiffe://example.org/ns/a/sa/bob");
    let cv = SpiffeClientVerifier::new(b.clone(), PeerPolicy::AnyInTrustDomain);
    let sv = SpiffeServerVerifier::new(b.clone(), PeerPolicy::AnyInTrustDomain);
    let name = ServerName::try_from("x").unwrap();
    let now = UnixTime::now();
    // Revoke one of alice's certificates by serial: the other still verifies.
    let serial = rampart_tls::svid::serial_hex(&alice.chain[0]).unwrap();
    let mut list = RevocationList::new();
    list.revoke_serial(&serial).unwrap();
    assert!(b.set_revocations(list.clone()));
    assert!(!b.set_revocations(list), "same list: no change");
    let r = client_reason(&cv, &alice.chain, now);
    assert_eq!(r, Rejection::Revoked(Revoked::Serial(serial.clone())));
    assert_eq!(r.reason(), "revoked");
    let e = sv
        .verify_server_cert(&alice.chain[0], &[], &name, &[], now)
        .unwrap_err();
    assert_eq!(Rejection::classify(&e).reason(), "revoked");
    cv.verify_client_cert(&alice2.chain[0], &[], now).unwrap();
    // Revoke the ID, with the roots, in one swap: every certificate of alice is refused.
    let list =
        RevocationList::from_strings(["spiffe://example.org/ns/a/sa/alice"], [&serial]).unwrap();
    assert!(b.replace(vec![ca.root()], list).unwrap());
    assert_eq!(
        client_reason(&cv, &alice2.chain, now),
        Rejection::Revoked(Revoked::SpiffeId(id("spiffe://example.org/ns/a/sa/alice")))
    );
    cv.verify_client_cert(&bob.chain[0], &[], now).unwrap();
    // Roots replaced alone keep the list.
    let other = TestCa::new();
    assert!(b.update(vec![ca.root(), other.root()]).unwrap());
    assert_eq!(b.revocations().len(), 2);
    assert_eq!(client_reason(&cv, &alice2.chain, now).reason(), "revoked");
    // Lifting the revocation lets alice in again.
    assert!(b.set_revocations(RevocationList::new()));
    cv.verify_client_cert(&alice2.chain[0], &[], now).unwrap();
}

/// A server requiring client certificates, its accept error classified.
async fn refused_handshake(
    server_cfg: Arc<rustls::ServerConfig>,
    client_cfg: Arc<rustls::ClientConfig>,
) -> Option<Rejection> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match tokio_rustls::TlsAcceptor::from(server_cfg)
            .accept(tcp)
            .await
        {
            Ok(mut tls) => {
                // TLS 1.3: the client learns of a refusal on its first read.
                let _ = tls.shutdown().await;
                None
            }
            Err(e) => Rejection::from_io(&e),
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    if let Ok(mut tls) = tokio_rustls::TlsConnector::from(client_cfg)
        .connect(ServerName::try_from("workload").unwrap(), tcp)
        .await
    {
        let mut buf = [0u8; 1];
        let _ = tls.read(&mut buf).await;
    }
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("server hung")
        .unwrap()
}

fn anonymous_again(b: &rampart_tls::BundleHandle) -> Arc<rustls::ClientConfig> {
    client_config(None, b, PeerPolicy::AnyInTrustDomain).unwrap()
}

#[tokio::test]
async fn handshake_refusals_carry_their_reason() {
    let (_ca, b, server_id, client_id) = web_pki();
    let server_cfg = server_config(&server_id, &b, PeerPolicy::AnyInTrustDomain).unwrap();
    let anonymous = client_config(None, &b, PeerPolicy::AnyInTrustDomain).unwrap();
    assert_eq!(
        refused_handshake(server_cfg.clone(), anonymous).await,
        Some(Rejection::NoClientCertificate)
    );
    // Client certificates optional: the anonymous client gets through (an authorization layer
    // refuses it with a reason), a client that sends one is still verified (below).
    let mut options = MeshOptions::new(PeerPolicy::AnyInTrustDomain);
    options.client_cert_optional = true;
    let lenient = rampart_tls::config::mesh_server_config(&server_id, &b, &options).unwrap();
    assert_eq!(
        refused_handshake(lenient.clone(), anonymous_again(&b)).await,
        None
    );
    let mut list = RevocationList::new();
    list.revoke_id(client_id.spiffe_id.clone());
    b.set_revocations(list);
    let client_cfg = client_config(Some(&client_id), &b, PeerPolicy::AnyInTrustDomain).unwrap();
    assert_eq!(
        refused_handshake(server_cfg.clone(), client_cfg.clone()).await,
        Some(Rejection::Revoked(Revoked::SpiffeId(
            client_id.spiffe_id.clone()
        )))
    );
    assert_eq!(
        refused_handshake(lenient, client_cfg.clone()).await,
        Some(Rejection::Revoked(Revoked::SpiffeId(
            client_id.spiffe_id.clone()
        )))
    );
    b.set_revocations(RevocationList::new());
    assert_eq!(refused_handshake(server_cfg, client_cfg).await, None);
}

#[test]
fn bundle_swap_changes_what_verifies() {
    let (ca1, ca2) = (TestCa::new(), TestCa::new());
    let leaf2 = ca2.svid("spiffe://example.org/ns/a/sa/b");
    let b = ca1.bundle("example.org");
    let cv = Arc::new(SpiffeClientVerifier::new(
        b.clone(),
        PeerPolicy::AnyInTrustDomain,
    ));
    let now = UnixTime::now();
    assert!(cv.verify_client_cert(&leaf2.chain[0], &[], now).is_err());
    assert!(b.update(vec![ca1.root(), ca2.root()]).unwrap());
    cv.verify_client_cert(&leaf2.chain[0], &[], now).unwrap();
}

#[test]
fn host_sans_are_checked_when_present() {
    let ca = TestCa::new();
    let b = ca.bundle("example.org");
    let sv = SpiffeServerVerifier::new(b, PeerPolicy::AnyInTrustDomain).check_host_sans();
    let now = UnixTime::now();
    let svc = "spiffe://example.org/rampart/pki";
    let with_dns = ca.svid_with(vec![uri(svc), dns("ca.example.org")]);
    let with_ip = ca.svid_with(vec![uri(svc), ip("127.0.0.1")]);
    let without = ca.svid(svc);
    let named = |n: &str| ServerName::try_from(n.to_string()).unwrap();
    sv.verify_server_cert(&with_dns.chain[0], &[], &named("ca.example.org"), &[], now)
        .unwrap();
    assert!(sv
        .verify_server_cert(
            &with_dns.chain[0],
            &[],
            &named("evil.example.org"),
            &[],
            now
        )
        .is_err());
    sv.verify_server_cert(&with_ip.chain[0], &[], &named("127.0.0.1"), &[], now)
        .unwrap();
    assert!(sv
        .verify_server_cert(&with_ip.chain[0], &[], &named("127.0.0.2"), &[], now)
        .is_err());
    // No host SANs: the SPIFFE ID alone authenticates.
    sv.verify_server_cert(&without.chain[0], &[], &named("anything"), &[], now)
        .unwrap();
}

/// Every mesh connection is a full handshake: a resumed TLS 1.3 session would skip the
/// verifiers, so a caller revoked (or expired, or of a removed root) after its first connection
/// could come back on the stored session.
#[tokio::test]
async fn a_revoked_caller_cannot_resume_its_session() {
    let (_ca, b, server_id, client_id) = web_pki();
    let options = MeshOptions::new(PeerPolicy::AnyInTrustDomain);
    let server_cfg = rampart_tls::config::mesh_server_config(&server_id, &b, &options).unwrap();
    let client_cfg = rampart_tls::config::mesh_client_config(&client_id, &b, &options).unwrap();
    // First connection: admitted (and, were resumption on, a session ticket stored).
    assert_eq!(
        refused_handshake(server_cfg.clone(), client_cfg.clone()).await,
        None
    );
    let mut list = RevocationList::new();
    list.revoke_id(client_id.spiffe_id.clone());
    b.set_revocations(list.clone());
    assert_eq!(
        refused_handshake(server_cfg.clone(), client_cfg.clone()).await,
        Some(Rejection::Revoked(Revoked::SpiffeId(
            client_id.spiffe_id.clone()
        ))),
        "the revoked caller got in on its first connection's session"
    );
    // The server alone holds it: a client that resumes whenever it may gets no session either.
    let mut resuming = (*client_cfg).clone();
    resuming.resumption = rustls::client::Resumption::in_memory_sessions(16);
    let resuming = Arc::new(resuming);
    b.set_revocations(RevocationList::new());
    assert_eq!(
        refused_handshake(server_cfg.clone(), resuming.clone()).await,
        None
    );
    b.set_revocations(list);
    assert_eq!(
        refused_handshake(server_cfg, resuming).await,
        Some(Rejection::Revoked(Revoked::SpiffeId(client_id.spiffe_id))),
        "the revoked caller resumed a session the server kept"
    );
}
