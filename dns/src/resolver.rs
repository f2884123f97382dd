//! The resolver: hickory-resolver with DNSSEC validation, classified and vetted by us.
//!
//! hickory-resolver 0.26 validates, but does not fail closed: records whose signatures do not
//! validate come back `Ok` with `proof = Bogus` on each record, and `LookupIp` ignores the proof.
//! So we look up A and AAAA ourselves, read every record's proof, and decide:
//!
//! | proof of the answer   | `dnssec = "if-signed"` | `dnssec = "required"` |
//! |-----------------------|------------------------|-----------------------|
//! | secure                | allowed                | allowed               |
//! | insecure (unsigned)   | allowed                | denied `unsigned`     |
//! | bogus                 | denied `bogus`         | denied `bogus`        |
//! | indeterminate         | denied `indeterminate` | denied `indeterminate`|
//!
//! hickory reports a network failure while fetching DNSKEY/DS records as `Bogus` (hickory
//! #3932/#3964), and a validating upstream answers a bogus name with a bare SERVFAIL. Both are
//! told apart from a real signature failure by a probe: the same question sent to the upstream
//! with Checking Disabled. If the upstream does not answer the probe, the denial is
//! `resolver_unreachable`; if it answers with data that the validated path refused, `bogus`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig as HConfig,
    ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use ipnet::IpNet;
use serde::Deserialize;

use crate::vet::{self, Refusal};

/// What an egress rule demands of DNSSEC for its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecMode {
    /// The answer must validate (secure). Unsigned zones are denied.
    Required,
    /// Signed zones must validate; names in provably unsigned zones are allowed.
    #[default]
    IfSigned,
}

impl DnssecMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DnssecMode::Required => "required",
            DnssecMode::IfSigned => "if-signed",
        }
    }
}

/// The DNSSEC status of an answer, as we classify it from hickory's per-record proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    Secure,
    Insecure,
    Bogus,
    Indeterminate,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Secure => "secure",
            Security::Insecure => "insecure",
            Security::Bogus => "bogus",
            Security::Indeterminate => "indeterminate",
        }
    }

    fn from_proof(p: Proof) -> Self {
        match p {
            Proof::Secure => Security::Secure,
            Proof::Insecure => Security::Insecure,
            Proof::Bogus => Security::Bogus,
            Proof::Indeterminate => Security::Indeterminate,
        }
    }

    /// The weaker of two: bogus < indeterminate < insecure < secure. A single bogus record
    /// makes the whole answer bogus.
    fn weakest(self, other: Security) -> Security {
        fn rank(s: Security) -> u8 {
            match s {
                Security::Bogus => 0,
                Security::Indeterminate => 1,
                Security::Insecure => 2,
                Security::Secure => 3,
            }
        }
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the trust anchor comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustAnchor {
    /// hickory's built-in root KSKs (20326, 38696).
    #[default]
    Root,
    /// A file of DNSKEY records ("name TTL IN DNSKEY 257 3 13 ..."), e.g. for a private tree.
    File(PathBuf),
}

/// Resolver settings. Validation is always on; there is no switch to turn it off.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Upstream resolvers (UDP, TCP fallback). Queried in order of hickory's server selection.
    pub upstreams: Vec<SocketAddr>,
    pub trust_anchor: TrustAnchor,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Shortest time an answer is kept, whatever its TTL says (0 = honour TTL 0).
    pub cache_floor: Duration,
    /// Longest time an answer is kept, whatever its TTL says.
    pub cache_ceiling: Duration,
    /// Most names kept in the cache; the oldest entries are dropped beyond it.
    pub cache_capacity: usize,
}

impl ResolverConfig {
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            upstreams,
            trust_anchor: TrustAnchor::Root,
            timeout: Duration::from_secs(3),
            attempts: 2,
            cache_floor: Duration::from_secs(5),
            cache_ceiling: Duration::from_secs(300),
            cache_capacity: 10_000,
        }
    }
}

