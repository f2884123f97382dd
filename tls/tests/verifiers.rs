#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SPIFFE verifiers over real handshakes and direct calls: SVID rules, trust domain,
//! chain to the bundle, expiry, and a bundle swap seen by an existing verifier.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{dns, id, uri, TestCa};
use rampart_tls::{
    client_config, peer_spiffe_id, server_config, PeerPolicy, SpiffeClientVerifier,
    SpiffeServerVerifier,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn mtls_handshake_both_directions_yields_spiffe_ids() {
    let ca = TestCa::new();
    let server_id = ca.svid("spiffe://example.org/ns/web/sa/server");
    let client_id = ca.svid("spiffe://example.org/ns/web/sa/client");
    let b = ca.bundle("example.org");
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

#[test]
fn verifiers_reject_non_svids_and_foreign_domains() {
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
    let (good, _) = ca.leaf(vec![uri("spiffe://example.org/ns/a/sa/b")], life);
    let now = UnixTime::now();
    let b = ca.bundle("example.org");
    let cv = SpiffeClientVerifier::new(b.clone(), PeerPolicy::AnyInTrustDomain);
    let sv = SpiffeServerVerifier::new(b, PeerPolicy::AnyInTrustDomain);
    let name = ServerName::try_from("x").unwrap();
    for (what, cert) in [("no URI SAN", &no_uri), ("two URI SANs", &two_uris)] {
        let err = cv.verify_client_cert(&cert[0], &[], now).unwrap_err();
        assert!(format!("{err}").contains("URI SAN"), "{what}: {err}");
        assert!(
            sv.verify_server_cert(&cert[0], &[], &name, &[], now)
                .is_err(),
            "{what}"
        );
    }
    cv.verify_client_cert(&good[0], &[], now).unwrap();
    sv.verify_server_cert(&good[0], &[], &name, &[], now)
        .unwrap();
    let foreign = SpiffeClientVerifier::new(ca.bundle("other.org"), PeerPolicy::AnyInTrustDomain);
    let err = foreign.verify_client_cert(&good[0], &[], now).unwrap_err();
    assert!(format!("{err}").contains("ForeignTrustDomain"), "{err}");
    // A CA from another installation does not chain to our bundle.
    let other = TestCa::new().svid("spiffe://example.org/ns/a/sa/b");
    assert!(cv.verify_client_cert(&other.chain[0], &[], now).is_err());
    // Expired: verify as of two hours from now.
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 7200));
    assert!(cv.verify_client_cert(&good[0], &[], later).is_err());
    // Policy: only the listed identities.
    let only = SpiffeClientVerifier::new(
        ca.bundle("example.org"),
        PeerPolicy::OneOf(vec![id("spiffe://example.org/ns/a/sa/c")]),
    );
    assert!(only.verify_client_cert(&good[0], &[], now).is_err());
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
    let with_ip = ca.svid_with(vec![
        uri(svc),
        rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()),
    ]);
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
