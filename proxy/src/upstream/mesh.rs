//! A mesh upstream: reached over mTLS with the edge's own SVID (renewed live), trusted through
//! the CA's bundle, and required to present one SPIFFE ID.
//!
//! Pingora 0.9's rustls connector takes a client certificate (`HttpPeer::new_mtls`) and per-peer
//! roots (`options.ca`), but builds its own verifier: with `verify_hostname = false` it checks
//! the chain only, and no verifier of ours can be plugged in. So the SPIFFE ID (and the
//! bundle's revocations) are checked right after Pingora connects, in `connected_to_upstream`:
//! Pingora's handshake proved that the upstream holds the key of a leaf certificate chaining to
//! the CA, and its digest gives that leaf's SHA-256. The leaf's SPIFFE ID is known for hashes
//! our own SPIFFE verifier has accepted: when the hash is new, one handshake of our own to the
//! same endpoint (with `rampart_tls`'s `SpiffeServerVerifier`: chain, X.509-SVID rules, trust
//! domain, revocation, the expected ID) fetches and verifies the certificate the upstream
//! presents. Only a connection whose leaf is byte for byte one we verified is used; anything
//! else is refused (502, reason logged and counted) before a request byte is sent. Accepted
//! leaves are re-checked against the bundle's revocation list on every use.
//!
//! `group_key` carries the roots, the expected ID and the SNI, so a pooled connection is never
//! reused for a peer with other trust settings; the client certificate is part of Pingora's own
//! reuse key, so after a renewal new connections present the new SVID.

use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::{CertKey, WrappedX509};
use rampart_identity::SvidSource;
use rampart_tls::{Identity, PeerPolicy, Rejection, SpiffeId};
use rustls_pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Leaves remembered as verified, per upstream (cleared when full; a few per endpoint renewal).
const MAX_VERIFIED: usize = 256;

/// The client certificate and roots Pingora is given, rebuilt when the SVID or bundle changes.
struct PeerTls {
    identity: Arc<Identity>,
    cert_key: Arc<CertKey>,
    roots: Vec<CertificateDer<'static>>,
    ca: Arc<[WrappedX509]>,
    group_key: u64,
}

/// A leaf our SPIFFE verifier accepted for this upstream.
struct Verified {
    id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
}

pub struct MeshUpstream {
    expected: SpiffeId,
    sni: String,
    svid: Arc<SvidSource>,
    handshake_timeout: Duration,
    current: Mutex<Option<Arc<PeerTls>>>,
    /// SHA-256 of a verified leaf → what was verified.
    verified: Mutex<HashMap<Vec<u8>, Verified>>,
}

impl MeshUpstream {
    pub fn new(
        c: &crate::config::UpstreamMtls,
        svid: Arc<SvidSource>,
        handshake_timeout: Duration,
    ) -> Self {
        let expected = c.spiffe_id.clone();
        MeshUpstream {
            sni: c
                .sni
                .clone()
                .unwrap_or_else(|| expected.trust_domain_str().to_string()),
            expected,
            svid,
            handshake_timeout,
            current: Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The client certificate and roots for a new connection: the current SVID and bundle.
    fn peer_tls(&self) -> Arc<PeerTls> {
        let identity = self.svid.identity();
        let roots = self.svid.bundle().roots();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = current.as_ref() {
            if Arc::ptr_eq(&c.identity, &identity) && c.roots == roots {
                return c.clone();
            }
        }
        let cert_key = Arc::new(CertKey::new(
            identity.chain.iter().map(|c| c.to_vec()).collect(),
            identity.key().secret_der().to_vec(),
        ));
        let ca: Vec<WrappedX509> = roots
            .iter()
            .map(|der| {
                WrappedX509::new(der.to_vec(), |raw| {
                    pingora_core::utils::tls::parse_x509(raw)
                })
            })
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ("mtls", &roots, self.expected.as_str(), &self.sni).hash(&mut h);
        let built = Arc::new(PeerTls {
            identity,
            cert_key,
            roots,
            ca: ca.into(),
            group_key: h.finish(),
        });
        *current = Some(built.clone());
        built
    }

    /// The Pingora peer for `addr`: mTLS with the SVID, the chain checked against the bundle.
    pub fn peer(&self, addr: SocketAddr) -> HttpPeer {
        let tls = self.peer_tls();
        let mut p = HttpPeer::new_mtls(addr, self.sni.clone(), tls.cert_key.clone());
        p.options.verify_cert = true;
        // The upstream is authenticated by its SPIFFE ID (checked in `check`), not by a name.
        p.options.verify_hostname = false;
        p.options.ca = Some(tls.ca.clone());
        p.group_key = tls.group_key;
        p
    }

    /// Admits a connection whose leaf certificate has SHA-256 `leaf_sha256` (from Pingora's
    /// digest) only if that leaf carries the expected SPIFFE ID and nothing of its chain is
    /// revoked; an unknown leaf is fetched and verified first.
    pub async fn check(&self, addr: SocketAddr, leaf_sha256: &[u8]) -> Result<(), Rejection> {
        if leaf_sha256.is_empty() {
            return Err(Rejection::Other("no certificate from the upstream".into()));
        }
        if let Some(r) = self.recheck(leaf_sha256) {
            return r;
        }
        let chain = self.fetch_verified(addr).await?;
        let digest = ring_sha256(&chain[0]);
        let id = rampart_tls::svid::check_svid(&chain[0]).map_err(|_| Rejection::NoUriSan)?;
        {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if v.len() >= MAX_VERIFIED {
                v.clear();
            }
            v.insert(digest, Verified { id, chain });
        }
        self.recheck(leaf_sha256).unwrap_or_else(|| {
            // The upstream showed our own handshake another certificate than Pingora's.
            Err(Rejection::Other(
                "the upstream's certificate differs between handshakes".into(),
            ))
        })
    }

    /// A verified leaf checked again against the current revocation list; `None` if unknown.
    fn recheck(&self, leaf_sha256: &[u8]) -> Option<Result<(), Rejection>> {
        let v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let known = v.get(leaf_sha256)?;
        let chain: Vec<&[u8]> = known.chain.iter().map(|c| c.as_ref()).collect();
        Some(
            self.svid
                .bundle()
                .revocations()
                .check(&known.id, &chain)
                .map_err(Rejection::Revoked),
        )
    }

    /// One handshake of our own to `addr`, presenting the SVID, with the SPIFFE verifier
    /// requiring the expected ID; returns the chain the upstream presented.
    async fn fetch_verified(
        &self,
        addr: SocketAddr,
    ) -> Result<Vec<CertificateDer<'static>>, Rejection> {
        let identity = self.svid.identity();
        let config = rampart_tls::client_config(
            Some(&identity),
            self.svid.bundle(),
            PeerPolicy::OneOf(vec![self.expected.clone()]),
        )
        .map_err(|e| Rejection::Other(format!("client config: {e}")))?;
        let name = ServerName::try_from(self.sni.clone())
            .map_err(|e| Rejection::Other(format!("sni: {e}")))?;
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
        };
        let tls = match tokio::time::timeout(self.handshake_timeout, connect).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                return Err(Rejection::from_io(&e)
                    .unwrap_or_else(|| Rejection::Other(format!("handshake: {e}"))))
            }
            Err(_) => return Err(Rejection::Other("handshake timed out".into())),
        };
        let chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect::<Vec<_>>())
            .unwrap_or_default();
        if chain.is_empty() {
            return Err(Rejection::NoUriSan);
        }
        drop(tls);
        Ok(chain)
    }
}

fn ring_sha256(der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .to_vec()
}