/// Why a lookup did not produce an address to dial. Every variant names the host.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsDenial {
    #[error("{host:?} is not a valid DNS name: {detail}")]
    InvalidName { host: String, detail: String },
    #[error("{host} does not exist (NXDOMAIN)")]
    NoSuchName { host: String },
    #[error("{host} has no A or AAAA records")]
    NoAddresses { host: String },
    #[error("{host}: DNSSEC validation failed (bogus): {detail}")]
    Bogus { host: String, detail: String },
    #[error(
        "{host} is in an unsigned zone (DNSSEC insecure) and the rule says dnssec = \"required\""
    )]
    Unsigned { host: String },
    #[error("{host}: DNSSEC status could not be determined (indeterminate): {detail}")]
    Indeterminate { host: String, detail: String },
    #[error("{host}: resolver unreachable ({upstreams}): {detail}")]
    ResolverUnreachable {
        host: String,
        upstreams: String,
        detail: String,
    },
    #[error("{host}: the upstream resolver failed ({rcode}): {detail}")]
    UpstreamFailure {
        host: String,
        rcode: String,
        detail: String,
    },
    #[error("{host} resolved to {refusal}, which no rule names")]
    AddressRefused { host: String, refusal: Refusal },
}

impl DnsDenial {
    /// Stable reason code (logs, metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            DnsDenial::InvalidName { .. } => "dns_invalid_name",
            DnsDenial::NoSuchName { .. } => "dns_nxdomain",
            DnsDenial::NoAddresses { .. } => "dns_no_addresses",
            DnsDenial::Bogus { .. } => "dnssec_bogus",
            DnsDenial::Unsigned { .. } => "dnssec_unsigned",
            DnsDenial::Indeterminate { .. } => "dnssec_indeterminate",
            DnsDenial::ResolverUnreachable { .. } => "resolver_unreachable",
            DnsDenial::UpstreamFailure { .. } => "resolver_failure",
            DnsDenial::AddressRefused { .. } => "address_refused",
        }
    }
}

/// A vetted answer: the addresses the caller must dial, and nothing else (no second lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The name as looked up (lower case, no trailing dot).
    pub host: String,
    /// Every address of the answer, all vetted, in answer order (IPv4 first). Never empty.
    pub addrs: Vec<IpAddr>,
    pub security: Security,
    /// How much longer the answer is cached.
    pub ttl_remaining: Duration,
    /// Whether the answer came from our cache.
    pub from_cache: bool,
}

#[derive(Debug, Clone)]
struct Answer {
    addrs: Vec<IpAddr>,
    security: Security,
    expires: Instant,
}

/// The DNSSEC-validating, vetting, caching resolver.
pub struct Resolver {
    inner: TokioResolver,
    config: ResolverConfig,
    cache: Mutex<HashMap<String, Answer>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("upstreams", &self.config.upstreams)
            .finish()
    }
}

/// The resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no upstream resolver configured")]
    NoUpstreams,
    #[error("trust anchor file {path}: {detail}")]
    TrustAnchor { path: PathBuf, detail: String },
    #[error("cache floor {floor:?} is above the ceiling {ceiling:?}")]
    CacheBounds { floor: Duration, ceiling: Duration },
    #[error("building the resolver: {0}")]
    Hickory(String),
}

