//! Config values parsed into their types when the file is read, so a bad one is refused with
//! its file, line and field, and nothing downstream parses (or silently drops) them again.

use ipnet::IpNet;
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;

/// An IP network from `server.trusted_proxies`: `10.0.0.0/8`, or one address (`192.0.2.7`, a
/// /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(pub IpNet);

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        t.parse::<IpNet>()
            .ok()
            .or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from))
            .map(Cidr)
            .ok_or_else(|| format!("`{s}` is not an IP address or CIDR"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One host pattern from `routes.hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: matches any name ending with it.
    Suffix(String),
    Any,
}

impl HostPattern {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Some(HostPattern::Any);
        }
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, s.clone()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid && name.parse::<std::net::IpAddr>().is_err() {
            return None;
        }
        Some(if wild {
            HostPattern::Suffix(format!(".{name}"))
        } else {
            HostPattern::Exact(name)
        })
    }

    /// Match strength (higher wins), or None.
    pub fn rank(&self, host: &str) -> Option<usize> {
        match self {
            HostPattern::Exact(h) if h == host => Some(usize::MAX),
            HostPattern::Suffix(s) if host.len() > s.len() && host.ends_with(s.as_str()) => {
                Some(s.len() + 1)
            }
            HostPattern::Any => Some(0),
            _ => None,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Suffix(suffix) => write!(f, "*{suffix}"),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        HostPattern::parse(&s).ok_or_else(|| format!("`{s}` is not a host name, `*.domain` or `*`"))
    }
}

/// An upstream endpoint, `host:port` (`ip:port`, `[v6]:port` or `name:port`); names are
/// resolved when a runtime is built (start and SIGHUP), never per request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl TryFrom<String> for HostPort {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not host:port");
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_address_is_the_same_ca_whatever_the_case_of_its_host() {
        let ca = |s: &str| CaUrl::try_from(s.to_string()).unwrap();
        assert_eq!(
            ca("https://CA.internal:8443"),
            ca("https://ca.internal:8443")
        );
        assert_eq!(ca("https://[0::1]:8443"), ca("https://[::1]:8443"));
        assert_ne!(
            ca("https://ca.internal:8443"),
            ca("https://ca.internal:8444")
        );
        assert_ne!(
            ca("https://ca.internal:8443"),
            ca("https://cb.internal:8443")
        );
    }

    #[test]
    fn cidr_takes_networks_and_single_addresses() {
        assert_eq!(
            Cidr::try_from("10.0.0.0/8".to_string())
                .unwrap()
                .0
                .prefix_len(),
            8
        );
        assert_eq!(
            Cidr::try_from("192.0.2.7".to_string())
                .unwrap()
                .0
                .prefix_len(),
            32
        );
        assert!(Cidr::try_from("10.0.0/8".to_string()).is_err());
    }

    #[test]
    fn endpoints() {
        let e = HostPort::try_from("[::1]:8080".to_string()).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
        assert_eq!(e.to_string(), "[::1]:8080");
        assert!(HostPort::try_from("app:0".to_string()).is_err());
        assert!(HostPort::try_from("app".to_string()).is_err());
        assert!(HostPort::try_from(":80".to_string()).is_err());
    }
}

/// The built-in CA's address, `https://host:port` (or `host:port`), parsed at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CaUrl(pub rampart_identity::CaEndpoint);

impl TryFrom<String> for CaUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        rampart_identity::CaEndpoint::parse(&s)
            .map(CaUrl)
            .map_err(|e| format!("`{s}` is not a CA address: {e}"))
    }
}

/// Two addresses are the same CA when `CaEndpoint` says so (server name without case, and
/// port): `https://CA.internal:8443` and `https://ca.internal:8443` reload as one.
impl PartialEq for CaUrl {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
