//! `rampart-pki serve --config FILE`: the service's TOML configuration,
//! validated once at load. Errors name the file, line and field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ca::profiles::{ServiceNames, MAX_LIFETIME};
use rampart_ops::config::{Bounds, SVID_TTL_SECS};

// What sidecars and the edge may ask for is what this CA may issue.
const _: () = assert!(SVID_TTL_SECS.max == MAX_LIFETIME.as_secs());
use crate::ca::RotationPolicy;
use crate::error::{PkiError, Result};
use crate::keystore::{Kek, KeyProtection, DEFAULT_KEK_ENV};
use crate::spiffe::SpiffeId;

/// The service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on (HTTPS).
    pub listen: SocketAddr,
    /// DNS names and IP addresses the service is reached at, put in its
    /// certificate so `curl --cacert bundle.pem https://NAME:PORT/…`
    /// verifies it. Default: the listen address when it is a specific IP.
    #[serde(default)]
    pub server_names: Option<ServiceNames>,
    /// CA directory created by `rampart-pki init`.
    pub ca_dir: PathBuf,
    /// Audit log (default `CA_DIR/audit.jsonl`).
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// File holding the key-encryption key.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// Environment variable holding the key-encryption key.
    #[serde(default)]
    pub kek_env: Option<String>,
    /// Accept unencrypted CA keys. Never in production.
    #[serde(default)]
    pub insecure_unencrypted_keys: bool,
    /// Issuance settings.
    #[serde(default)]
    pub issuance: IssuanceConfig,
    /// Per-identity rate limit.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Automatic rotation.
    #[serde(default)]
    pub rotation: RotationConfig,
    /// Edge server certificates.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// Connection caps and deadlines.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Workload attestation beyond join tokens.
    #[serde(default)]
    pub attestation: AttestationConfig,
}

/// `[attestation]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationConfig {
    /// Kubernetes projected service-account tokens (`POST /v1/attest/k8s`).
    #[serde(default)]
    pub kubernetes: Option<crate::attest::KubernetesConfig>,
}

/// `max_connections` (and `max_connections_per_ip`, at most it): 1 to a million.
pub const CONNECTIONS: Bounds = Bounds::new(1, 1_000_000, "");
/// `handshake_timeout_ms` (also the request head's deadline, added to the time it starts):
/// 1 ms to ten minutes.
pub const HANDSHAKE_MS: Bounds = Bounds::new(1, 600_000, "ms");
/// `request_timeout_ms`: 1 ms to one hour.
pub const REQUEST_MS: Bounds = Bounds::new(1, 3_600_000, "ms");
/// `[rate_limit]` `per_minute` and `burst`: 1 to a billion (a benchmark asks for ten million).
pub const RATE: Bounds = Bounds::new(1, 1_000_000_000, "");
/// `[rotation]` `check_interval_ms`: 1 ms to one day.
pub const CHECK_INTERVAL_MS: Bounds = Bounds::new(1, 86_400_000, "ms");
/// `[rotation]` `bundle_propagation_secs`: 0 to a root's longest life (ten years).
pub const PROPAGATION_SECS: Bounds = Bounds::new(0, crate::ca::MAX_ROOT_LIFETIME.as_secs(), "s");

/// `[limits]`: what one client may hold, so none can starve the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Deadline for the TLS handshake, and then for the request head.
    pub handshake_timeout_ms: u64,
    /// Deadline for a whole connection (handshake excluded).
    pub request_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_connections_per_ip: 64,
            handshake_timeout_ms: 3000,
            request_timeout_ms: 10_000,
        }
    }
}

/// `[edge]`: which workloads may obtain DNS server certificates (names
/// under the CA's DNS suffixes) over `POST /v1/edge`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// SPIFFE IDs of the edge proxies.
    pub identities: Vec<String>,
}

