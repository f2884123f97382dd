#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Configs published on watch channels: a new identity reaches new handshakes at once, open
//! connections keep the config they started with, and a bad identity changes nothing.

use std::time::Duration;

use rampart_tls::test_ca::TestCa;
use rampart_tls::{MeshConfigs, MeshOptions, PeerPolicy};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_secs(10);

/// An echo server accepting with the newest config for each connection.
async fn echo_server(mesh: &MeshConfigs) -> std::net::SocketAddr {
    let acceptor = mesh.acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn new_identity_reaches_new_handshakes_and_spares_open_ones() {
    let ca = TestCa::new();
    let bundle = ca.bundle("example.org");
    let id = "spiffe://example.org/ns/web/sa/server";
    let first = ca.svid(id);
    let server = MeshConfigs::new(
        &first,
        bundle.clone(),
        MeshOptions::new(PeerPolicy::AnyInTrustDomain),
    )
    .unwrap();
    let client_id = ca.svid("spiffe://example.org/ns/web/sa/client");
    let client = MeshConfigs::new(
        &client_id,
        bundle.clone(),
        MeshOptions::new(PeerPolicy::AnyInTrustDomain),
    )
    .unwrap();
    let mut server_updates = server.server_configs();
    let addr = echo_server(&server).await;
    let name = ServerName::try_from("workload").unwrap();
    let run = async {
        let connect = || async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            client.connector().connect(name.clone(), tcp).await.unwrap()
        };
        let mut old = connect().await;
        let leaf = |c: &tokio_rustls::client::TlsStream<TcpStream>| {
            c.get_ref().1.peer_certificates().unwrap()[0].clone()
        };
        assert_eq!(leaf(&old), first.chain[0]);

        // Renewal: same SPIFFE ID, new certificate and key.
        let second = ca.svid(id);
        server.publish(&second).unwrap();
        assert!(
            server_updates.has_changed().unwrap(),
            "a new generation is announced"
        );
        server_updates.mark_unchanged();
        let mut new = connect().await;
        assert_eq!(
            leaf(&new),
            second.chain[0],
            "new handshakes get the new certificate"
        );

        // The connection opened before the renewal still works, on its first certificate.
        for conn in [&mut old, &mut new] {
            conn.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
        }
        assert_eq!(leaf(&old), first.chain[0]);

        // A key that is not the certificate's: refused, nothing published, the old one serves.
        let third = ca.svid(id);
        let mismatched = rampart_tls::Identity::new(
            third.chain.clone(),
            ca.svid(id).key().secret_der().to_vec(),
        )
        .unwrap();
        assert!(server.publish(&mismatched).is_err());
        assert!(!server_updates.has_changed().unwrap());
        assert_eq!(leaf(&connect().await), second.chain[0]);
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("test hung");
}
