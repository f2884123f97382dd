//! Egress policy: what a service may reach, parsed once into typed values.
//!
//! Embedded by the sidecar under `[egress]` of a service's policy; on its own:
//!
//! ```toml
//! dnssec = "if-signed"              # default for every host rule: "required" | "if-signed"
//!
//! [[hosts]]
//! name = "payments"                 # optional; default "hosts[N]"
//! host = "api.stripe.com"           # exact name, or "*.example.com": one or more labels
//! ports = [443]                     #   below example.com, never example.com itself
//! protocol = "tls"                  # "tls" (SNI is checked) | "http" (Host is checked)
//! dnssec = "required"               # optional, overrides the default
//! internal = ["10.20.0.0/16"]       # optional: non-public networks this name may resolve to
//!
//! [[addresses]]                     # raw addresses, allowed only explicitly
//! name = "legacy-ftp"
//! networks = ["203.0.113.7/32"]
//! ports = [443]
//! protocol = "tls"
//! ```
//!
//! No rule, no egress. Unknown fields are refused. [`EgressPolicy::check`] warns on broad rules.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rampart_dns::DnssecMode;
use serde::Deserialize;

/// The protocol expected on an allowed destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TLS: the ClientHello's SNI names the destination.
    Tls,
    /// Plain HTTP/1.x: the Host header (or absolute-form target) names the destination.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tls => "tls",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host name pattern: an exact name or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`: matches `a.example.com`, `a.b.example.com`, never `example.com`.
    /// Holds the suffix without the `*.` ("example.com").
    Wildcard(String),
}

impl HostPattern {
    /// Whether `host` (already lower-case, no trailing dot) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }

    /// The specificity used to pick among several matching rules (exact beats any wildcard,
    /// then the longest suffix).
    fn specificity(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(h) => (1, h.len()),
            HostPattern::Wildcard(s) => (0, s.len()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let s = raw
            .trim()
            .strip_suffix('.')
            .unwrap_or(raw.trim())
            .to_ascii_lowercase();
        if s.parse::<IpAddr>().is_ok() || s.starts_with('[') {
            return Err(format!(
                "{raw:?} is an IP address: allow addresses under [[addresses]], not as a host"
            ));
        }
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, s.clone()),
        };
        if name.contains('*') {
            return Err(format!(
                "{raw:?}: a wildcard is only allowed as the whole first label (\"*.example.com\")"
            ));
        }
        rampart_dns::normalize(&name).map_err(|e| format!("{raw:?}: {e}"))?;
        if wild && !name.contains('.') && name.len() < 2 {
            return Err(format!("{raw:?}: wildcard suffix too short"));
        }
        Ok(if wild {
            HostPattern::Wildcard(name)
        } else {
            HostPattern::Exact(name)
        })
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostPattern::try_from(s).map_err(serde::de::Error::custom)
    }
}

/// A non-empty list of ports, none of them 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(Vec<u16>);

impl Ports {
    pub fn contains(&self, port: u16) -> bool {
        self.0.contains(&port)
    }
    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u16>::deserialize(d)?;
        if v.is_empty() {
            return Err(serde::de::Error::custom(
                "ports must list at least one port",
            ));
        }
        if v.contains(&0) {
            return Err(serde::de::Error::custom("port 0 is not a destination port"));
        }
        Ok(Ports(v))
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        write!(f, "[{}]", v.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRule {
    #[serde(default)]
    pub name: Option<String>,
    pub host: HostPattern,
    pub ports: Ports,
    pub protocol: Protocol,
    #[serde(default)]
    pub dnssec: Option<DnssecMode>,
    /// Non-public networks (private, loopback, ...) this name may resolve to.
    #[serde(default)]
    pub internal: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(deserialize_with = "non_empty_networks")]
    pub networks: Vec<IpNet>,
    pub ports: Ports,
    pub protocol: Protocol,
}

fn non_empty_networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let v = Vec::<IpNet>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "networks must list at least one network",
        ));
    }
    Ok(v)
}

/// One service's egress policy. Deserializable on its own ([`EgressPolicy::from_toml`]) or
/// embedded in a larger file (the sidecar's `[egress]` section): every check is part of
/// deserialization, so toml's errors carry the line and field either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// Default DNSSEC demand of host rules.
    #[serde(default)]
    pub dnssec: DnssecMode,
    #[serde(default)]
    pub hosts: Vec<HostRule>,
    #[serde(default)]
    pub addresses: Vec<AddressRule>,
}

/// A policy text that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {detail}")]
pub struct PolicyError {
    pub origin: String,
    /// toml's message: line, column and the field at fault.
    pub detail: String,
}

/// A warning from [`EgressPolicy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