/// `[issuance]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuanceConfig {
    /// Workload certificate lifetime when the client asks for none (24 h).
    pub default_ttl_secs: u64,
    /// Longest lifetime a client may ask for (at most 90 days).
    pub max_ttl_secs: u64,
    /// Lifetime of the service's own TLS certificate.
    pub server_cert_ttl_secs: u64,
    /// SPIFFE IDs never issued to anyone (in addition to the built-in
    /// reservations: the bare trust-domain ID and `/rampart/…`).
    pub reserved_ids: ReservedIds,
}

/// `reserved_ids`, parsed into SPIFFE IDs at load.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct ReservedIds(pub Vec<SpiffeId>);

impl TryFrom<Vec<String>> for ReservedIds {
    type Error = String;
    fn try_from(v: Vec<String>) -> std::result::Result<Self, String> {
        v.iter()
            .map(|s| SpiffeId::parse(s).map_err(|e| e.to_string()))
            .collect::<std::result::Result<_, _>>()
            .map(ReservedIds)
    }
}

impl ReservedIds {
    /// Refuses `id` when it is reserved by the configuration or built in.
    pub fn check(&self, id: &SpiffeId) -> Result<()> {
        crate::ca::issuer::require_not_reserved(id)?;
        if self.0.contains(id) {
            return Err(PkiError::ReservedIdentity {
                id: id.to_string(),
                why: "listed in [issuance] reserved_ids",
            });
        }
        Ok(())
    }
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        IssuanceConfig {
            default_ttl_secs: 24 * 3600,
            max_ttl_secs: MAX_LIFETIME.as_secs(),
            server_cert_ttl_secs: 24 * 3600,
            reserved_ids: ReservedIds::default(),
        }
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained certificates per identity per minute.
    pub per_minute: u32,
    /// Certificates an identity may get at once.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_minute: 6,
            burst: 5,
        }
    }
}

/// `[rotation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// How often rotation is checked, in milliseconds.
    pub check_interval_ms: u64,
    /// Fraction of a CA certificate's life after which it is replaced.
    pub rotate_at_fraction: f64,
    /// Seconds a new root is distributed before issuance uses it; must
    /// exceed the clients' renewal / bundle refresh interval.
    pub bundle_propagation_secs: u64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            check_interval_ms: 60_000,
            rotate_at_fraction: 2.0 / 3.0,
            bundle_propagation_secs: 3600,
        }
    }
}

