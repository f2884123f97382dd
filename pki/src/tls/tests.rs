use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::ca::{Ca, InitOptions};
use crate::keystore::{Kek, KeyProtection};
use crate::spiffe::TrustDomain;

fn ca(dir: &std::path::Path) -> Ca {
    let kek = KeyProtection::Encrypted(Kek::parse(&"33".repeat(32), "t").unwrap());
    Ca::init(
        dir,
        &InitOptions::new(TrustDomain::parse("example.org").unwrap()),
        kek,
    )
    .unwrap()
}

fn identity(ca: &Ca, id: &str) -> Identity {
    let id = SpiffeId::parse(id).unwrap();
    let (_, key) = crate::csr::new_svid_csr(&id).unwrap();
    let issued = ca
        .issuer()
        .issue_svid(&id, &key, Duration::from_secs(3600))
        .unwrap();
    Identity::new(issued.chain, key.serialize_der()).unwrap()
}

fn bundle(ca: &Ca, td: &str) -> BundleHandle {
    BundleHandle::new(TrustDomain::parse(td).unwrap(), ca.trust_bundle()).unwrap()
}

#[tokio::test]
async fn mtls_handshake_both_directions_yields_spiffe_ids() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let server_id = identity(&ca, "spiffe://example.org/ns/web/sa/server");
    let client_id = identity(&ca, "spiffe://example.org/ns/web/sa/client");
    let b = bundle(&ca, "example.org");
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
        tls.write_all(peer.as_str().as_bytes()).await.unwrap();
        tls.shutdown().await.unwrap();
        peer
    });
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
    assert_eq!(echoed, client_id.spiffe_id.as_str());
    assert_eq!(server.await.unwrap(), client_id.spiffe_id);
}

#[test]
fn verifiers_reject_non_svids_and_foreign_domains() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let issuer = ca.issuer();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let base = |sans: Vec<rcgen::SanType>| {
        let (serial, _) = crate::ca::profiles::random_serial().unwrap();
        let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
        let mut p = crate::ca::profiles::svid(
            &id,
            serial,
            now - time::Duration::minutes(1),
            now + time::Duration::hours(1),
        )
        .unwrap();
        p.subject_alt_names = sans;
        p
    };
    let uri = |u: &str| rcgen::SanType::URI(rcgen::string::Ia5String::try_from(u).unwrap());
    let no_uri = issuer
        .sign_raw(
            base(vec![rcgen::SanType::DnsName(
                "a.example.org".try_into().unwrap(),
            )]),
            &key,
        )
        .unwrap();
    let two_uris = issuer
        .sign_raw(
            base(vec![
                uri("spiffe://example.org/ns/a/sa/b"),
                uri("spiffe://example.org/ns/a/sa/c"),
            ]),
            &key,
        )
        .unwrap();
    let good = issuer
        .sign_raw(base(vec![uri("spiffe://example.org/ns/a/sa/b")]), &key)
        .unwrap();
    let now = UnixTime::now();
    let b = bundle(&ca, "example.org");
    let cv = SpiffeClientVerifier::new(b.clone(), PeerPolicy::AnyInTrustDomain);
    let sv = SpiffeServerVerifier::new(b, PeerPolicy::AnyInTrustDomain);
    let name = ServerName::try_from("x").unwrap();
    for (what, cert) in [("no URI SAN", &no_uri), ("two URI SANs", &two_uris)] {
        let err = cv
            .verify_client_cert(&cert.chain[0], &cert.chain[1..], now)
            .unwrap_err();
        assert!(format!("{err}").contains("URI SAN"), "{what}: {err}");
        assert!(
            sv.verify_server_cert(&cert.chain[0], &cert.chain[1..], &name, &[], now)
                .is_err(),
            "{what}"
        );
    }
    cv.verify_client_cert(&good.chain[0], &good.chain[1..], now)
        .unwrap();
    sv.verify_server_cert(&good.chain[0], &good.chain[1..], &name, &[], now)
        .unwrap();
    let foreign = SpiffeClientVerifier::new(bundle(&ca, "other.org"), PeerPolicy::AnyInTrustDomain);
    let err = foreign
        .verify_client_cert(&good.chain[0], &good.chain[1..], now)
        .unwrap_err();
    assert!(format!("{err}").contains("ForeignTrustDomain"), "{err}");
    // A CA from another installation does not chain to our bundle.
    let other_dir = tempfile::tempdir().unwrap();
    let other = identity(
        &ca_other(other_dir.path()),
        "spiffe://example.org/ns/a/sa/b",
    );
    assert!(cv
        .verify_client_cert(&other.chain[0], &other.chain[1..], now)
        .is_err());
    // Expired: verify as of two hours from now.
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 7200));
    assert!(cv
        .verify_client_cert(&good.chain[0], &good.chain[1..], later)
        .is_err());
}

fn ca_other(dir: &std::path::Path) -> Ca {
    ca(dir)
}

#[test]
fn bundle_swap_changes_what_verifies() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (ca(d1.path()), ca(d2.path()));
    let leaf2 = identity(&ca2, "spiffe://example.org/ns/a/sa/b");
    let b = bundle(&ca1, "example.org");
    let cv = Arc::new(SpiffeClientVerifier::new(
        b.clone(),
        PeerPolicy::AnyInTrustDomain,
    ));
    let now = UnixTime::now();
    assert!(cv
        .verify_client_cert(&leaf2.chain[0], &leaf2.chain[1..], now)
        .is_err());
    let mut both = ca1.trust_bundle();
    both.extend(ca2.trust_bundle());
    assert!(b.update(both).unwrap());
    cv.verify_client_cert(&leaf2.chain[0], &leaf2.chain[1..], now)
        .unwrap();
}