impl EgressPolicy {
    /// Parses a standalone egress policy (the body of an `[egress]` section). `origin` names the
    /// file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError {
            origin: origin.to_string(),
            detail: e.to_string(),
        })
    }

    /// Name of host rule `i` (its `name`, else `hosts[i]`).
    pub fn host_rule_name(&self, i: usize) -> String {
        match self.hosts.get(i).and_then(|r| r.name.clone()) {
            Some(n) => n,
            None => format!("hosts[{i}]"),
        }
    }

    /// Name of address rule `i`.
    pub fn address_rule_name(&self, i: usize) -> String {
        match self.addresses.get(i).and_then(|r| r.name.clone()) {
            Some(n) => n,
            None => format!("addresses[{i}]"),
        }
    }

    /// The DNSSEC mode of host rule `i`.
    pub fn dnssec_of(&self, rule: &HostRule) -> DnssecMode {
        rule.dnssec.unwrap_or(self.dnssec)
    }

    /// Host rules matching `host`, most specific first (exact, then the longest wildcard).
    pub fn host_rules_for(&self, host: &str) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts.get(i).is_some_and(|r| r.host.matches(host)))
            .collect();
        v.sort_by_key(|&i| std::cmp::Reverse(self.hosts.get(i).map(|r| r.host.specificity())));
        v
    }

    /// Warnings on rules that allow more than they probably mean to.
    pub fn check(&self) -> Vec<Warning> {
        let mut w = Vec::new();
        for (i, r) in self.addresses.iter().enumerate() {
            for net in &r.networks {
                if let Some(msg) = broad(net) {
                    w.push(Warning {
                        rule: self.address_rule_name(i),
                        message: format!("{net}: {msg}"),
                    });
                }
            }
        }
        for (i, r) in self.hosts.iter().enumerate() {
            if let HostPattern::Wildcard(s) = &r.host {
                if !s.contains('.') {
                    w.push(Warning {
                        rule: self.host_rule_name(i),
                        message: format!(
                            "*.{s} allows every name under the top-level domain {s:?}"
                        ),
                    });
                }
            }
            for net in &r.internal {
                if let Some(msg) = broad(net) {
                    w.push(Warning {
                        rule: self.host_rule_name(i),
                        message: format!("internal {net}: {msg}"),
                    });
                }
            }
            if r.protocol == Protocol::Http && r.ports.contains(443) {
                w.push(Warning {
                    rule: self.host_rule_name(i),
                    message: "protocol \"http\" on port 443: plain HTTP there is unusual; \
                              did you mean \"tls\"?"
                        .to_string(),
                });
            }
        }
        w
    }
}

/// Whether a network is broad enough to warn about.
fn broad(net: &IpNet) -> Option<String> {
    let (len, limit, family) = match net {
        IpNet::V4(n) => (n.prefix_len(), 24, "IPv4"),
        IpNet::V6(n) => (n.prefix_len(), 48, "IPv6"),
    };
    if len == 0 {
        Some("allows every address".to_string())
    } else if len < limit {
        Some(format!(
            "a broad {family} range (/{len}, {} addresses or more): shared hosting and CDN \
             ranges open every tenant on them; name the hosts instead",
            match net {
                IpNet::V4(_) => format!("{}", 1u64 << (32 - u32::from(len)).min(63)),
                IpNet::V6(_) => format!("2^{}", 128 - u32::from(len)),
            }
        ))
    } else {
        None
    }
}