impl ServeConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| PkiError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        // The shared reader names the field (`limits.burst: …`) as well as the line.
        let cfg: ServeConfig =
            rampart_ops::config::parse_toml(path, text).map_err(|e| match e {
                rampart_ops::config::ConfigError::Parse {
                    line,
                    field,
                    message,
                    ..
                } => PkiError::Config {
                    path: path.to_path_buf(),
                    line,
                    message: if field.is_empty() {
                        message
                    } else {
                        format!("{field}: {message}")
                    },
                },
                other => PkiError::Config {
                    path: path.to_path_buf(),
                    line: 0,
                    message: other.to_string(),
                },
            })?;
        // An error at the line of `key` (a dotted path: `limits.max_connections`), or of the
        // deepest table written when the field is left at its default.
        let at = |key: &str, message: String| {
            let keys: Vec<String> = key.split('.').map(String::from).collect();
            PkiError::Config {
                path: path.to_path_buf(),
                line: rampart_ops::config::line_of_path(text, &keys),
                message,
            }
        };
        let bad = |key: &str, why: &str| Err(at(key, format!("{key}: {why}")));
        let i = &cfg.issuance;
        let r = &cfg.rotation;
        let l = &cfg.limits;
        let rl = &cfg.rate_limit;
        for (key, value, range) in [
            ("issuance.max_ttl_secs", i.max_ttl_secs, SVID_TTL_SECS),
            (
                "issuance.server_cert_ttl_secs",
                i.server_cert_ttl_secs,
                SVID_TTL_SECS,
            ),
            (
                "rotation.check_interval_ms",
                r.check_interval_ms,
                CHECK_INTERVAL_MS,
            ),
            // The switch time is the rotation's start plus this: past any root's life it
            // would overflow the date (and panic the rotation).
            (
                "rotation.bundle_propagation_secs",
                r.bundle_propagation_secs,
                PROPAGATION_SECS,
            ),
            (
                "limits.max_connections",
                l.max_connections as u64,
                CONNECTIONS,
            ),
            (
                "limits.handshake_timeout_ms",
                l.handshake_timeout_ms,
                HANDSHAKE_MS,
            ),
            (
                "limits.request_timeout_ms",
                l.request_timeout_ms,
                REQUEST_MS,
            ),
            ("rate_limit.per_minute", rl.per_minute.into(), RATE),
            ("rate_limit.burst", rl.burst.into(), RATE),
        ] {
            // `limits.max_connections = 0 is out of range: give 1 to 1000000`
            range.check(key, value).map_err(|why| at(key, why))?;
        }
        // A value bounded by another field: 1 to that field's value.
        let up_to = |key: &str, value: u64, max_key: &str, max: u64| {
            if value == 0 || value > max {
                let why = format!("{value} must be between 1 and {max_key} ({max})");
                Err(at(key, format!("{key}: {why}")))
            } else {
                Ok(())
            }
        };
        up_to(
            "issuance.default_ttl_secs",
            i.default_ttl_secs,
            "max_ttl_secs",
            i.max_ttl_secs,
        )?;
        if !(0.1..=0.9).contains(&r.rotate_at_fraction) {
            return bad("rotation.rotate_at_fraction", "must be between 0.1 and 0.9");
        }
        for (n, id) in cfg.edge.identities.iter().enumerate() {
            if let Err(e) = crate::spiffe::SpiffeId::parse(id) {
                return bad(&format!("edge.identities.{n}"), &e.to_string());
            }
        }
        up_to(
            "limits.max_connections_per_ip",
            l.max_connections_per_ip as u64,
            "max_connections",
            l.max_connections as u64,
        )?;
        if let Some(k) = &cfg.attestation.kubernetes {
            if let Err((field, why)) = k.check() {
                // `field` is a key of the table, or the table itself (`[attestation.kubernetes]`).
                let key = match field.starts_with('[') {
                    true => "attestation.kubernetes".to_string(),
                    false => format!("attestation.kubernetes.{field}"),
                };
                return bad(&key, why);
            }
            // `attestation.kubernetes.jwks_refresh_ms = 0 is out of range: give 1 to …`
            for (field, value, range) in k.ranges() {
                let key = format!("attestation.kubernetes.{field}");
                range.check(&key, value).map_err(|why| at(&key, why))?;
            }
        }
        if cfg.kek_file.is_some() && cfg.kek_env.is_some() {
            return bad("kek_file", "give kek_file or kek_env, not both");
        }
        Ok(cfg)
    }

    /// How CA keys are protected, from `kek_file` / `kek_env` / the flag.
    pub fn key_protection(&self) -> Result<KeyProtection> {
        key_protection(
            self.kek_file.as_deref(),
            self.kek_env.as_deref(),
            self.insecure_unencrypted_keys,
        )
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> RotationPolicy {
        RotationPolicy {
            rotate_at_fraction: self.rotation.rotate_at_fraction,
            bundle_propagation: Duration::from_secs(self.rotation.bundle_propagation_secs),
        }
    }

    /// The names put in the service's certificate.
    pub fn service_names(&self) -> ServiceNames {
        match &self.server_names {
            Some(n) => n.clone(),
            None if self.listen.ip().is_unspecified() => ServiceNames::default(),
            None => ServiceNames {
                dns: Vec::new(),
                ips: vec![self.listen.ip()],
            },
        }
    }

    /// The audit log path.
    pub fn audit_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.ca_dir.join("audit.jsonl"))
    }
}

