//! The serde model of the config file. Defaults are the safe choice; weaker ones are named.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// WAF rule source (the built-in rules unless `rules_dir` is set).
    #[serde(default)]
    pub waf: WafConfig,
    /// Request head limits (431, 414), checked before anything else reads the request.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// DoS defences: rate limits, connection caps, slow clients, h2, shedding, alerts.
    #[serde(default)]
    pub protect: rampart_protect::defences::ProtectConfig,
    /// The edge's own SPIFFE identity from the built-in CA (for listener certificates taken
    /// from the CA and for upstreams reached over mTLS). Bound at start.
    pub identity: Option<IdentityConfig>,
}

/// `[identity]`: the edge's SVID from the built-in CA, bootstrapped with a join token (or
/// resumed from `state_dir`) and renewed at 2/3 of its life.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The CA service, e.g. `https://ca.internal:8443`.
    pub ca: super::CaUrl,
    /// The edge's SPIFFE ID (the join token must be for it).
    pub spiffe_id: rampart_tls::SpiffeId,
    /// PEM roots the CA is authenticated with (provisioned with the edge).
    pub bundle: PathBuf,
    /// File holding a join token (`rampart-pki token create`); not needed while `state_dir`
    /// holds a valid SVID.
    pub token_file: Option<PathBuf>,
    /// Where the SVID is kept across restarts (key 0600); memory only when absent.
    pub state_dir: Option<PathBuf>,
    /// Lifetime asked for (the CA's default when absent).
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafConfig {
    /// Directory of rule files replacing the built-in rules (reloaded on SIGHUP).
    pub rules_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Total bytes of header names and values (431 above).
    pub max_header_bytes: usize,
    /// Number of header fields (431 above).
    pub max_headers: usize,
    /// Request-target length in bytes (414 above).
    pub max_uri_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
        }
    }
}

/// What the WAF does with a request whose score reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WafMode {
    /// Refuse with 403.
    #[default]
    Block,
    /// Log what would have been blocked, forward anyway.
    Detect,
    /// No inspection.
    Off,
}

impl WafMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WafMode::Block => "block",
            WafMode::Detect => "detect",
            WafMode::Off => "off",
        }
    }
}

/// Per-route WAF policy and body limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteWafConfig {
    pub mode: WafMode,
    /// 1 (fewest false positives) to 4.
    pub paranoia: u8,
    /// Anomaly score at which a request is blocked.
    pub threshold: u32,
    /// Rules (by id and/or family, optionally per target / path prefix) not applied here.
    pub exclusions: Vec<rampart_waf::Exclusion>,
    /// Body bytes buffered and inspected before anything is forwarded.
    pub inspect_limit: usize,
    /// Larger bodies are refused with 413 (also when a chunked body grows past it).
    pub max_body: u64,
    /// A request the WAF could not inspect whole (a body past `inspect_limit`, or more fields
    /// than the WAF's field limit) is forwarded with its uninspected part instead of being
    /// refused with 413 `body_uninspected`. Logged (`rampart.waf.uninspected`) and counted
    /// (`rampart_waf_uninspected_total`) either way.
    pub insecure_pass_uninspected_body: bool,
}

impl Default for RouteWafConfig {
    fn default() -> Self {
        let p = rampart_waf::Policy::default();
        RouteWafConfig {
            mode: WafMode::Block,
            paranoia: p.paranoia,
            threshold: p.threshold,
            exclusions: Vec::new(),
            inspect_limit: 128 * 1024,
            max_body: 10 * 1024 * 1024,
            insecure_pass_uninspected_body: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Worker threads per listener service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Upper bound on the SIGTERM drain: in-flight requests get this long to finish.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// Peers (CIDRs) whose X-Forwarded-For / Forwarded / X-Real-IP are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<super::Cidr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: default_threads(),
            shutdown_grace_seconds: default_grace(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
fn default_grace() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Metrics, /healthz and /readyz. Loopback by default.
    #[serde(default = "default_admin")]
    pub address: SocketAddr,
    /// Set to false to run without an admin listener.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: default_admin(),
            enabled: true,
        }
    }
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// "stdout" or a file path; one JSON line per request.
    #[serde(default = "default_access_log")]
    pub access_log: String,
    /// Lines queued for the writer; when full, lines are dropped and counted, never blocking.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Query keys whose values are replaced by REDACTED, in addition to the built-in list.
    #[serde(default)]
    pub redact_query_keys: Vec<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            access_log: default_access_log(),
            queue_capacity: default_queue(),
            redact_query_keys: Vec::new(),
        }
    }
}

