//! SPIFFE IDs and trust domains, parsed once at the boundary
//! ("parse, don't validate"): code holding a `SpiffeId` holds a valid one.
//!
//! Rules quoted from the SPIFFE ID specification (SPIFFE-ID.md §2):
//! - "The scheme and trust domain name are case-insensitive, ... it MUST be
//!   lowercase"; trust domain characters are `[a-z0-9.-_]`.
//! - "Path segments MUST NOT be empty", "MUST NOT be dot segments",
//!   "MUST NOT have a trailing slash"; path characters `[a-zA-Z0-9.-_]`.
//! - "the URI MUST NOT include query or fragment components", nor a port or
//!   user info; the total length is at most 2048 bytes.

use std::fmt;

use crate::error::{Result, TlsError};

const SCHEME: &str = "spiffe://";
const MAX_ID_LEN: usize = 2048;
const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A SPIFFE trust domain, e.g. `prod.example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parses a bare trust domain name (no scheme).
    pub fn parse(domain: &str) -> Result<Self> {
        let bad = |why| TlsError::InvalidTrustDomain {
            domain: domain.to_string(),
            why,
        };
        if domain.is_empty() {
            return Err(bad("empty"));
        }
        if domain.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(bad("longer than 255 characters"));
        }
        if !domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(bad(
                "only lowercase letters, digits, '-', '.', '_' are allowed",
            ));
        }
        Ok(TrustDomain(domain.to_string()))
    }

    /// The trust domain name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix every SPIFFE ID of this trust domain starts with.
    pub fn id_prefix(&self) -> String {
        format!("{SCHEME}{}/", self.0)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid SPIFFE ID such as `spiffe://prod.example.org/ns/web/sa/frontend`.
///
/// With the `serde` feature it deserialises from a string through [`SpiffeId::parse`]: a
/// refused value fails with `invalid SPIFFE ID "<value>": <the rule it breaks>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "String")
)]
pub struct SpiffeId {
    uri: String,
    domain_len: usize,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID URI.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why| TlsError::InvalidSpiffeId {
            id: uri.to_string(),
            why,
        };
        if uri.len() > MAX_ID_LEN {
            return Err(bad("longer than 2048 bytes"));
        }
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("scheme must be spiffe://"))?;
        let (domain, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if domain.contains(':') || domain.contains('@') {
            return Err(bad("trust domain must not carry a port or user info"));
        }
        TrustDomain::parse(domain)
            .map_err(|_| bad("trust domain must be lowercase [a-z0-9.-_], non-empty"))?;
        if !path.is_empty() {
            for segment in path[1..].split('/') {
                if segment.is_empty() {
                    return Err(bad(
                        "path segments must not be empty (no '//' or trailing '/')",
                    ));
                }
                if segment == "." || segment == ".." {
                    return Err(bad("path segments must not be '.' or '..'"));
                }
                if !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return Err(bad("path characters must be [a-zA-Z0-9.-_] (no query, fragment or percent-encoding)"));
                }
            }
        }
        Ok(SpiffeId {
            uri: uri.to_string(),
            domain_len: domain.len(),
        })
    }

    /// The workload identity `spiffe://DOMAIN/ns/NS/sa/SA`.
    pub fn workload(domain: &TrustDomain, namespace: &str, service_account: &str) -> Result<Self> {
        Self::parse(&format!(
            "{SCHEME}{domain}/ns/{namespace}/sa/{service_account}"
        ))
    }

    /// The full URI.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The trust domain name part.
    pub fn trust_domain_str(&self) -> &str {
        &self.uri[SCHEME.len()..SCHEME.len() + self.domain_len]
    }

    /// True when this ID belongs to `domain`.
    pub fn is_member_of(&self, domain: &TrustDomain) -> bool {
        self.trust_domain_str() == domain.as_str()
    }

    /// The path part (`/ns/x/sa/y`), empty for a trust domain ID.
    pub fn path(&self) -> &str {
        &self.uri[SCHEME.len() + self.domain_len..]
    }

    /// Errors unless the ID belongs to `domain`.
    pub fn require_member_of(&self, domain: &TrustDomain) -> Result<()> {
        if self.is_member_of(domain) {
            Ok(())
        } else {
            Err(TlsError::ForeignTrustDomain {
                id: self.uri.clone(),
                trust_domain: domain.to_string(),
            })
        }
    }
}

impl TryFrom<String> for SpiffeId {
    type Error = TlsError;
    fn try_from(uri: String) -> Result<Self> {
        Self::parse(&uri)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_workload_ids() {
        let td = TrustDomain::parse("prod.example.org").unwrap();
        let id = SpiffeId::workload(&td, "web", "frontend").unwrap();
        assert_eq!(id.as_str(), "spiffe://prod.example.org/ns/web/sa/frontend");
        assert_eq!(id.trust_domain_str(), "prod.example.org");
        assert_eq!(id.path(), "/ns/web/sa/frontend");
        assert!(id.is_member_of(&td));
        assert!(!id.is_member_of(&TrustDomain::parse("other.org").unwrap()));
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "https://example.org/x",
            "spiffe://",
            "spiffe://Example.org/x",
            "spiffe://example.org:443/x",
            "spiffe://user@example.org/x",
            "spiffe://example.org/",
            "spiffe://example.org//x",
            "spiffe://example.org/./x",
            "spiffe://example.org/../x",
            "spiffe://example.org/x?q=1",
            "spiffe://example.org/x#f",
            "spiffe://example.org/x%20y",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad} must be refused");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(2100));
        assert!(SpiffeId::parse(&long).is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserialises_through_parse_naming_a_refused_value() {
        use serde::de::value::{Error, StringDeserializer};
        use serde::Deserialize;
        let read = |s: &str| SpiffeId::deserialize(StringDeserializer::<Error>::new(s.into()));
        let id = read("spiffe://prod.example.org/ns/web/sa/frontend").unwrap();
        assert_eq!(id.path(), "/ns/web/sa/frontend");
        let e = read("spiffe://prod.example.org/ns//sa")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid SPIFFE ID \"spiffe://prod.example.org/ns//sa\": path segments must not be empty (no '//' or trailing '/')"
        );
        let e = read("https://x.test/a").unwrap_err().to_string();
        assert!(
            e.contains("\"https://x.test/a\"") && e.contains("scheme must be spiffe://"),
            "{e}"
        );
    }
}
