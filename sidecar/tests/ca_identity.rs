//! Identity from the real Rampart CA (the `rampart-pki` binary serving on loopback): the
//! sidecar bootstraps with a join token, serves its SVID, renews at 2/3 of a short lifetime
//! (new handshakes see the new certificate), keeps serving while the CA is down, and fails
//! closed with the reason once its certificate has expired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use rampart_tls::spiffe::TrustDomain;
use rampart_tls::{BundleHandle, PeerPolicy};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use support::{ca_identity, sidecar_toml, start_pki, tcp_port, Sidecar};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";

/// Handshakes (no client certificate) and returns the serial of the sidecar's certificate.
async fn served_serial(
    addr: std::net::SocketAddr,
    cfg: Arc<ClientConfig>,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = TlsConnector::from(cfg)
        .connect(ServerName::try_from("payments").unwrap(), tcp)
        .await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(
        rampart_tls::svid::check_svid(&leaf).unwrap().as_str(),
        PAYMENTS
    );
    Ok(rampart_tls::svid::serial_hex(&leaf).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_renews_survives_ca_outage_then_fails_closed() {
    // Built (or found) before the test's own deadline starts: a cold build takes minutes.
    support::pki_bin();
    timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let d2 = d.to_path_buf();
        let mut ca = tokio::task::spawn_blocking(move || start_pki(&d2, "mesh.local"))
            .await
            .unwrap();
        std::fs::write(d.join("token"), ca.token(PAYMENTS, "10m").unwrap()).unwrap();
        std::fs::write(d.join("policy.toml"), "").unwrap();
        std::fs::write(d.join("directory.toml"), "").unwrap();
        let port = tcp_port(8080, "127.0.0.1:9".parse().unwrap());
        std::fs::write(
            d.join("sidecar.toml"),
            sidecar_toml("payments", &ca_identity(&ca.addr, PAYMENTS, 6), &port),
        )
        .unwrap();
        let mut sc = Sidecar::start(&d.join("sidecar.toml"));
        assert_eq!(sc.ready["rampart.identity"], PAYMENTS);
        let addr = sc.addr("inbound:8080");

        let roots = rampart_identity::certs_from_pem(
            &std::fs::read_to_string(d.join("ca/bundle.pem")).unwrap(),
        )
        .unwrap();
        let bundle = BundleHandle::new(TrustDomain::parse("mesh.local").unwrap(), roots).unwrap();
        let client =
            rampart_tls::client_config(None, &bundle, PeerPolicy::AnyInTrustDomain).unwrap();
        let first = served_serial(addr, client.clone()).await.unwrap();
        // The SVID is kept for restarts, key 0600.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(d.join("state/svid.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        // Renewal at 2/3 of 6 s: new handshakes present the new certificate.
        let renewed = sc.wait_for(
            |v| v["event.name"] == "rampart.sidecar.certificate_renewed",
            "renewal",
        );
        assert_eq!(renewed["rampart.identity"], PAYMENTS);
        let second = served_serial(addr, client.clone()).await.unwrap();
        assert_ne!(
            first, second,
            "a renewed certificate must be served to new handshakes"
        );

        // The CA goes away: renewals fail, traffic goes on with the current certificate…
        ca.stop();
        let failed = sc.wait_for(
            |v| v["event.name"] == "rampart.sidecar.renewal_failed",
            "failed renewal",
        );
        assert!(
            failed["error.message"]
                .as_str()
                .unwrap()
                .contains("serving the current certificate"),
            "{failed}"
        );
        served_serial(addr, client.clone())
            .await
            .expect("still served while the CA is down and the certificate valid");

        // …until it expires (6 s lifetime): then every connection is refused, and the log says why.
        let mut refused = false;
        for _ in 0..40 {
            if served_serial(addr, client.clone()).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(refused, "an expired sidecar must refuse connections");
        let line = sc.wait_for(
            |v| v["rampart.reason.kind"] == "own_certificate_expired",
            "fail-closed refusal",
        );
        assert!(
            line["rampart.reason"]
                .as_str()
                .unwrap()
                .contains("fail closed"),
            "{line}"
        );
    })
    .await
    .expect("test deadline");
}
