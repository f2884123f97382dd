//! The sidecar's own config file (`rampart-sidecar run --config FILE`): which workload it
//! fronts, its policy and directory files, its listeners.
//!
//! ```toml
//! service = "payments"                  # this workload's name in the mesh directory
//! trust_domain = "mesh.local"
//! policy = "policy.toml"                # relative to this file
//! directory = "directory.toml"
//! identity = { cert = "svid.pem", key = "svid.key", bundle = "bundle.pem" }
//! admin = { listen = "127.0.0.1:15090" }    # /metrics /healthz /readyz
//!
//! [[inbound.port]]
//! port = 8080                           # the app port peers call (policy names it)
//! protocol = "http"                     # or "tcp"
//! app = "127.0.0.1:8080"                # where the app listens, on loopback
//! listen = "0.0.0.0:18080"              # explicit mode: the sidecar's mTLS listener
//!
//! [[outbound.listener]]                 # explicit mode: one local listener per upstream
//! listen = "127.0.0.1:29000"
//! service = "ledger"
//! port = 9000
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_tls::spiffe::TrustDomain;
use serde::Deserialize;
use toml::Spanned;

pub mod egress;

use crate::directory::valid_name;
use crate::source::{FileError, SourceFile};
use rampart_ops::config::{Bounds, SVID_TTL_SECS};

/// Whether a port carries HTTP/1.1 (requests decided one by one) or opaque TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1: per-request policy, `x-forwarded-client-cert` set for the app.
    Http,
    /// Opaque TCP: per-connection policy.
    Tcp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    service: Spanned<String>,
    trust_domain: Spanned<String>,
    policy: PathBuf,
    directory: PathBuf,
    #[serde(default)]
    inbound: RawInbound,
    #[serde(default)]
    outbound: RawOutbound,
    identity: Spanned<RawIdentity>,
    #[serde(default)]
    admin: Option<Admin>,
    /// How egress leaves ([`egress`]).
    #[serde(default)]
    egress: Option<Spanned<egress::RawEgressConfig>>,
    /// Gateway mode ([`egress`]).
    #[serde(default)]
    gateway: Option<Spanned<egress::GatewayConfig>>,
    /// Threads that run connections ([`Config::threads`]).
    #[serde(default)]
    threads: Option<Spanned<u16>>,
}

/// `[identity]` as written: either SVID files, or the CA to bootstrap and renew from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    bundle: PathBuf,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    spiffe_id: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    revoked: Option<PathBuf>,
}

/// Where the sidecar's identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityConfig {
    /// SVID files written by someone else (an agent, `rampart-pki`), re-read when they change.
    Files {
        /// PEM chain, leaf first.
        cert: PathBuf,
        /// PEM PKCS#8 key (0600).
        key: PathBuf,
        /// PEM roots of the trust domain.
        bundle: PathBuf,
        /// Revoked identities and serials (`ids = […]`, `serials = […]`), re-read on change.
        revoked: Option<PathBuf>,
    },
    /// The Rampart CA: bootstrap with a join token, renew at 2/3 of the lifetime, refresh the
    /// bundle; keep serving while the CA is down; fail closed after expiry.
    Ca {
        /// `https://HOST:PORT` of the CA service.
        endpoint: String,
        /// Our SPIFFE ID (must match the join token).
        spiffe_id: rampart_tls::spiffe::SpiffeId,
        /// PEM roots the workload was provisioned with (authenticate the CA).
        bundle: PathBuf,
        /// One-time join token (not needed when `state_dir` holds a valid SVID).
        token_file: Option<PathBuf>,
        /// Where the SVID is kept across restarts (key 0600).
        state_dir: Option<PathBuf>,
        /// Lifetime to ask for (default: the CA's, 24 h).
        ttl_secs: Option<u64>,
    },
}

impl IdentityConfig {
    /// The bundle file.
    pub fn bundle(&self) -> &Path {
        match self {
            IdentityConfig::Files { bundle, .. } | IdentityConfig::Ca { bundle, .. } => bundle,
        }
    }
}