impl Resolver {
    pub fn new(config: ResolverConfig) -> Result<Self, BuildError> {
        if config.upstreams.is_empty() {
            return Err(BuildError::NoUpstreams);
        }
        if config.cache_floor > config.cache_ceiling {
            return Err(BuildError::CacheBounds {
                floor: config.cache_floor,
                ceiling: config.cache_ceiling,
            });
        }
        let anchors = match &config.trust_anchor {
            TrustAnchor::Root => TrustAnchors::default(),
            TrustAnchor::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| BuildError::TrustAnchor {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                let anchors: TrustAnchors = text.parse().map_err(|e| BuildError::TrustAnchor {
                    path: path.clone(),
                    detail: format!("{e}"),
                })?;
                anchors
            }
        };
        let servers = config
            .upstreams
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::new(ProtocolConfig::Udp);
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::new(ProtocolConfig::Tcp);
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.validate = true;
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.edns0 = true;
        opts.try_tcp_on_error = true;
        opts.preserve_intermediates = true;
        // Our cache decides how long an answer lives; hickory's may not keep one longer.
        opts.positive_max_ttl = Some(config.cache_ceiling);
        opts.negative_max_ttl = Some(config.cache_ceiling);
        let inner = TokioResolver::builder_with_config(
            HConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .with_trust_anchor(Arc::new(anchors))
        .build()
        .map_err(|e| BuildError::Hickory(e.to_string()))?;
        Ok(Resolver {
            inner,
            config,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Resolves `host`, checks DNSSEC against `mode`, and vets every address against `named`
    /// (networks the rule explicitly allows). The result is what the caller must dial.
    pub async fn resolve(
        &self,
        host: &str,
        mode: DnssecMode,
        named: &[IpNet],
    ) -> Result<Resolved, DnsDenial> {
        let host = normalize(host)?;
        let (answer, from_cache) = match self.cached(&host) {
            Some(a) => (a, true),
            None => {
                let a = self.lookup(&host).await?;
                self.store(&host, &a);
                (a, false)
            }
        };
        check(&host, &answer, mode, named)?;
        Ok(Resolved {
            ttl_remaining: answer.expires.saturating_duration_since(Instant::now()),
            host,
            addrs: answer.addrs,
            security: answer.security,
            from_cache,
        })
    }

    /// The DNSSEC status of `host` without vetting addresses (for audits): `Ok(security)` for
    /// secure/insecure answers, the denial otherwise (bogus, unreachable, NXDOMAIN, ...).
    pub async fn dnssec_status(&self, host: &str) -> Result<Security, DnsDenial> {
        let host = normalize(host)?;
        let answer = self.lookup(&host).await?;
        Ok(answer.security)
    }

    /// Drops every cached answer.
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        self.inner.clear_cache();
    }

    fn cached(&self, host: &str) -> Option<Answer> {
        let mut cache = self.cache.lock().ok()?;
        match cache.get(host) {
            Some(a) if a.expires > Instant::now() => Some(a.clone()),
            Some(_) => {
                cache.remove(host);
                None
            }
            None => None,
        }
    }

    fn store(&self, host: &str, answer: &Answer) {
        if answer.expires <= Instant::now() {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.config.cache_capacity {
            let now = Instant::now();
            cache.retain(|_, a| a.expires > now);
            if cache.len() >= self.config.cache_capacity {
                if let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, a)| a.expires)
                    .map(|(k, _)| k.clone())
                {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(host.to_string(), answer.clone());
    }

    fn upstreams_text(&self) -> String {
        self.config
            .upstreams
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One A and one AAAA lookup, classified. A bogus verdict is confirmed by a second,
    /// fresh lookup: hickory reports a DNSKEY/DS fetch that timed out as bogus (hickory
    /// #3932/#3964) and does not cache such a failure, so a transient loss validates the
    /// second time while real bogus data stays bogus.
    async fn lookup(&self, host: &str) -> Result<Answer, DnsDenial> {
        match self.lookup_once(host).await {
            Err(DnsDenial::Bogus { detail, .. }) => {
                tracing::warn!(host, %detail, "bogus DNSSEC verdict; confirming with a second lookup");
                self.lookup_once(host).await
            }
            other => other,
        }
    }

    async fn lookup_once(&self, host: &str) -> Result<Answer, DnsDenial> {
        let fqdn = format!("{host}.");
        let name = Name::from_ascii(&fqdn).map_err(|e| DnsDenial::InvalidName {
            host: host.to_string(),
            detail: e.to_string(),
        })?;
        let (a, aaaa) = tokio::join!(
            self.inner.lookup(name.clone(), RecordType::A),
            self.inner.lookup(name.clone(), RecordType::AAAA)
        );
        let a = self.family(host, &name, RecordType::A, a).await;
        let aaaa = self.family(host, &name, RecordType::AAAA, aaaa).await;
        combine(
            host,
            a,
            aaaa,
            self.config.cache_floor,
            self.config.cache_ceiling,
        )
    }

    /// Classifies one family's outcome; a bogus or SERVFAIL outcome is confirmed by the probe.
    async fn family(
        &self,
        host: &str,
        name: &Name,
        rtype: RecordType,
        outcome: Result<Lookup, NetError>,
    ) -> Family {
        let family = classify_outcome(host, rtype, outcome, &self.upstreams_text());
        match family {
            Family::Denied(DnsDenial::Bogus { .. })
            | Family::ServFail(_)
            | Family::BogusError(_)
            | Family::BogusNegative(_) => {}
            other => return other,
        }
        // Is the upstream there at all, and does it hold data that validation refused?
        match probe(&self.config.upstreams, name, rtype, self.config.timeout).await {
            Err(detail) => Family::Denied(DnsDenial::ResolverUnreachable {
                host: host.to_string(),
                upstreams: self.upstreams_text(),
                detail: format!(
                    "validation failed and the resolver did not answer a checking-disabled \
                     query either: {detail}"
                ),
            }),
            Ok(reply) => {
                let verdict = confirmed(host, rtype, family, &reply);
                if !matches!(verdict, Family::Denied(DnsDenial::Bogus { .. })) {
                    return verdict;
                }
                // hickory also says "bogus" when a record of the chain (a DS, DNSKEY or NS it
                // fetched to prove the answer secure or insecure) never came back. Only call
                // it bogus if the resolver answers every one of them.
                match self.chain_answers(name).await {
                    Ok(()) => verdict,
                    Err(detail) => Family::Denied(DnsDenial::ResolverUnreachable {
                        host: host.to_string(),
                        upstreams: self.upstreams_text(),
                        detail: format!(
                            "validation failed, but the resolver did not answer {detail}: the \
                             DNSSEC chain could not be fetched, so this is not a bogus verdict"
                        ),
                    }),
                }
            }
        }
    }
}

/// The probe's reply decides between bogus and an upstream failure.
fn confirmed(host: &str, rtype: RecordType, family: Family, reply: &Message) -> Family {
    match family {
        Family::ServFail(detail) if reply.response_code == ResponseCode::ServFail => {
            Family::Denied(DnsDenial::UpstreamFailure {
                host: host.to_string(),
                rcode: "SERVFAIL".to_string(),
                detail: format!(
                    "{detail}; SERVFAIL with checking disabled too, so not a DNSSEC failure"
                ),
            })
        }
        Family::ServFail(_) => Family::Denied(DnsDenial::Bogus {
            host: host.to_string(),
            detail: format!(
                "the validating upstream answered SERVFAIL for {rtype} and, with checking \
                         disabled, {} ({} records): its signatures do not validate",
                reply.response_code,
                reply.answers.len()
            ),
        }),
        Family::BogusError(detail) if reply.answers.iter().any(|r| r.record_type() == rtype) => {
            Family::Denied(DnsDenial::Bogus {
                host: host.to_string(),
                detail,
            })
        }
        Family::BogusError(detail) => Family::BogusNegative(detail),
        other => other,
    }
}

impl Resolver {
    /// Asks the upstream (checking disabled) for the DS and NS records of `name` and each of
    /// its ancestors below the root: `Err` names the first one it did not answer at all.
    async fn chain_answers(&self, name: &Name) -> Result<(), String> {
        let mut zone = name.clone();
        while !zone.is_root() {
            for rtype in [RecordType::DS, RecordType::NS] {
                // Any reply counts (a SERVFAIL too: above a trust anchor there may be no chain
                // at all); only silence means the chain could not be fetched.
                if let Err(e) =
                    probe(&self.config.upstreams, &zone, rtype, self.config.timeout).await
                {
                    return Err(format!("{zone} {rtype} ({e})"));
                }
            }
            zone = zone.base_name();
        }
        Ok(())
    }
}

/// Outcome of one family (A or AAAA).
#[derive(Debug)]
enum Family {
    Found {
        addrs: Vec<IpAddr>,
        security: Security,
        expires: Instant,
    },
    /// NOERROR without records of this type, or NXDOMAIN (`nx`).
    Empty {
        nx: bool,
    },
    /// SERVFAIL from the upstream: bogus (a validating upstream) or a real failure; probed.
    ServFail(String),
    /// hickory's error-form "bogus" (`DnssecBogus`, a bogus NSEC proof): either bogus records
    /// or a bogus proof that there are none; the probe tells which.
    BogusError(String),
    /// A negative answer (no records of this type) whose proof did not validate. Nothing
    /// from it is dialled. hickory 0.26.3 also reports CNAME → NODATA answers this way (it
    /// checks the NSEC against the alias, not the target), so a secure answer of the other
    /// family still stands; alone, it denies as bogus.
    BogusNegative(String),
    Denied(DnsDenial),
}

fn classify_outcome(
    host: &str,
    rtype: RecordType,
    outcome: Result<Lookup, NetError>,
    upstreams: &str,
) -> Family {
    let lookup = match outcome {
        Ok(l) => l,
        Err(e) => return classify_error(host, rtype, e, upstreams),
    };
    let mut security: Option<Security> = None;
    let mut addrs = Vec::new();
    let mut bogus_detail = Vec::new();
    for rec in lookup.answers() {
        let rt = rec.record_type();
        if rt == RecordType::RRSIG {
            continue;
        }
        if !(rt == rtype || rt == RecordType::CNAME) {
            continue;
        }
        let s = Security::from_proof(rec.proof);
        if s == Security::Bogus {
            bogus_detail.push(format!("{} {}", rec.name, rt));
        }
        security = Some(security.map_or(s, |cur| cur.weakest(s)));
        if let RData::A(a) = &rec.data {
            addrs.push(IpAddr::V4(a.0));
        } else if let RData::AAAA(a) = &rec.data {
            addrs.push(IpAddr::V6(a.0));
        }
    }
    let security = security.unwrap_or(Security::Indeterminate);
    match security {
        Security::Bogus => Family::Denied(DnsDenial::Bogus {
            host: host.to_string(),
            detail: format!(
                "the signatures of {} do not validate",
                bogus_detail.join(", ")
            ),
        }),
        Security::Indeterminate => Family::Denied(DnsDenial::Indeterminate {
            host: host.to_string(),
            detail: format!("no DNSSEC proof for the {rtype} answer"),
        }),
        _ if addrs.is_empty() => Family::Empty { nx: false },
        _ => Family::Found {
            addrs,
            security,
            expires: lookup.valid_until(),
        },
    }
}

fn classify_error(host: &str, rtype: RecordType, e: NetError, upstreams: &str) -> Family {
    let host_s = host.to_string();
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => Family::Empty {
            nx: response_code == ResponseCode::NXDomain,
        },
        NetError::Dns(DnsError::Nsec {
            proof, response, ..
        }) => match proof {
            Proof::Bogus => Family::BogusNegative(format!(
                "the denial of existence for {rtype} does not validate"
            )),
            // A negative answer whose proof is not secure: there is nothing to dial either way.
            _ => Family::Empty {
                nx: response.response_code == ResponseCode::NXDomain,
            },
        },
        NetError::Dns(DnsError::DnssecBogus) => {
            Family::BogusError(format!("the {rtype} answer does not validate"))
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            Family::ServFail(format!("SERVFAIL for {rtype}"))
        }
        NetError::Dns(DnsError::ResponseCode(code)) => Family::Denied(DnsDenial::UpstreamFailure {
            host: host_s,
            rcode: code.to_string(),
            detail: format!("the upstream answered {code} for {rtype}"),
        }),
        NetError::Timeout | NetError::Io(_) | NetError::NoConnections | NetError::Busy => {
            Family::Denied(DnsDenial::ResolverUnreachable {
                host: host_s,
                upstreams: upstreams.to_string(),
                detail: e.to_string(),
            })
        }
        other => Family::Denied(DnsDenial::UpstreamFailure {
            host: host_s,
            rcode: "error".to_string(),
            detail: other.to_string(),
        }),
    }
}

/// Joins the A and AAAA outcomes. A denial of either family denies the name (a bogus AAAA
/// makes a secure A suspect too), except that one family may simply be empty.
fn combine(
    host: &str,
    a: Family,
    aaaa: Family,
    floor: Duration,
    ceiling: Duration,
) -> Result<Answer, DnsDenial> {
    let mut addrs = Vec::new();
    let mut security: Option<Security> = None;
    let mut expires: Option<Instant> = None;
    let mut nx = true;
    let mut bogus_negative = None;
    for f in [a, aaaa] {
        match f {
            Family::Denied(d) => return Err(d),
            Family::BogusError(detail) | Family::BogusNegative(detail) => {
                nx = false;
                bogus_negative = Some(detail);
            }
            Family::ServFail(detail) => {
                return Err(DnsDenial::UpstreamFailure {
                    host: host.to_string(),
                    rcode: "SERVFAIL".to_string(),
                    detail,
                })
            }
            Family::Empty { nx: n, .. } => nx &= n,
            Family::Found {
                addrs: found,
                security: s,
                expires: e,
            } => {
                nx = false;
                addrs.extend(found);
                security = Some(security.map_or(s, |cur| cur.weakest(s)));
                expires = Some(expires.map_or(e, |cur| cur.min(e)));
            }
        }
    }
    let (Some(security), Some(expires)) = (security, expires) else {
        if let Some(detail) = bogus_negative {
            return Err(DnsDenial::Bogus {
                host: host.to_string(),
                detail,
            });
        }
        return Err(if nx {
            DnsDenial::NoSuchName {
                host: host.to_string(),
            }
        } else {
            DnsDenial::NoAddresses {
                host: host.to_string(),
            }
        });
    };
    if let Some(detail) = bogus_negative {
        tracing::warn!(
            host,
            %detail,
            "a negative DNSSEC proof did not validate; using the other family's validated addresses"
        );
    }
    let now = Instant::now();
    let ttl = expires.saturating_duration_since(now).clamp(floor, ceiling);
    Ok(Answer {
        addrs,
        security,
        expires: now + ttl,
    })
}

/// The DNSSEC mode and address vetting, applied to a (possibly cached) answer.
fn check(host: &str, answer: &Answer, mode: DnssecMode, named: &[IpNet]) -> Result<(), DnsDenial> {
    match (answer.security, mode) {
        (Security::Secure, _) | (Security::Insecure, DnssecMode::IfSigned) => {}
        (Security::Insecure, DnssecMode::Required) => {
            return Err(DnsDenial::Unsigned {
                host: host.to_string(),
            })
        }
        // Never cached, but be explicit: anything else fails closed.
        (Security::Bogus, _) => {
            return Err(DnsDenial::Bogus {
                host: host.to_string(),
                detail: "cached answer is bogus".to_string(),
            })
        }
        (Security::Indeterminate, _) => {
            return Err(DnsDenial::Indeterminate {
                host: host.to_string(),
                detail: "no DNSSEC proof".to_string(),
            })
        }
    }
    // One refused address refuses the whole answer: a name that answers with both a public
    // address and 169.254.169.254 is not one to trust with either.
    for addr in &answer.addrs {
        vet::vet(*addr, named).map_err(|refusal| DnsDenial::AddressRefused {
            host: host.to_string(),
            refusal,
        })?;
    }
    Ok(())
}

/// Lower-cases, strips one trailing dot, and refuses IP literals and malformed names.
pub fn normalize(host: &str) -> Result<String, DnsDenial> {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let bad = |detail: &str| DnsDenial::InvalidName {
        host: host.to_string(),
        detail: detail.to_string(),
    };
    if h.is_empty() {
        return Err(bad("empty name"));
    }
    if h.parse::<IpAddr>().is_ok() || (h.starts_with('[') && h.ends_with(']')) {
        return Err(bad("an IP address literal is not a name"));
    }
    if h.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in h.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("empty label or label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("characters other than letters, digits, '-' and '_'"));
        }
    }
    Ok(h)
}

/// Sends `name rtype` with Checking Disabled (and DO) to each upstream in turn over UDP; the
/// first reply wins. `Err` means no upstream answered.
pub async fn probe(
    upstreams: &[SocketAddr],
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let mut last = String::from("no upstream");
    for up in upstreams {
        match probe_one(*up, name, rtype, timeout).await {
            Ok(m) => return Ok(m),
            Err(e) => last = format!("{up}: {e}"),
        }
    }
    Err(last)
}

/// A recursive query for `name rtype` with the DO bit (DNSSEC records wanted), optionally with
/// Checking Disabled.
pub(crate) fn dnssec_query(name: Name, rtype: RecordType, checking_disabled: bool) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(name, rtype));
    msg.metadata.recursion_desired = true;
    msg.metadata.checking_disabled = checking_disabled;
    let mut edns = Edns::new();
    edns.enable_dnssec();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    msg
}

async fn probe_one(
    upstream: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let msg = dnssec_query(name.clone(), rtype, true);
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| "bind address".to_string())?
    } else {
        "[::]:0".parse().map_err(|_| "bind address".to_string())?
    };
    let work = async {
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(upstream).await.map_err(|e| e.to_string())?;
        sock.send(&bytes).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65_535];
        loop {
            let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
            let Some(data) = buf.get(..n) else {
                continue;
            };
            match Message::from_vec(data) {
                Ok(reply) if reply.metadata.id == id => return Ok(reply),
                _ => continue, // stray or garbled datagram: keep waiting until the deadline
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_names() {
        assert_eq!(normalize("WWW.Example.COM.").unwrap(), "www.example.com");
        assert!(matches!(
            normalize("127.0.0.1"),
            Err(DnsDenial::InvalidName { .. })
        ));
        assert!(matches!(
            normalize("::1"),
            Err(DnsDenial::InvalidName { .. })
        ));
        assert!(matches!(
            normalize("a..b"),
            Err(DnsDenial::InvalidName { .. })
        ));
        assert!(matches!(normalize(""), Err(DnsDenial::InvalidName { .. })));
        assert!(matches!(
            normalize("a b.com"),
            Err(DnsDenial::InvalidName { .. })
        ));
    }

    fn answer(addrs: &[&str], security: Security) -> Answer {
        Answer {
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            security,
            expires: Instant::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn dnssec_mode_and_vetting() {
        let pub_secure = answer(&["93.184.216.34"], Security::Secure);
        let pub_insecure = answer(&["93.184.216.34"], Security::Insecure);
        assert!(check("h", &pub_secure, DnssecMode::Required, &[]).is_ok());
        assert!(check("h", &pub_insecure, DnssecMode::IfSigned, &[]).is_ok());
        assert_eq!(
            check("h", &pub_insecure, DnssecMode::Required, &[])
                .unwrap_err()
                .reason(),
            "dnssec_unsigned"
        );
        let mixed = answer(&["93.184.216.34", "169.254.169.254"], Security::Secure);
        let e = check("h", &mixed, DnssecMode::IfSigned, &[]).unwrap_err();
        assert_eq!(e.reason(), "address_refused");
        assert_eq!(
            e.to_string(),
            "h resolved to 169.254.169.254 is a cloud instance-metadata address, which no rule names"
        );
        let named: Vec<IpNet> = vec!["169.254.169.254/32".parse().unwrap()];
        assert!(check("h", &mixed, DnssecMode::IfSigned, &named).is_ok());
    }

    #[test]
    fn combine_takes_the_weakest_and_clamps_the_ttl() {
        let now = Instant::now();
        let a = Family::Found {
            addrs: vec!["93.184.216.34".parse().unwrap()],
            security: Security::Secure,
            expires: now + Duration::from_secs(3600),
        };
        let aaaa = Family::Found {
            addrs: vec!["2606:2800::1".parse().unwrap()],
            security: Security::Insecure,
            expires: now + Duration::from_secs(1),
        };
        let ans = combine(
            "h",
            a,
            aaaa,
            Duration::from_secs(5),
            Duration::from_secs(300),
        )
        .unwrap();
        assert_eq!(ans.security, Security::Insecure);
        assert_eq!(ans.addrs.len(), 2);
        let ttl = ans.expires.saturating_duration_since(now);
        assert!(
            ttl >= Duration::from_secs(5) && ttl <= Duration::from_secs(6),
            "{ttl:?}"
        );

        let long = Family::Found {
            addrs: vec!["93.184.216.34".parse().unwrap()],
            security: Security::Secure,
            expires: now + Duration::from_secs(86_400),
        };
        let empty = Family::Empty { nx: false };
        let ans = combine("h", long, empty, Duration::ZERO, Duration::from_secs(300)).unwrap();
        assert!(ans.expires.saturating_duration_since(now) <= Duration::from_secs(301));

        let nx = combine(
            "h",
            Family::Empty { nx: true },
            Family::Empty { nx: true },
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(nx.reason(), "dns_nxdomain");
        let bogus = combine(
            "h",
            Family::Found {
                addrs: vec!["93.184.216.34".parse().unwrap()],
                security: Security::Secure,
                expires: now,
            },
            Family::Denied(DnsDenial::Bogus {
                host: "h".into(),
                detail: "x".into(),
            }),
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(bogus.reason(), "dnssec_bogus");
    }
}
