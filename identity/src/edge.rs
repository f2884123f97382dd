//! `EdgeCertSource`: an edge listener's DNS server certificate from the
//! built-in CA, renewed like an SVID (2/3 of life, jitter, backoff) and
//! published as a `rustls::ServerConfig` (no client auth) on a watch channel, and as the
//! `CertifiedKey` alone for a server that picks certificates by SNI itself.
//! The edge authenticates to the CA with its own SVID.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rampart_tls::pem::certs_from_pem;
use rampart_tls::Profile;
use rand::Rng;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ca_client::CaClient;
use crate::csr::new_edge_csr;
use crate::error::Result;
use crate::source::SvidSource;

struct Current {
    not_after: OffsetDateTime,
    received_at: OffsetDateTime,
}

/// A DNS server certificate kept fresh for an edge listener.
pub struct EdgeCertSource {
    svid: Arc<SvidSource>,
    client: CaClient,
    dns_names: Vec<String>,
    ttl: Option<Duration>,
    current: ArcSwap<Current>,
    tx: watch::Sender<Arc<ServerConfig>>,
    keys: watch::Sender<Arc<CertifiedKey>>,
}

impl EdgeCertSource {
    /// Obtains a first certificate for `dns_names` (each under one of the
    /// CA's DNS suffixes), authenticating with `svid`.
    pub async fn obtain(
        svid: Arc<SvidSource>,
        dns_names: Vec<String>,
        ttl: Option<Duration>,
    ) -> Result<Arc<Self>> {
        let client = svid.ca_client();
        let (config, key, not_after) = fetch(&client, &svid, &dns_names, ttl).await?;
        let now = OffsetDateTime::now_utc();
        Ok(Arc::new(EdgeCertSource {
            svid,
            client,
            dns_names,
            ttl,
            current: ArcSwap::from_pointee(Current {
                not_after,
                received_at: now,
            }),
            tx: watch::channel(config).0,
            keys: watch::channel(key).0,
        }))
    }

    /// New `ServerConfig`s, one per renewal.
    pub fn server_configs(&self) -> watch::Receiver<Arc<ServerConfig>> {
        self.tx.subscribe()
    }

    /// New certificates with their keys, one per renewal (for an SNI resolver).
    pub fn certified_keys(&self) -> watch::Receiver<Arc<CertifiedKey>> {
        self.keys.subscribe()
    }

    /// Seconds until the served certificate expires.
    pub fn seconds_to_expiry(&self) -> f64 {
        (self.current.load().not_after - OffsetDateTime::now_utc()).as_seconds_f64()
    }

    /// Renews now.
    pub async fn renew_now(&self) -> Result<()> {
        let (config, key, not_after) =
            fetch(&self.client, &self.svid, &self.dns_names, self.ttl).await?;
        self.current.store(Arc::new(Current {
            not_after,
            received_at: OffsetDateTime::now_utc(),
        }));
        self.tx.send_replace(config);
        self.keys.send_replace(key);
        Ok(())
    }

    /// Runs the renewal loop in a task (abort the handle to stop it).
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let cur = me.current.load_full();
                tokio::time::sleep(crate::source::renewal_delay(
                    cur.received_at,
                    cur.not_after,
                    2.0 / 3.0,
                    0.05,
                ))
                .await;
                let mut backoff = Duration::from_secs(1);
                while let Err(e) = me.renew_now().await {
                    tracing::warn!(error = %e, seconds_to_expiry = me.seconds_to_expiry(), "edge certificate renewal failed; serving the current one");
                    let pause = backoff.mul_f64(rand::thread_rng().gen_range(0.8..1.2));
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        })
    }
}

async fn fetch(
    client: &CaClient,
    svid: &SvidSource,
    dns_names: &[String],
    ttl: Option<Duration>,
) -> Result<(Arc<ServerConfig>, Arc<CertifiedKey>, OffsetDateTime)> {
    let (csr, key) = new_edge_csr(dns_names)?;
    let resp = client.edge(&svid.identity(), &csr, ttl).await?;
    let chain: Vec<CertificateDer<'static>> = certs_from_pem(&resp.chain_pem)?;
    let not_after = rampart_tls::svid::not_after(&chain[0])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let certified = rampart_tls::pem::certified_key(chain.clone(), &key)
        .map_err(rampart_tls::TlsError::from)?;
    let config = Profile::Intermediate
        .server_builder()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rampart_tls::TlsError::from)?;
    Ok((Arc::new(config), Arc::new(certified), not_after))
}