/// A `[[hosts]]` rule for tests: `name` (omitted when empty) may reach `host` on `port` with
/// `protocol`; `extra` lines (e.g. `dnssec = "required"\n`) follow.
#[cfg(test)]
pub(crate) fn host_rule(name: &str, host: &str, port: u16, protocol: &str, extra: &str) -> String {
    let name = if name.is_empty() {
        String::new()
    } else {
        format!("name = \"{name}\"\n")
    };
    format!(
        "[[hosts]]\n{name}host = \"{host}\"\nports = [{port}]\nprotocol = \"{protocol}\"\n{extra}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> HostPattern {
        HostPattern::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn wildcard_matches_one_or_more_labels_below_never_the_apex() {
        let w = pat("*.example.com");
        assert!(w.matches("a.example.com"));
        assert!(w.matches("a.b.example.com"));
        assert!(!w.matches("example.com"), "the apex is not matched");
        assert!(!w.matches("badexample.com"));
        assert!(!w.matches("a.example.com.evil.net"));
        assert!(!w.matches(".example.com"));
        assert!(!w.matches("com"));
        let e = pat("API.Example.com.");
        assert!(e.matches("api.example.com"));
        assert!(!e.matches("x.api.example.com"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (p, needle) in [
            ("10.0.0.1", "IP address"),
            ("[::1]", "IP address"),
            ("a.*.example.com", "whole first label"),
            ("*example.com", "whole first label"),
            ("*", "whole first label"),
            ("", "empty"),
            ("a..b", "empty label"),
        ] {
            let e = HostPattern::try_from(p.to_string()).unwrap_err();
            assert!(e.contains(needle), "{p}: {e}");
        }
    }

    #[test]
    fn parses_and_refuses_unknown_fields_with_line() {
        let text = r#"
dnssec = "required"
[[hosts]]
host = "*.example.com"
ports = [443]
protocol = "tls"
[[hosts]]
name = "plain"
host = "www.example.org"
ports = [80]
protocol = "http"
dnssec = "if-signed"
internal = ["10.0.0.0/24"]
[[addresses]]
networks = ["203.0.113.7/32"]
ports = [443]
protocol = "tls"
"#;
        let p = EgressPolicy::from_toml(text, "svc.toml").unwrap();
        assert_eq!(p.dnssec, DnssecMode::Required);
        assert_eq!(p.hosts.len(), 2);
        assert_eq!(p.dnssec_of(&p.hosts[1]), DnssecMode::IfSigned);
        assert_eq!(p.host_rule_name(0), "hosts[0]");
        assert_eq!(p.host_rule_name(1), "plain");
        assert!(p.check().is_empty(), "{:?}", p.check());

        let bad =
            "[[hosts]]\nhost = \"a.example.com\"\nports = [443]\nprotocol = \"tls\"\nport = 1\n";
        let e = EgressPolicy::from_toml(bad, "svc.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("svc.toml") && e.contains("line 5") && e.contains("port"),
            "{e}"
        );
        let bad = "[[hosts]]\nhost = \"a.example.com\"\nports = []\nprotocol = \"tls\"\n";
        let e = EgressPolicy::from_toml(bad, "svc.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one port"), "{e}");
        let bad = "[[hosts]]\nhost = \"a.example.com\"\nports = [443]\nprotocol = \"ftp\"\n";
        assert!(EgressPolicy::from_toml(bad, "svc.toml").is_err());
        let bad = "dnssec = \"maybe\"\n";
        assert!(EgressPolicy::from_toml(bad, "svc.toml").is_err());
        let bad = "[[addresses]]\nnetworks = []\nports = [443]\nprotocol = \"tls\"\n";
        assert!(EgressPolicy::from_toml(bad, "svc.toml").is_err());
    }

    #[test]
    fn embeds_in_a_larger_file_with_line_numbers() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ServiceFile {
            #[allow(dead_code)]
            inbound: Option<toml::Table>,
            egress: EgressPolicy,
        }
        let ok = "[inbound]\nx = 1\n[egress]\ndnssec = \"required\"\n[[egress.hosts]]\nhost = \"a.example.com\"\nports = [443]\nprotocol = \"tls\"\n";
        let f: ServiceFile = toml::from_str(ok).unwrap();
        assert_eq!(f.egress.hosts.len(), 1);
        let bad =
            "[egress]\n[[egress.addresses]]\nnetworks = []\nports = [443]\nprotocol = \"tls\"\n";
        let e = toml::from_str::<ServiceFile>(bad)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("at least one network"),
            "{e}"
        );
    }

    #[test]
    fn check_warns_on_broad_rules() {
        let text = r#"
[[hosts]]
host = "*.com"
ports = [443]
protocol = "tls"
internal = ["10.0.0.0/8"]
[[addresses]]
name = "cdn"
networks = ["203.0.113.0/24", "198.51.0.0/16", "0.0.0.0/0", "2001:db8::/32"]
ports = [443]
protocol = "tls"
"#;
        let p = EgressPolicy::from_toml(text, "t").unwrap();
        let w: Vec<String> = p.check().iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 5, "{w:#?}");
        assert!(w.iter().any(|m| m.contains("*.com allows every name")));
        assert!(w.iter().any(|m| m.starts_with("cdn: 198.51.0.0/16")));
        assert!(w
            .iter()
            .any(|m| m.starts_with("cdn: 0.0.0.0/0: allows every address")));
        assert!(w.iter().any(|m| m.starts_with("cdn: 2001:db8::/32")));
        assert!(w.iter().any(|m| m.contains("internal 10.0.0.0/8")));
        assert!(!w.iter().any(|m| m.contains("203.0.113.0/24")));
    }

    #[test]
    fn most_specific_rule_first() {
        let text = host_rule("", "*.example.com", 443, "tls", "")
            + &host_rule("", "*.api.example.com", 443, "tls", "")
            + &host_rule("", "v1.api.example.com", 8443, "tls", "");
        let p = EgressPolicy::from_toml(&text, "t").unwrap();
        assert_eq!(p.host_rules_for("v1.api.example.com"), vec![2, 1, 0]);
        assert_eq!(p.host_rules_for("x.api.example.com"), vec![1, 0]);
        assert_eq!(p.host_rules_for("example.com"), Vec::<usize>::new());
    }
}
