#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CA client against a stand-in CA on loopback (hyper server, rustls, rampart-tls's test CA):
//! the CA is authenticated by chain, SPIFFE ID and, when its certificate names hosts, by the
//! endpoint's host; the bundle's revocation list reaches the workload's verifiers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_identity::api::{BundleResponse, RevokedList};
use rampart_identity::{CaClient, CaEndpoint, IdentityError};
use rampart_tls::test_ca::{dns, ip, uri, TestCa};
use rampart_tls::{BundleHandle, Identity, TrustDomain};

const DEADLINE: Duration = Duration::from_secs(10);

/// Serves `GET /v1/bundle` over TLS with `identity` until the test ends.
async fn fake_ca(identity: Identity, body: BundleResponse) -> SocketAddr {
    let cfg = rampart_tls::Profile::Intermediate
        .server_builder()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(serde_json::to_vec(&body).unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

fn bundle_response(root: &TestCa, revoked: Option<RevokedList>) -> BundleResponse {
    BundleResponse {
        trust_domain: "example.org".into(),
        bundle_pem: root.root_pem(),
        revoked,
    }
}

fn client(endpoint: impl Into<CaEndpoint>, root: &TestCa) -> CaClient {
    let bundle = BundleHandle::new(
        TrustDomain::parse("example.org").unwrap(),
        vec![root.root()],
    )
    .unwrap();
    CaClient::new(endpoint, bundle).with_timeout(DEADLINE)
}

#[tokio::test]
async fn ca_is_authenticated_by_chain_id_and_host() {
    let root = TestCa::new();
    let revoked = RevokedList {
        spiffe_ids: vec!["spiffe://example.org/ns/a/sa/gone".into()],
        serials: vec!["0a0b".into()],
    };
    // The CA's ID and the IP connected to: accepted, and the deny-list comes through.
    let ca_ip = root.svid_with(vec![
        uri("spiffe://example.org/rampart/pki"),
        ip("127.0.0.1"),
    ]);
    let addr = fake_ca(ca_ip, bundle_response(&root, Some(revoked.clone()))).await;
    let got = client(addr, &root).bundle().await.unwrap();
    assert_eq!(got.revoked, Some(revoked));
    // A certificate naming only another host: refused, though ID and chain are right.
    let ca_dns = root.svid_with(vec![
        uri("spiffe://example.org/rampart/pki"),
        dns("ca.example.org"),
    ]);
    let addr = fake_ca(ca_dns, bundle_response(&root, None)).await;
    let e = client(addr, &root).bundle().await.unwrap_err();
    assert!(matches!(e, IdentityError::CaUnavailable(_)), "{e}");
    assert!(e.to_string().contains("(host_mismatch)"), "{e}");
    // The same certificate reached by its DNS name: accepted (host names resolve through the
    // system resolver, so use one that maps to loopback in the CA's certificate).
    let ca_localhost = root.svid_with(vec![
        uri("spiffe://example.org/rampart/pki"),
        dns("localhost"),
    ]);
    let addr = fake_ca(ca_localhost, bundle_response(&root, None)).await;
    let endpoint = CaEndpoint::parse(&format!("https://localhost:{}", addr.port())).unwrap();
    client(endpoint, &root).bundle().await.unwrap();
    // A workload SVID, not the CA's ID: refused.
    let impostor = root.svid_with(vec![uri("spiffe://example.org/ns/a/sa/b")]);
    let addr = fake_ca(impostor, bundle_response(&root, None)).await;
    let e = client(addr, &root).bundle().await.unwrap_err();
    assert!(e.to_string().contains("(not_allowed)"), "{e}");
    // Another root: refused.
    let other = TestCa::new();
    let foreign = other.svid_with(vec![uri("spiffe://example.org/rampart/pki")]);
    let addr = fake_ca(foreign, bundle_response(&other, None)).await;
    let e = client(addr, &root).bundle().await.unwrap_err();
    assert!(e.to_string().contains("(unknown_ca)"), "{e}");
}
