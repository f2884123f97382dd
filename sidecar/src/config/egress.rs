//! The sidecar config's `[egress]` and `[gateway]` sections (the policy itself lives in the
//! policy file; these say how egress leaves).
//!
//! ```toml
//! [egress]
//! resolvers = ["10.0.0.53:53"]          # validating upstream(s) of our own resolver
//! trust_anchor = "anchor.keys"          # optional DNSKEY file; default: the DNS root's KSKs
//! proxy_listen = "127.0.0.1:15080"      # optional explicit proxy (HTTPS_PROXY=http://…)
//! gateway = { service = "egress-gateway", port = 15443 }   # optional: leave through it
//! cache_floor_secs = 5                  # optional TTL floor / ceiling of the answer cache (0 to 86400)
//! cache_ceiling_secs = 300
//! connect_timeout_secs = 5              # 1 to 3600
//! peek_timeout_secs = 10                # time for the ClientHello / request head (1 to 3600)
//!
//! [gateway]                             # this process is the egress gateway
//! listen = "0.0.0.0:15443"              # mTLS from the mesh's sidecars
//! source = "192.0.2.10"                 # the fixed address egress leaves from
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::source::{FileError, SourceFile};
use rampart_ops::config::Bounds;

/// `cache_floor_secs` and `cache_ceiling_secs`: 0 s to one day (a DNS TTL is rarely longer,
/// and the resolver adds them to the time of the answer).
pub const CACHE_SECS: Bounds = Bounds::new(0, 86_400, "s");
/// `connect_timeout_secs` and `peek_timeout_secs`: 1 s to one hour (added to the time a
/// connection starts, and to each other for the gateway's answer).
pub const TIMEOUT_SECS: Bounds = Bounds::new(1, 3_600, "s");

/// `[egress]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgressConfig {
    #[serde(default)]
    resolvers: Vec<SocketAddr>,
    #[serde(default)]
    trust_anchor: Option<PathBuf>,
    #[serde(default)]
    proxy_listen: Option<SocketAddr>,
    #[serde(default)]
    gateway: Option<GatewayRef>,
    #[serde(default)]
    cache_floor_secs: Option<Spanned<u64>>,
    #[serde(default)]
    cache_ceiling_secs: Option<Spanned<u64>>,
    #[serde(default)]
    connect_timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    peek_timeout_secs: Option<Spanned<u64>>,
}

/// The egress gateway a sidecar sends its allowed egress to: a directory service and port
/// (the directory gives its address and the identity it must present).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRef {
    /// The gateway's directory service name.
    pub service: String,
    /// Its port in the directory.
    pub port: u16,
}

/// How this sidecar's egress leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Upstream resolvers (validating); empty only when a gateway resolves.
    pub resolvers: Vec<SocketAddr>,
    /// DNSKEY trust anchor file (resolved against the config's folder); `None`: the root's.
    pub trust_anchor: Option<PathBuf>,
    /// Explicit proxy listener (loopback).
    pub proxy_listen: Option<SocketAddr>,
    /// Send allowed egress through this gateway instead of dialling out.
    pub gateway: Option<GatewayRef>,
    /// Answer cache floor.
    pub cache_floor: Duration,
    /// Answer cache ceiling.
    pub cache_ceiling: Duration,
    /// Per-address connect timeout.
    pub connect_timeout: Duration,
    /// Time the client has to send its ClientHello or request head.
    pub peek_timeout: Duration,
}

/// `[gateway]`: this process is the egress gateway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The mTLS listener sidecars connect to.
    pub listen: SocketAddr,
    /// The fixed source address every outgoing connection is bound to.
    pub source: IpAddr,
}

