//! Upstream pools: round robin over endpoints, passive health (eject after consecutive connect
//! failures), timeouts, and verified TLS with per-pool trust.
//!
//! Pingora's connection pool key ignores the CA bundle, so a connection verified under one
//! bundle could be reused for a pool that trusts another. Every pool's trust settings are hashed
//! into `HttpPeer::group_key`, which is part of the reuse key.
//!
//! A mesh upstream (`mtls`) is reached with the edge's own SVID and must present one SPIFFE ID;
//! see [`mesh`] for how that is enforced on top of Pingora's connector.

use crate::config::{HostPort, UpstreamConfig};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::WrappedX509;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type CaList = Arc<[WrappedX509]>;

#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    failures: AtomicU32,
    /// Milliseconds since `Upstream::epoch` until which the endpoint is skipped.
    ejected_until_ms: AtomicU64,
}

pub struct UpstreamTls {
    sni: String,
    verify_hostname: bool,
    ca: Option<CaList>,
    group_key: u64,
}

pub struct Upstream {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    next: AtomicUsize,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_failures: u32,
    eject_for: Duration,
    tls: Option<UpstreamTls>,
    mesh: Option<mesh::MeshUpstream>,
    epoch: Instant,
}

/// Resolves `host:port` endpoints (blocking; only at config load, never per request).
fn resolve(endpoints: &[HostPort]) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for ep in endpoints {
        let addrs = (ep.host.as_str(), ep.port)
            .to_socket_addrs()
            .map_err(|e| format!("endpoint `{ep}` does not resolve: {e}"))?;
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if out.is_empty() {
        return Err("no endpoint address resolved".into());
    }
    Ok(out)
}

/// What happened when connecting, fed back for passive health.
pub enum Outcome {
    Connected,
    ConnectFailed,
}