/// The admin listener: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Where it listens.
    pub listen: SocketAddr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInbound {
    #[serde(default, rename = "port")]
    ports: Vec<Spanned<InboundPort>>,
    /// Transparent mode: where redirected peer traffic arrives (`init-redirect` sends every
    /// inbound port here); the app port is the connection's original destination.
    #[serde(default)]
    transparent_listen: Option<SocketAddr>,
    #[serde(default)]
    limits: Option<Spanned<RawLimits>>,
}

/// `[inbound.limits]` as written (each number with its place, to refuse it at its line).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<Spanned<usize>>,
    max_per_ip: Option<Spanned<u32>>,
    new_per_ip_per_second: Option<Spanned<u32>>,
    handshake_timeout_ms: Option<Spanned<u64>>,
}

/// A number of `table` (whose text spans `span`) checked against `range`: the value as written,
/// refused at its own line with its whole key (`inbound.limits.max_per_ip`), or `default` when
/// the file leaves it out.
pub(crate) fn bounded<T: Copy + TryInto<u64> + std::fmt::Display>(
    source: &SourceFile,
    (table, span): (&str, &Range<usize>),
    key: &str,
    value: Option<Spanned<T>>,
    default: T,
    range: Bounds,
) -> Result<T, FileError> {
    let (at, v) = match value {
        Some(v) => (v.span(), *v.get_ref()),
        None => (span.clone(), default),
    };
    range
        .check(key, v)
        .map_err(|m| source.error_at(Some(at), Some(format!("{table}.{key}")), m))
}