/// Resolves key protection from the CLI/config choices. Without a KEK
/// source, `$RAMPART_PKI_KEK` is used if set; unencrypted keys only with
/// the insecure flag.
pub fn key_protection(
    kek_file: Option<&Path>,
    kek_env: Option<&str>,
    insecure: bool,
) -> Result<KeyProtection> {
    match (kek_file, kek_env) {
        (Some(f), _) => Ok(KeyProtection::Encrypted(Kek::from_file(f)?)),
        (None, Some(var)) => Ok(KeyProtection::Encrypted(Kek::from_env(var)?)),
        (None, None) if std::env::var_os(DEFAULT_KEK_ENV).is_some() => {
            Ok(KeyProtection::Encrypted(Kek::from_env(DEFAULT_KEK_ENV)?))
        }
        (None, None) if insecure => Ok(KeyProtection::InsecureUnencrypted),
        (None, None) => Err(PkiError::KekMissing(format!(
            "no key-encryption key: give --kek-file FILE or --kek-env VAR (or set ${DEFAULT_KEK_ENV}); \
             `rampart-pki kek generate` makes one. Unencrypted keys need --insecure-unencrypted-keys"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number of the file at its extremes (0, i64::MAX, u64::MAX): accepted (0 where it
    /// means "none") or refused at its line with its field — never kept to overflow a date,
    /// a deadline or a connection count later.
    #[test]
    fn every_number_at_its_extremes_is_refused_by_name_or_accepted() {
        let k8s = "[attestation.kubernetes]\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"/j\"";
        let cases = [
            ("[issuance]", "default_ttl_secs"),
            ("[issuance]", "max_ttl_secs"),
            ("[issuance]", "server_cert_ttl_secs"),
            ("[limits]", "max_connections"),
            ("[limits]", "max_connections_per_ip"),
            ("[limits]", "handshake_timeout_ms"),
            ("[limits]", "request_timeout_ms"),
            ("[rate_limit]", "per_minute"),
            ("[rate_limit]", "burst"),
            ("[rotation]", "check_interval_ms"),
            ("[rotation]", "bundle_propagation_secs"),
            (k8s, "jwks_refresh_ms"),
            (k8s, "jwks_unknown_kid_refresh_ms"),
            (k8s, "jwks_fetch_timeout_ms"),
            (k8s, "jwks_max_bytes"),
        ];
        for (table, key) in cases {
            for value in ["0", "9223372036854775807", "18446744073709551615"] {
                let text = format!(
                    "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n{table}\n{key} = {value}\n"
                );
                let line = text.lines().count();
                match ServeConfig::parse(&text, Path::new("pki.toml")) {
                    Ok(_) => assert_eq!(value, "0", "{key} = {value} was accepted"),
                    Err(e) => {
                        let e = e.to_string();
                        assert!(e.starts_with(&format!("pki.toml:{line}:")), "{e}");
                        // Past TOML's integers (i64) the reader refuses the number itself.
                        let past_toml = value.len() > 19 && e.contains("too large");
                        assert!(e.contains(key) || past_toml, "{e}");
                    }
                }
            }
        }
    }

    /// Checks done after parsing name the table and field and find the value's own line: not a
    /// longer key sharing its prefix, not line 0 for a field left at its default.
    #[test]
    fn checks_after_parsing_name_the_value_line() {
        let err = |body: &str| {
            let text = format!("listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n{body}");
            ServeConfig::parse(&text, Path::new("pki.toml"))
                .unwrap_err()
                .to_string()
        };
        let k8s = "[attestation.kubernetes]\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"https://k/j\"";
        let cases = [
            // max_connections_per_ip (line 4) shares max_connections' prefix.
            (
                "[limits]\nmax_connections_per_ip = 5\nmax_connections = 0\n".to_string(),
                "pki.toml:5: limits.max_connections = 0 is out of range: give 1 to 1000000",
            ),
            (
                "[limits]\nmax_connections = 4\nmax_connections_per_ip = 5\n".into(),
                "pki.toml:5: limits.max_connections_per_ip: 5 must be between 1 and max_connections (4)",
            ),
            // default_ttl_secs not written: its table's line, not 0.
            (
                "[rotation]\ncheck_interval_ms = 5\n[issuance]\nmax_ttl_secs = 60\n".into(),
                "pki.toml:5: issuance.default_ttl_secs: 86400 must be between 1 and max_ttl_secs (60)",
            ),
            // A key of a sub-table, after another table's key of a similar name.
            (
                format!("[limits]\nrequest_timeout_ms = 5\n{k8s}\njwks_fetch_timeout_ms = 0\n"),
                "pki.toml:9: attestation.kubernetes.jwks_fetch_timeout_ms = 0 is out of range: give 1 to 60000 ms",
            ),
            (
                "[issuance]\nserver_cert_ttl_secs = 7776001\n".into(),
                "pki.toml:4: issuance.server_cert_ttl_secs = 7776001 is out of range: give 1 to 7776000 s",
            ),
            (
                "[issuance]\nmax_ttl_secs = 0\n".into(),
                "pki.toml:4: issuance.max_ttl_secs = 0 is out of range: give 1 to 7776000 s",
            ),
            (
                "[rotation]\nbundle_propagation_secs = 315360001\n".into(),
                "pki.toml:4: rotation.bundle_propagation_secs = 315360001 is out of range: give 0 to 315360000 s",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(err(&body), want);
        }
        let e = err("[edge]\nidentities = [\n  \"spiffe://a/b\",\n  \"nope\",\n]\n");
        assert!(e.starts_with("pki.toml:6: edge.identities.1: "), "{e}");
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n[issuance]\nmax_ttl_sec = 5\n";
        let err = ServeConfig::parse(text, Path::new("pki.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pki.toml:4:"), "{err}");
        assert!(err.contains("max_ttl_sec"), "{err}");
        let text =
            "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n[issuance]\nmax_ttl_secs = 99999999\n";
        let err = ServeConfig::parse(text, Path::new("pki.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pki.toml:4: issuance.max_ttl_secs = 99999999 is out of range"),
            "{err}"
        );
        let text = "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n[rotation]\nbundle_propagation_secs = 9223372036854775807\n";
        let err = ServeConfig::parse(text, Path::new("pki.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bundle_propagation_secs"), "{err}");
        let ok = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n",
            Path::new("p"),
        )
        .unwrap();
        assert_eq!(ok.issuance.default_ttl_secs, 86400);
    }

    #[test]
    fn kubernetes_jwks_sources_are_checked_at_load() {
        let k8s = |source: &str| {
            format!(
                "listen = \"127.0.0.1:0\"\nca_dir = \"/x\"\n[attestation.kubernetes]\nissuer = \"i\"\naudience = \"a\"\n{source}"
            )
        };
        for (source, want) in [
            ("", "pki.toml:3: attestation.kubernetes: give exactly one"),
            (
                "jwks_file = \"/j\"\njwks_url = \"https://k/openid/v1/jwks\"\n",
                "pki.toml:6: attestation.kubernetes.jwks_file: give exactly one",
            ),
            ("jwks_url = \"http://k/jwks\"\n", "pki.toml:6:"),
            (
                "jwks_url = \"https://k/jwks\"\njwks_refresh_ms = 0\n",
                "pki.toml:7: attestation.kubernetes.jwks_refresh_ms = 0 is out of range: give 1 to 86400000 ms",
            ),
            (
                "jwks_file = \"/j\"\njwks_ca_file = \"/c\"\n",
                "pki.toml:7: attestation.kubernetes.jwks_ca_file: ",
            ),
            (
                "jwks_url = \"https://k/jwks\"\njwks_typo = 1\n",
                "pki.toml:7:",
            ),
        ] {
            let err = ServeConfig::parse(&k8s(source), Path::new("pki.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{source:?}: {err}");
        }
        let err = ServeConfig::parse(
            &k8s("jwks_url = \"http://k/jwks\"\n"),
            Path::new("pki.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("https only"), "{err}");
        let ok = ServeConfig::parse(
            &k8s("jwks_url = \"https://[::1]:6443/openid/v1/jwks\"\n"),
            Path::new("p"),
        )
        .unwrap();
        let k = ok.attestation.kubernetes.unwrap();
        assert_eq!(k.jwks_refresh_ms, 300_000);
        assert_eq!(
            k.jwks_url.unwrap().to_string(),
            "https://[::1]:6443/openid/v1/jwks"
        );
    }
}