fn default_access_log() -> String {
    "stdout".into()
}
fn default_queue() -> usize {
    65_536
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    /// TLS termination; without it the listener is plain HTTP.
    pub tls: Option<ListenerTls>,
    /// Plain listeners only: serve traffic over plain HTTP instead of redirecting to https.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// Plain listeners only: the https port redirects point at.
    #[serde(default = "default_https_port")]
    pub redirect_https_port: u16,
    /// TLS listeners: offer HTTP/2 via ALPN.
    #[serde(default = "yes")]
    pub http2: bool,
}

fn default_https_port() -> u16 {
    443
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsProfile {
    /// TLS 1.3 only.
    Modern,
    /// TLS 1.2 (ECDHE + AEAD suites only) and TLS 1.3.
    Intermediate,
}

impl TlsProfile {
    pub fn name(self) -> &'static str {
        match self {
            TlsProfile::Modern => "modern",
            TlsProfile::Intermediate => "intermediate",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    #[serde(default = "default_profile")]
    pub profile: TlsProfile,
    /// Chosen by SNI from each certificate's DNS names; `default = true` (or the first) serves
    /// clients whose SNI matches none.
    pub certificates: Vec<CertificateConfig>,
}

fn default_profile() -> TlsProfile {
    TlsProfile::Intermediate
}

/// One certificate of a listener: from files (`cert` + `key`) or from the built-in CA
/// (`from_ca`), never both.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawCertificateConfig")]
pub struct CertificateConfig {
    pub source: CertSource,
    pub default: bool,
    /// Names to serve this certificate for; empty means the certificate's own DNS names.
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CertSource {
    /// PEM chain (leaf first) and private key (PKCS#8, PKCS#1 or SEC1), reloaded when they
    /// change on disk.
    Files { cert: PathBuf, key: PathBuf },
    /// Issued by the built-in CA to the edge's `[identity]`, renewed live at 2/3 of its life.
    Ca(CaCertificateConfig),
}

/// `from_ca = { dns_names = [...], ttl_seconds = ... }`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaCertificateConfig {
    /// DNS names of the certificate (under the CA's DNS suffixes).
    pub dns_names: Vec<String>,
    /// Lifetime asked for (the CA's default when absent).
    pub ttl_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificateConfig {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    from_ca: Option<CaCertificateConfig>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    server_names: Vec<String>,
}

impl TryFrom<RawCertificateConfig> for CertificateConfig {
    type Error = String;
    fn try_from(r: RawCertificateConfig) -> Result<Self, String> {
        let source = match (r.cert, r.key, r.from_ca) {
            (Some(cert), Some(key), None) => CertSource::Files { cert, key },
            (None, None, Some(ca)) if ca.dns_names.is_empty() => {
                return Err("from_ca.dns_names: at least one name is needed".into())
            }
            (None, None, Some(ca)) => CertSource::Ca(ca),
            (_, _, Some(_)) => {
                return Err("either `cert` + `key` or `from_ca`, not both".into());
            }
            (Some(_), None, None) => return Err("`cert` needs its `key`".into()),
            (None, Some(_), None) => return Err("`key` needs its `cert`".into()),
            (None, None, None) => {
                return Err(
                    "needs `cert` + `key` files or `from_ca = { dns_names = [...] }`".into(),
                )
            }
        };
        Ok(CertificateConfig {
            source,
            default: r.default,
            server_names: r.server_names,
        })
    }
}

impl CertificateConfig {
    /// The certificate and key files, when it comes from files.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match &self.source {
            CertSource::Files { cert, key } => Some((cert, key)),
            CertSource::Ca(_) => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `ip:port` or `name:port`, used round robin. Names are resolved when the config is
    /// loaded (start and SIGHUP); every address a name resolves to becomes an endpoint.
    pub endpoints: Vec<super::HostPort>,
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_ms")]
    pub read_timeout_ms: u64,
    #[serde(default)]
    pub health: HealthConfig,
    /// TLS to the upstream, verified against `ca_file`.
    pub tls: Option<UpstreamTls>,
    /// mTLS to a mesh upstream with the edge's own SVID (`[identity]`); the upstream must
    /// present `spiffe_id` under the CA's bundle (revocations honoured). Not with `tls`.
    pub mtls: Option<UpstreamMtls>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamMtls {
    /// The SPIFFE ID the upstream must present.
    pub spiffe_id: rampart_tls::SpiffeId,
    /// Server name sent in the handshake (default: the ID's trust domain); the upstream is
    /// authenticated by its SPIFFE ID, not by this name.
    pub sni: Option<String>,
}

fn default_connect_ms() -> u64 {
    2_000
}
fn default_read_ms() -> u64 {
    30_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Consecutive connect failures after which an endpoint is ejected.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// How long an ejected endpoint is skipped.
    #[serde(default = "default_eject")]
    pub eject_seconds: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            max_failures: default_max_failures(),
            eject_seconds: default_eject(),
        }
    }
}

fn default_max_failures() -> u32 {
    3
}
fn default_eject() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of CAs trusted for this upstream (the system roots when absent).
    pub ca_file: Option<PathBuf>,
    /// Server name sent and verified.
    pub sni: String,
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Exact host names, `*.example.com` wildcards, or `*` for any host.
    pub hosts: Vec<super::HostPattern>,
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    pub upstream: String,
    #[serde(default)]
    pub headers: HeaderOverrides,
    #[serde(default)]
    pub cookies: CookiePolicyConfig,
    #[serde(default)]
    pub waf: RouteWafConfig,
}

fn default_prefix() -> String {
    "/".into()
}

/// Per-route changes to the secure response headers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderOverrides {
    /// Header name → value, replacing the default (or adding a new header).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Default headers not to add on this route.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    #[default]
    Lax,
    Strict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiePolicyConfig {
    /// SameSite added to cookies that have none.
    #[serde(default)]
    pub same_site: SameSite,
    /// Cookie names left readable by scripts (no HttpOnly). Warned about at start.
    #[serde(default)]
    pub http_only_exceptions: Vec<String>,
}

impl Config {
    /// Makes relative file paths relative to the config file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for l in &mut self.listeners {
            if let Some(tls) = &mut l.tls {
                for c in &mut tls.certificates {
                    if let CertSource::Files { cert, key } = &mut c.source {
                        fix(cert);
                        fix(key);
                    }
                }
            }
        }
        for u in &mut self.upstreams {
            if let Some(ca) = u.tls.as_mut().and_then(|t| t.ca_file.as_mut()) {
                fix(ca);
            }
        }
        if let Some(dir) = self.waf.rules_dir.as_mut() {
            fix(dir);
        }
        if let Some(id) = self.identity.as_mut() {
            fix(&mut id.bundle);
            for p in [id.token_file.as_mut(), id.state_dir.as_mut()]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
        if self.log.access_log != "stdout" {
            let mut p = PathBuf::from(&self.log.access_log);
            fix(&mut p);
            self.log.access_log = p.to_string_lossy().into_owned();
        }
    }

    /// Every certificate and key file the listeners use (watched for changes).
    pub fn tls_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for l in &self.listeners {
            for (cert, key) in l
                .tls
                .iter()
                .flat_map(|t| &t.certificates)
                .filter_map(|c| c.files())
            {
                files.push(cert.to_path_buf());
                files.push(key.to_path_buf());
            }
        }
        files
    }
}