impl Upstream {
    /// Compiles one upstream pool; an `mtls` upstream needs the edge's `identity` (without it,
    /// in an offline `check`, its mTLS is not set up).
    pub fn build(
        c: &UpstreamConfig,
        identity: Option<&Arc<crate::tls::EdgeIdentity>>,
    ) -> Result<Self, String> {
        let connect_timeout = Duration::from_millis(c.connect_timeout_ms);
        let mesh = match (&c.mtls, identity) {
            (Some(m), Some(identity)) => Some(mesh::MeshUpstream::new(
                m,
                identity.svid().clone(),
                connect_timeout,
            )),
            _ => None,
        };
        let tls = match &c.tls {
            None => None,
            Some(t) => {
                let (ca, ca_digest) = match &t.ca_file {
                    Some(path) => {
                        let certs = crate::tls::load_certs_only(path).map_err(|e| e.to_string())?;
                        let digest = {
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            for c in &certs {
                                c.as_ref().hash(&mut h);
                            }
                            h.finish()
                        };
                        let list: Vec<WrappedX509> = certs
                            .into_iter()
                            .map(|der| {
                                WrappedX509::new(der.as_ref().to_vec(), |raw| {
                                    pingora_core::utils::tls::parse_x509(raw)
                                })
                            })
                            .collect();
                        (Some(CaList::from(list)), digest)
                    }
                    None => (None, 0),
                };
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (ca_digest, ca.is_some(), &t.sni, t.verify_hostname).hash(&mut h);
                Some(UpstreamTls {
                    sni: t.sni.clone(),
                    verify_hostname: t.verify_hostname,
                    ca,
                    group_key: h.finish(),
                })
            }
        };
        Ok(Upstream {
            name: c.name.clone(),
            endpoints: resolve(&c.endpoints)?
                .into_iter()
                .map(|addr| Endpoint {
                    addr,
                    failures: AtomicU32::new(0),
                    ejected_until_ms: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            connect_timeout,
            read_timeout: Duration::from_millis(c.read_timeout_ms),
            max_failures: c.health.max_failures,
            eject_for: Duration::from_secs(c.health.eject_seconds),
            tls,
            mesh,
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Next healthy endpoint not in `tried` (round robin); None when all are ejected or tried.
    /// The clock is read only when an endpoint carries an ejection time; one found expired is
    /// cleared, so a healthy pool picks without reading it.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut now = None;
        (0..n).map(|i| (start + i) % n).find(|i| {
            if tried.contains(i) {
                return false;
            }
            let ejected = &self.endpoints[*i].ejected_until_ms;
            let until = ejected.load(Ordering::Relaxed);
            if until == 0 {
                return true;
            }
            if until > *now.get_or_insert_with(|| self.now_ms()) {
                return false;
            }
            // Expired: back on the fast path (unless a new ejection replaced it meanwhile).
            let _ = ejected.compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
            true
        })
    }

    /// Records a connect result; returns true when this failure ejected the endpoint.
    pub fn record(&self, idx: usize, outcome: Outcome) -> bool {
        let Some(ep) = self.endpoints.get(idx) else {
            return false;
        };
        match outcome {
            Outcome::Connected => {
                ep.failures.store(0, Ordering::Relaxed);
                false
            }
            Outcome::ConnectFailed => {
                let f = ep.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if f >= self.max_failures {
                    ep.failures.store(0, Ordering::Relaxed);
                    let until = self.now_ms() + self.eject_for.as_millis() as u64;
                    ep.ejected_until_ms.store(until, Ordering::Relaxed);
                    return true;
                }
                false
            }
        }
    }

    /// A mesh upstream: each connection's certificate is checked (`check_connected`).
    pub fn is_mesh(&self) -> bool {
        self.mesh.is_some()
    }

    /// The Pingora peer for endpoint `idx`.
    pub fn peer(&self, idx: usize) -> Box<HttpPeer> {
        let addr = self.endpoints[idx % self.endpoints.len()].addr;
        let mut peer = match (&self.tls, &self.mesh) {
            (_, Some(m)) => m.peer(addr),
            (None, None) => HttpPeer::new(addr, false, String::new()),
            (Some(t), None) => {
                let mut p = HttpPeer::new(addr, true, t.sni.clone());
                p.options.verify_cert = true;
                p.options.verify_hostname = t.verify_hostname;
                p.options.ca = t.ca.clone();
                p.group_key = t.group_key;
                p
            }
        };
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.total_connection_timeout = Some(self.connect_timeout * 2);
        peer.options.read_timeout = Some(self.read_timeout);
        peer.options.write_timeout = Some(self.read_timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Box::new(peer)
    }

    /// Right after a connection to endpoint `idx` is made (or taken from the pool): a mesh
    /// upstream's certificate must carry the expected SPIFFE ID; `Err` holds the reason.
    pub async fn check_connected(
        &self,
        idx: usize,
        digest: Option<&pingora_core::protocols::Digest>,
    ) -> Result<(), rampart_tls::Rejection> {
        match &self.mesh {
            None => Ok(()),
            Some(m) => {
                let addr = self.endpoints[idx % self.endpoints.len()].addr;
                let leaf_sha256 = digest
                    .and_then(|d| d.ssl_digest.as_ref())
                    .map(|d| d.cert_digest.as_slice())
                    .unwrap_or_default();
                m.check(addr, leaf_sha256).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: u16, max_failures: u32) -> Upstream {
        let toml = format!(
            "name = \"u\"\nendpoints = [{}]\nhealth = {{ max_failures = {max_failures}, eject_seconds = 60 }}",
            (0..n).map(|i| format!("\"127.0.0.1:{}\"", 1000 + i)).collect::<Vec<_>>().join(",")
        );
        Upstream::build(&toml::from_str(&toml).unwrap(), None).unwrap()
    }

    #[test]
    fn names_resolve_at_load() {
        let ep = |s: &str| HostPort::try_from(s.to_string()).unwrap();
        let addrs = resolve(&[ep("localhost:8080"), ep("127.0.0.1:8080")]).unwrap();
        assert!(
            addrs.contains(&"127.0.0.1:8080".parse().unwrap()),
            "{addrs:?}"
        );
        assert_eq!(
            addrs.iter().filter(|a| a.is_ipv4()).count(),
            1,
            "duplicates folded"
        );
    }

    #[test]
    fn round_robin_skips_tried() {
        let u = pool(3, 3);
        let a = u.pick(&[]).unwrap();
        let b = u.pick(&[a]).unwrap();
        let c = u.pick(&[a, b]).unwrap();
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(a, c);
        assert_eq!(u.pick(&[a, b, c]), None);
    }

    #[test]
    fn ejects_after_consecutive_failures_and_success_resets() {
        let u = pool(2, 2);
        assert!(!u.record(0, Outcome::ConnectFailed));
        u.record(0, Outcome::Connected);
        assert!(!u.record(0, Outcome::ConnectFailed));
        assert!(u.record(0, Outcome::ConnectFailed));
        for _ in 0..4 {
            assert_eq!(u.pick(&[]), Some(1));
        }
        assert!(u.record(1, Outcome::ConnectFailed) || u.record(1, Outcome::ConnectFailed));
        assert_eq!(u.pick(&[]), None, "all ejected: the caller answers 503");
    }

    #[test]
    fn an_expired_ejection_is_picked_again_and_cleared() {
        let mut u = pool(2, 1);
        // The pool's clock a second old, so that a moment before now is not 0 ("not ejected").
        u.epoch = u.epoch.checked_sub(Duration::from_secs(1)).unwrap();
        assert!(u.record(0, Outcome::ConnectFailed), "ejected for 60 s");
        assert_eq!(u.pick(&[1]), None, "endpoint 0 is ejected");
        // The ejection's end has passed (set as if 60 s were over).
        let past = u.now_ms() - 1;
        u.endpoints[0]
            .ejected_until_ms
            .store(past, Ordering::Relaxed);
        assert_eq!(
            u.pick(&[1]),
            Some(0),
            "an expired ejection no longer skips it"
        );
        assert_eq!(u.endpoints[0].ejected_until_ms.load(Ordering::Relaxed), 0);
        // A new ejection still counts.
        assert!(u.record(0, Outcome::ConnectFailed));
        assert_eq!(u.pick(&[1]), None);
    }

    #[test]
    fn trust_settings_change_the_group_key() {
        let a = pool(1, 1);
        assert!(a.tls.is_none());
        let dir = std::env::temp_dir().join(format!("rampart-gk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut keys = Vec::new();
        for (i, name) in ["ca-one", "ca-two"].iter().enumerate() {
            let ca = super::demo_ca::EphemeralCa::new(name).unwrap();
            let path = dir.join(format!("{i}.pem"));
            std::fs::write(&path, ca.cert_pem()).unwrap();
            let toml = format!("name = \"u\"\nendpoints = [\"127.0.0.1:1\"]\ntls = {{ ca_file = {:?}, sni = \"up.test\" }}", path);
            let u = Upstream::build(&toml::from_str(&toml).unwrap(), None).unwrap();
            keys.push(u.peer(0).group_key);
        }
        assert_ne!(keys[0], keys[1]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

mod mesh;

/// The demo binary's CA, for the TLS pool tests above.
#[cfg(test)]
#[path = "bin/rampart-proxy-demo/ca.rs"]
mod demo_ca;

/// `connected_to_upstream` for every upstream: a mesh upstream whose certificate fails the
/// SPIFFE checks is refused with 502 (`upstream_identity_refused` in the access log), the
/// reason logged and counted, the endpoint's failure fed to passive health, and another
/// endpoint tried while untried ones remain. Other upstreams pass.
pub async fn admit_connection(
    metrics: &crate::metrics::Metrics,
    up: &Upstream,
    idx: usize,
    digest: Option<&pingora_core::protocols::Digest>,
    tried: usize,
) -> pingora_error::Result<()> {
    let Err(rejection) = up.check_connected(idx, digest).await else {
        return Ok(());
    };
    let endpoint = up.endpoints[idx % up.endpoints.len()].addr;
    metrics
        .upstream_mtls_refused
        .with_label_values(&[&up.name, rejection.reason()])
        .inc();
    tracing::warn!(
        upstream = %up.name,
        endpoint = %endpoint,
        reason = rejection.reason(),
        "upstream refused: its certificate failed the SPIFFE checks: {rejection}"
    );
    up.record(idx, Outcome::ConnectFailed);
    let mut e = pingora_error::Error::create(
        pingora_error::ErrorType::Custom("upstream_identity_refused"),
        pingora_error::ErrorSource::Upstream,
        Some(format!("upstream {}: {rejection}", up.name).into()),
        None,
    );
    e.set_retry(tried < up.endpoints.len());
    Err(e)
}
