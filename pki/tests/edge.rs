#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Edge server certificates from the CA: authorised by the edge's SVID,
//! limited to the DNS suffixes (name constraints), verified by a plain
//! rustls client that checks the host name.

mod common;

use std::sync::Arc;

use rampart_identity::IdentityError;
use rampart_pki::ca::{Ca, InitOptions};
use rampart_pki::client::EdgeCertSource;
use rampart_pki::spiffe::TrustDomain;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EDGE: &str = "spiffe://example.org/ns/edge/sa/proxy";
const OTHER: &str = "spiffe://example.org/ns/web/sa/api";

#[tokio::test]
async fn edge_gets_renewable_dns_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("kek"), common::KEK_HEX).unwrap();
    let mut opts = InitOptions::new(TrustDomain::parse("example.org").unwrap());
    opts.dns_suffixes = vec!["edge.example.org".into()];
    Ca::init(&d.join("ca"), &opts, common::protection()).unwrap();
    let running = rampart_pki::server::start(common::config(
        d,
        "127.0.0.1:0",
        &format!("[edge]\nidentities = [\"{EDGE}\"]\n"),
    ))
    .await
    .unwrap();

    let svid = common::bootstrap(d, running.addr, EDGE, 3600)
        .await
        .unwrap();
    let names = vec!["api.edge.example.org".to_string()];
    let edge = EdgeCertSource::obtain(svid.clone(), names, None)
        .await
        .unwrap();
    assert!(edge.seconds_to_expiry() > 3000.0);

    // A standard client (web PKI rules, host name checked) trusting our roots.
    let mut roots = rustls::RootCertStore::empty();
    for r in common::roots(d) {
        roots.add(r).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(rampart_pki::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut configs = edge.server_configs();
    let acceptor = tokio_rustls::TlsAcceptor::from(configs.borrow_and_update().clone());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        tls.shutdown().await.unwrap();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("api.edge.example.org").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut got = String::new();
    tls.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "hello");
    server.await.unwrap();

    edge.renew_now().await.unwrap();
    assert!(
        configs.has_changed().unwrap(),
        "renewal publishes a new ServerConfig"
    );

    // Outside the DNS suffixes, or asked by a workload not listed: refused.
    let e = EdgeCertSource::obtain(svid.clone(), vec!["www.other.com".into()], None)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, IdentityError::CaRefused { reason, .. } if reason == "dns_name_not_permitted"),
        "{e}"
    );
    let other = common::bootstrap(d, running.addr, OTHER, 3600)
        .await
        .unwrap();
    let e = EdgeCertSource::obtain(other, vec!["api.edge.example.org".into()], None)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, IdentityError::CaRefused { status: 403, reason, .. } if reason == "not_authorized"),
        "{e}"
    );
    running.shutdown().await;
}