/// Caps on the inbound listeners (`rampart-protect`'s connection limiter), checked when a
/// connection is accepted, before its TLS handshake; and the handshake's deadline.
///
/// ```toml
/// [inbound.limits]
/// max_connections = 4096        # open inbound connections from all peers; 0 = no cap (to 10,000,000)
/// max_per_ip = 256              # open connections from one address (IPv4 /32, IPv6 /64); 0 = no cap (to 10,000,000)
/// new_per_ip_per_second = 1000  # new connections per second from one address, burst twice that (1 to 1,000,000)
/// handshake_timeout_ms = 5000   # a TLS handshake must finish within this (100 ms to 60 s)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundLimits {
    /// Open inbound connections, all peers together (0: no cap).
    pub max_connections: usize,
    /// Open inbound connections from one address (0: no cap).
    pub max_per_ip: u32,
    /// New connections per second from one address (burst: twice this).
    pub new_per_ip_per_second: u32,
    /// How long a peer's TLS handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for InboundLimits {
    /// Safe defaults: room for a busy workload's peers (connection pools of many callers),
    /// not for one address holding the listener; a handshake on a mesh link takes
    /// milliseconds, so 5 s is generous and still short for a stalled client.
    fn default() -> Self {
        InboundLimits {
            max_connections: 4096,
            max_per_ip: 256,
            new_per_ip_per_second: 1000,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

impl InboundLimits {
    /// `handshake_timeout_ms`: 100 ms to 60 s (a mesh handshake takes milliseconds).
    pub const HANDSHAKE_MS: Bounds = Bounds::new(100, 60_000, "ms");
    /// `max_connections`, `max_per_ip`: the edge's range (0, no cap, to ten million).
    pub const CONNECTIONS: Bounds = rampart_protect::conn_limit::CONNECTIONS;
    /// `new_per_ip_per_second`: 1 (0 would refuse every connection) to a million.
    pub const NEW_PER_SECOND: Bounds = Bounds::new(1, 1_000_000, "");

    fn from_raw(raw: Spanned<RawLimits>, source: &SourceFile) -> Result<Self, FileError> {
        let d = InboundLimits::default();
        let span = raw.span();
        let raw = raw.into_inner();
        let table = ("inbound.limits", &span);
        let handshake_ms = bounded(
            source,
            table,
            "handshake_timeout_ms",
            raw.handshake_timeout_ms,
            d.handshake_timeout.as_millis() as u64,
            Self::HANDSHAKE_MS,
        )?;
        Ok(InboundLimits {
            max_connections: bounded(
                source,
                table,
                "max_connections",
                raw.max_connections,
                d.max_connections,
                Self::CONNECTIONS,
            )?,
            max_per_ip: bounded(
                source,
                table,
                "max_per_ip",
                raw.max_per_ip,
                d.max_per_ip,
                Self::CONNECTIONS,
            )?,
            new_per_ip_per_second: bounded(
                source,
                table,
                "new_per_ip_per_second",
                raw.new_per_ip_per_second,
                d.new_per_ip_per_second,
                Self::NEW_PER_SECOND,
            )?,
            handshake_timeout: Duration::from_millis(handshake_ms),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    #[serde(default, rename = "listener")]
    listeners: Vec<Spanned<OutboundListener>>,
    /// Transparent mode: where the app's redirected connections arrive; the destination is the
    /// original one, looked up in the directory.
    #[serde(default)]
    transparent_listen: Option<SocketAddr>,
}

/// One app port fronted by the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundPort {
    /// The app port callers address and policy names.
    pub port: u16,
    /// HTTP or TCP.
    pub protocol: Protocol,
    /// The app's own listener (loopback).
    pub app: SocketAddr,
    /// The sidecar's mTLS listener for this port (explicit mode; optional when
    /// `inbound.transparent_listen` is set).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// One explicit outbound listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundListener {
    /// Where the app connects (loopback).
    pub listen: SocketAddr,
    /// The directory service it leads to.
    pub service: String,
    /// The service port.
    pub port: u16,
}

/// The loaded config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub source: SourceFile,
    /// This workload's service name.
    pub service: String,
    /// The mesh's trust domain.
    pub trust_domain: TrustDomain,
    /// The policy file (resolved against the config's folder).
    pub policy: PathBuf,
    /// The directory file (resolved).
    pub directory: PathBuf,
    /// App ports.
    pub inbound: Vec<InboundPort>,
    /// Explicit outbound listeners.
    pub outbound: Vec<OutboundListener>,
    /// Transparent inbound listener, if any.
    pub inbound_transparent: Option<SocketAddr>,
    /// Transparent outbound listener, if any.
    pub outbound_transparent: Option<SocketAddr>,
    /// Caps and the handshake deadline of the inbound listeners.
    pub inbound_limits: InboundLimits,
    /// SVID and bundle files (resolved).
    pub identity: IdentityConfig,
    /// The admin listener, if any.
    pub admin: Option<Admin>,
    /// `[egress]`: resolvers, explicit proxy, gateway to use (docs/egress.md).
    pub egress: Option<egress::EgressConfig>,
    /// `[gateway]`: this process is the egress gateway.
    pub gateway: Option<egress::GatewayConfig>,
    /// Threads that run connections: 1 (the default) runs every connection on one thread (tokio's
    /// current-thread runtime: no hand-off between threads, the lowest CPU per request and
    /// latency measured, docs/measurements/sidecar.md); more for a workload whose sidecar needs
    /// more than one core (a multi-thread runtime with that many workers).
    pub threads: u16,
}

/// The most threads `threads` may ask for.
pub const MAX_THREADS: u16 = 64;

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::from_source(SourceFile::read(path)?)
    }

    /// Checks a config already read.
    pub fn from_source(source: SourceFile) -> Result<Self, FileError> {
        let raw: RawConfig = source.parse()?;
        let err = |span, field: &str, message: String| {
            source.error_at(Some(span), Some(field.to_string()), message)
        };
        let service_span = raw.service.span();
        let service = raw.service.into_inner();
        if !valid_name(&service) {
            return Err(err(
                service_span,
                "service",
                format!("`{service}` is not a service name (1-63 characters of [a-z0-9-])"),
            ));
        }
        let td_span = raw.trust_domain.span();
        let trust_domain = TrustDomain::parse(raw.trust_domain.get_ref())
            .map_err(|e| err(td_span, "trust_domain", e.to_string()))?;
        let mut ports = HashSet::new();
        let mut listens = HashSet::new();
        let mut inbound = Vec::new();
        let transparent_in = raw.inbound.transparent_listen;
        let inbound_limits = match raw.inbound.limits {
            None => InboundLimits::default(),
            Some(l) => InboundLimits::from_raw(l, &source)?,
        };
        for (i, p) in raw.inbound.ports.into_iter().enumerate() {
            let span = p.span();
            let p = p.into_inner();
            let field = format!("inbound.port[{i}]");
            if p.port == 0 || !ports.insert(p.port) {
                return Err(err(
                    span,
                    &field,
                    format!("port {} is 0 or listed twice", p.port),
                ));
            }
            if !p.app.ip().is_loopback() {
                return Err(err(
                    span,
                    &format!("{field}.app"),
                    format!("app address {} must be on loopback: the sidecar forwards plain text only there", p.app),
                ));
            }
            match p.listen {
                Some(l) if l.port() != 0 && !listens.insert(l) => {
                    return Err(err(
                        span,
                        &format!("{field}.listen"),
                        format!("{l} is used twice"),
                    ));
                }
                None if transparent_in.is_none() => {
                    return Err(err(
                        span,
                        &format!("{field}.listen"),
                        "give the port a `listen` address, or set inbound.transparent_listen"
                            .into(),
                    ));
                }
                _ => {}
            }
            inbound.push(p);
        }
        let mut outbound = Vec::new();
        for (i, l) in raw.outbound.listeners.into_iter().enumerate() {
            let span = l.span();
            let l = l.into_inner();
            let field = format!("outbound.listener[{i}]");
            if !l.listen.ip().is_loopback() {
                return Err(err(
                    span,
                    &format!("{field}.listen"),
                    format!(
                        "{} must be a loopback address: only the app may use it",
                        l.listen
                    ),
                ));
            }
            if l.listen.port() != 0 && !listens.insert(l.listen) {
                return Err(err(
                    span,
                    &format!("{field}.listen"),
                    format!("{} is used twice", l.listen),
                ));
            }
            if !valid_name(&l.service) || l.port == 0 {
                return Err(err(
                    span,
                    &field,
                    format!("`{}:{}` is not a service name and port", l.service, l.port),
                ));
            }
            outbound.push(l);
        }
        let base = source.path().parent().unwrap_or(Path::new("."));
        let id_span = raw.identity.span();
        let id = raw.identity.into_inner();
        let identity = match (id.cert, id.key, id.ca, id.spiffe_id) {
            (Some(cert), Some(key), None, None)
                if id.token_file.is_none() && id.state_dir.is_none() && id.ttl_secs.is_none() =>
            {
                IdentityConfig::Files {
                    cert: base.join(cert),
                    key: base.join(key),
                    bundle: base.join(&id.bundle),
                    revoked: id.revoked.map(|r| base.join(r)),
                }
            }
            (None, None, Some(_), Some(_)) if id.revoked.is_some() => {
                return Err(err(
                    id_span,
                    "identity.revoked",
                    "with the CA, revocations come from the CA; remove `revoked`".into(),
                ))
            }
            (None, None, Some(endpoint), Some(spiffe_id)) => {
                let spiffe_id = rampart_tls::spiffe::SpiffeId::parse(&spiffe_id)
                    .map_err(|e| err(id_span.clone(), "identity.spiffe_id", e.to_string()))?;
                if !spiffe_id.is_member_of(&trust_domain) {
                    return Err(err(
                        id_span,
                        "identity.spiffe_id",
                        format!("{spiffe_id} is outside the trust domain {trust_domain}"),
                    ));
                }
                if id.token_file.is_none() && id.state_dir.is_none() {
                    return Err(err(
                        id_span,
                        "identity.token_file",
                        "give a join token file, or a state_dir holding an SVID from an earlier run".into(),
                    ));
                }
                if let Some(ttl) = id.ttl_secs {
                    SVID_TTL_SECS
                        .check("ttl_secs", ttl)
                        .map_err(|m| err(id_span.clone(), "identity.ttl_secs", m))?;
                }
                IdentityConfig::Ca {
                    endpoint,
                    spiffe_id,
                    bundle: base.join(&id.bundle),
                    token_file: id.token_file.map(|t| base.join(t)),
                    state_dir: id.state_dir.map(|d| base.join(d)),
                    ttl_secs: id.ttl_secs,
                }
            }
            _ => {
                return Err(err(
                    id_span,
                    "identity",
                    "give either cert + key (SVID files), or ca + spiffe_id (+ token_file / state_dir, ttl_secs) to use the CA; bundle in both cases".into(),
                ))
            }
        };
        let (egress, gateway) = egress::sections(raw.egress, raw.gateway, base, &source)?;
        let threads = match raw.threads {
            None => 1,
            Some(t) if (1..=MAX_THREADS).contains(t.get_ref()) => t.into_inner(),
            Some(t) => {
                return Err(err(
                    t.span(),
                    "threads",
                    format!("{} threads: 1 to {MAX_THREADS}", t.get_ref()),
                ))
            }
        };
        Ok(Config {
            threads,
            egress,
            gateway,
            identity,
            admin: raw.admin,
            policy: base.join(&raw.policy),
            directory: base.join(&raw.directory),
            source,
            service,
            trust_domain,
            inbound,
            outbound,
            inbound_transparent: raw.inbound.transparent_listen,
            inbound_limits,
            outbound_transparent: raw.outbound.transparent_listen,
        })
    }

    /// The config of an app port.
    pub fn inbound_port(&self, port: u16) -> Option<&InboundPort> {
        self.inbound.iter().find(|p| p.port == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, FileError> {
        Config::from_source(SourceFile::from_text(
            Path::new("/etc/r/sidecar.toml"),
            text.into(),
        ))
    }

    /// The payments fixture with its directory at an absolute path.
    fn good() -> String {
        crate::fixtures::payments_sidecar().replace(
            "directory = \"directory.toml\"",
            "directory = \"/abs/directory.toml\"",
        )
    }

    #[test]
    fn loads_and_resolves_paths() {
        let c = load(&good()).unwrap();
        assert_eq!(c.policy, Path::new("/etc/r/policy.toml"));
        assert_eq!(c.directory, Path::new("/abs/directory.toml"));
        assert_eq!(c.inbound_port(8080).unwrap().protocol, Protocol::Http);
        assert!(c.inbound_port(1).is_none());
        assert_eq!(c.outbound[0].service, "ledger");
    }

    #[test]
    fn refuses_bad_values_with_their_place() {
        let e = load(&good().replace("127.0.0.1:8080", "10.0.0.1:8080")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inbound.port[0].app"), "{e}");
        assert!(e.message.contains("loopback"), "{e}");
        let e = load(&good().replace("protocol = \"http\"", "protocol = \"grpc\"")).unwrap_err();
        let protocol = crate::fixtures::line_of(&good(), "protocol = \"http\"");
        assert_eq!(e.line, Some(protocol), "{e}");
        let e = load(&good().replace("trust_domain", "trust_domian")).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let e = load(&good().replace("mesh.local", "Mesh")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("trust_domain"), "{e}");
        let e = load(&good().replace("127.0.0.1:29000", "0.0.0.0:29000")).unwrap_err();
        assert!(e.message.contains("loopback"), "{e}");
    }

    #[test]
    fn inbound_limits_have_safe_defaults_and_are_checked() {
        assert_eq!(
            load(&good()).unwrap().inbound_limits,
            InboundLimits::default()
        );
        let with = |limits: &str| {
            load(&good().replace(
                "[[outbound.listener]]",
                &format!("[inbound.limits]\n{limits}\n\n[[outbound.listener]]"),
            ))
        };
        let c = with("max_per_ip = 8\nhandshake_timeout_ms = 750").unwrap();
        assert_eq!(c.inbound_limits.max_per_ip, 8);
        assert_eq!(
            c.inbound_limits.handshake_timeout,
            Duration::from_millis(750)
        );
        assert_eq!(c.inbound_limits.max_connections, 4096);
        // Each refused at its own line, with its whole key.
        let text = good().replace(
            "[[outbound.listener]]",
            "[inbound.limits]\nmax_per_ip = 8\nhandshake_timeout_ms = 0\n[[outbound.listener]]",
        );
        let e = load(&text).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("inbound.limits.handshake_timeout_ms"),
            "{e}"
        );
        assert!(e.message.contains("100 to 60000"), "{e}");
        assert_eq!(
            e.line,
            Some(crate::fixtures::line_of(&text, "handshake_timeout_ms = 0")),
            "{e}"
        );
        let e = with("new_per_ip_per_second = 0").unwrap_err();
        assert!(e.message.contains("new_per_ip_per_second = 0"), "{e}");
        let e = with("max_per_pi = 3").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn threads_default_to_one_and_are_checked() {
        assert_eq!(load(&good()).unwrap().threads, 1);
        let with = |n: &str| load(&format!("threads = {n}\n{}", good()));
        assert_eq!(with("4").unwrap().threads, 4);
        let e = with("0").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("threads"), "{e}");
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("1 to 64"), "{e}");
        assert!(with("65").is_err());
    }

    /// Every number of the file at its extremes: accepted (0 where it means "off") or refused
    /// with an error naming the field, never a panic and never a value that overflows later.
    #[test]
    fn every_number_at_its_extremes_is_refused_by_name_or_accepted() {
        let egress = |kv: &str| {
            format!(
                "{}\n[egress]\nresolvers = [\"127.0.0.1:53\"]\n{kv}\n",
                good()
            )
        };
        let limits = |kv: &str| {
            good().replace(
                "[[outbound.listener]]",
                &format!("[inbound.limits]\n{kv}\n\n[[outbound.listener]]"),
            )
        };
        let ca_identity = |kv: &str| {
            good().replace(
                crate::fixtures::SVID_FILES,
                &format!("{{ ca = \"https://ca.mesh.local:8443\", spiffe_id = \"{}\", bundle = \"b.pem\", state_dir = \"s\", {kv} }}", crate::fixtures::PAYMENTS),
            )
        };
        let top = |kv: &str| format!("{kv}\n{}", good());
        type Place<'a> = &'a dyn Fn(&str) -> String;
        let cases: [(&str, &str, Place); 10] = [
            ("cache_floor_secs", "egress.cache_floor_secs", &egress),
            ("cache_ceiling_secs", "egress.cache_ceiling_secs", &egress),
            (
                "connect_timeout_secs",
                "egress.connect_timeout_secs",
                &egress,
            ),
            ("peek_timeout_secs", "egress.peek_timeout_secs", &egress),
            ("max_connections", "inbound.limits.max_connections", &limits),
            ("max_per_ip", "inbound.limits.max_per_ip", &limits),
            (
                "new_per_ip_per_second",
                "inbound.limits.new_per_ip_per_second",
                &limits,
            ),
            (
                "handshake_timeout_ms",
                "inbound.limits.handshake_timeout_ms",
                &limits,
            ),
            ("ttl_secs", "identity", &ca_identity),
            ("threads", "threads", &top),
        ];
        for (key, field, place) in cases {
            for value in ["0", "9223372036854775807", "18446744073709551615"] {
                let text = place(&format!("{key} = {value}"));
                let Err(e) = load(&text) else {
                    assert_eq!(value, "0", "{key} = {value} was accepted");
                    continue;
                };
                let written = format!("{key} = {value}");
                let at = text
                    .lines()
                    .position(|l| l.contains(&written))
                    .map(|i| i + 1);
                // At the value's line, or (a table checked whole) at its header's.
                assert!(e.line.is_some() && e.line <= at, "{key} = {value}: {e}");
                let own_line = field.starts_with("egress") || field.starts_with("inbound.limits");
                if own_line && e.message.contains("out of range") {
                    assert_eq!(e.line, at, "{key} = {value}: {e}");
                    assert_eq!(e.field.as_deref(), Some(field), "{key} = {value}: {e}");
                }
                if value == "18446744073709551615" {
                    // Past TOML's integers (i64): refused by the TOML reader, at its line.
                    assert!(e.message.contains("too large"), "{key} = {value}: {e}");
                    continue;
                }
                let named = e.field.as_deref().unwrap_or_default();
                assert!(
                    named.starts_with(field.split('.').next().unwrap_or_default())
                        && (named.ends_with(key) || e.message.contains(key)),
                    "{key} = {value}: {e}"
                );
            }
        }
        // In range, the egress values are taken as written.
        let c = load(&egress(
            "peek_timeout_secs = 3600\nconnect_timeout_secs = 1",
        ))
        .unwrap();
        let e = c.egress.unwrap();
        assert_eq!(e.peek_timeout, Duration::from_secs(3600));
        assert_eq!(e.connect_timeout, Duration::from_secs(1));
    }
}