impl EgressConfig {
    /// Checks `[egress]`; `base` is the config file's folder. `gateway_mode` says whether the
    /// file also has `[gateway]` (which needs resolvers of its own).
    pub fn from_raw(
        raw: Spanned<RawEgressConfig>,
        base: &Path,
        source: &SourceFile,
        gateway_mode: bool,
    ) -> Result<Self, FileError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let err = |field: &str, message: String| {
            source.error_at(Some(span.clone()), Some(field.into()), message)
        };
        if raw.resolvers.is_empty() && (raw.gateway.is_none() || gateway_mode) {
            return Err(err(
                "egress.resolvers",
                "name the validating resolver(s) our resolver asks (\"IP:53\"); only a sidecar that sends its egress to a gateway may go without".into(),
            ));
        }
        if let Some(l) = raw.proxy_listen {
            if !l.ip().is_loopback() {
                return Err(err(
                    "egress.proxy_listen",
                    format!("{l} must be a loopback address: only the app may use the proxy"),
                ));
            }
        }
        if let Some(g) = &raw.gateway {
            if !crate::directory::valid_name(&g.service) || g.port == 0 {
                return Err(err(
                    "egress.gateway",
                    format!("`{}:{}` is not a service name and port", g.service, g.port),
                ));
            }
            if gateway_mode {
                return Err(err(
                    "egress.gateway",
                    "the gateway itself dials out: remove egress.gateway from the gateway's config"
                        .into(),
                ));
            }
        }
        // Refused at the value's own line when it is written.
        let secs = |field: &str, v: Option<Spanned<u64>>, default: u64, range: Bounds| {
            super::bounded(source, ("egress", &span), field, v, default, range)
                .map(Duration::from_secs)
        };
        let cache_floor = secs("cache_floor_secs", raw.cache_floor_secs, 5, CACHE_SECS)?;
        let cache_ceiling = secs(
            "cache_ceiling_secs",
            raw.cache_ceiling_secs,
            300,
            CACHE_SECS,
        )?;
        if cache_floor > cache_ceiling {
            return Err(err(
                "egress.cache_floor_secs",
                format!("the floor {cache_floor:?} is above cache_ceiling_secs, {cache_ceiling:?}"),
            ));
        }
        let connect_timeout = secs(
            "connect_timeout_secs",
            raw.connect_timeout_secs,
            5,
            TIMEOUT_SECS,
        )?;
        let peek_timeout = secs("peek_timeout_secs", raw.peek_timeout_secs, 10, TIMEOUT_SECS)?;
        Ok(EgressConfig {
            resolvers: raw.resolvers,
            trust_anchor: raw.trust_anchor.map(|p| base.join(p)),
            proxy_listen: raw.proxy_listen,
            gateway: raw.gateway,
            cache_floor,
            cache_ceiling,
            connect_timeout,
            peek_timeout,
        })
    }

    /// The resolver settings (validation always on).
    pub fn resolver_config(&self) -> rampart_dns::ResolverConfig {
        let mut c = rampart_dns::ResolverConfig::new(self.resolvers.clone());
        if let Some(a) = &self.trust_anchor {
            c.trust_anchor = rampart_dns::TrustAnchor::File(a.clone());
        }
        c.cache_floor = self.cache_floor;
        c.cache_ceiling = self.cache_ceiling;
        c
    }
}

/// Checks the `[egress]` and `[gateway]` sections of a config together.
pub(crate) fn sections(
    egress: Option<Spanned<RawEgressConfig>>,
    gateway: Option<Spanned<GatewayConfig>>,
    base: &Path,
    source: &SourceFile,
) -> Result<(Option<EgressConfig>, Option<GatewayConfig>), FileError> {
    let gateway_span = gateway.as_ref().map(|g| g.span());
    let gateway = gateway.map(Spanned::into_inner);
    let egress = egress
        .map(|e| EgressConfig::from_raw(e, base, source, gateway.is_some()))
        .transpose()?;
    if let (Some(span), None) = (gateway_span, &egress) {
        return Err(source.error_at(
            Some(span),
            Some("gateway".into()),
            "the gateway resolves names itself: add [egress] with its resolvers".into(),
        ));
    }
    Ok((egress, gateway))
}
