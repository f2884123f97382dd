//! The values a rule matches on, parsed once at load: SPIFFE ID patterns, HTTP path patterns,
//! method names and source networks. Each deserializes from a string through `TryFrom`, so a
//! bad value is reported by the TOML reader at its own line and field.
//!
//! Wildcards stand for whole segments only (issue #12: `…/ns/shop/sa/*`): `*` is exactly one
//! segment, and `**` as the last segment is one or more further segments (IDs) or any rest of
//! the path, including none (paths). `sa/front*` is refused: a partial-segment wildcard would
//! let `frontend-evil` in under `front*`.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rampart_tls::spiffe::{SpiffeId, TrustDomain};
use serde::Deserialize;

const SCHEME: &str = "spiffe://";

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**` (last only): the rest.
    Rest,
}

fn parse_segments(path: &str, what: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let segment = match *part {
            "*" => Segment::One,
            "**" if i + 1 == parts.len() => Segment::Rest,
            "**" => return Err(format!("`**` may only be the last segment of a {what}")),
            p if p.contains('*') => {
                return Err(format!(
                    "wildcard `*` must be a whole segment of a {what} (`{p}` mixes it with text)"
                ))
            }
            p => Segment::Literal(p.to_string()),
        };
        out.push(segment);
    }
    Ok(out)
}

/// Matches `segments` (an iterator over the request's segments) against a pattern.
fn match_segments<'a>(
    pattern: &[Segment],
    mut segments: impl Iterator<Item = &'a str>,
    rest_may_be_empty: bool,
) -> bool {
    for (i, p) in pattern.iter().enumerate() {
        match p {
            Segment::Rest => {
                debug_assert_eq!(i + 1, pattern.len());
                return rest_may_be_empty || segments.next().is_some();
            }
            Segment::One => {
                if segments.next().is_none() {
                    return false;
                }
            }
            Segment::Literal(lit) => match segments.next() {
                Some(s) if s == lit => {}
                _ => return false,
            },
        }
    }
    segments.next().is_none()
}

fn render_segments(segments: &[Segment]) -> String {
    let parts: Vec<&str> = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.as_str(),
            Segment::One => "*",
            Segment::Rest => "**",
        })
        .collect();
    parts.join("/")
}

/// A pattern over SPIFFE IDs: `spiffe://TRUST-DOMAIN/seg/…` where whole path segments may be
/// `*` (one) or, last, `**` (one or more). The trust domain is always literal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IdPattern {
    trust_domain: TrustDomain,
    segments: Vec<Segment>,
}

impl IdPattern {
    /// Parses a pattern. Literal parts obey the SPIFFE ID rules (checked by parsing the
    /// pattern with its wildcards replaced by a plain segment).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            format!("`{text}` is not a SPIFFE ID pattern: it must start with spiffe://")
        })?;
        let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        if domain.contains('*') {
            return Err(format!(
                "`{text}`: the trust domain of a pattern cannot be a wildcard"
            ));
        }
        if path.is_empty() {
            return Err(format!(
                "`{text}` names a trust domain, not a workload; to admit every workload of it write spiffe://{domain}/** (and know that `check` will warn)"
            ));
        }
        let segments =
            parse_segments(path, "SPIFFE ID pattern").map_err(|e| format!("`{text}`: {e}"))?;
        let concrete: Vec<&str> = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::One | Segment::Rest => "x",
            })
            .collect();
        let concrete = format!("{SCHEME}{domain}/{}", concrete.join("/"));
        SpiffeId::parse(&concrete).map_err(|e| format!("`{text}`: {e}"))?;
        let trust_domain = TrustDomain::parse(domain).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(IdPattern {
            trust_domain,
            segments,
        })
    }

    /// True when `id` (a valid SPIFFE ID) matches.
    pub fn matches(&self, id: &SpiffeId) -> bool {
        if id.trust_domain_str() != self.trust_domain.as_str() {
            return false;
        }
        let path = id.path();
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        match_segments(&self.segments, path.split('/'), false)
    }

    /// The pattern's trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// True when the pattern admits every workload of its trust domain (`spiffe://td/**`).
    pub fn is_whole_trust_domain(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Rest])
    }

    /// True when the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }
}

impl TryFrom<String> for IdPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        IdPattern::parse(&value)
    }
}

impl fmt::Display for IdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/{}",
            self.trust_domain,
            render_segments(&self.segments)
        )
    }
}

/// A pattern over HTTP paths: `/v1/payments/*` (one segment), `/static/**` (any rest,
/// including none), or an exact path. Matched against the path without its query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses a path pattern.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(path) = text.strip_prefix('/') else {
            return Err(format!("path pattern `{text}` must start with '/'"));
        };
        if text.contains(['?', '#', '%'])
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "path pattern `{text}` may not hold a query, fragment, percent-encoding or spaces"
            ));
        }
        let segments =
            parse_segments(path, "path pattern").map_err(|e| format!("`{text}`: {e}"))?;
        for s in &segments {
            if let Segment::Literal(l) = s {
                if l == "." || l == ".." {
                    return Err(format!(
                        "path pattern `{text}` may not hold `.` or `..` segments"
                    ));
                }
            }
        }
        Ok(PathPattern { segments })
    }

    /// True when `path` (the request target's path, query stripped by the caller) matches.
    /// Paths that are not in normal form (dot segments, `//` inside) match nothing: the HTTP
    /// layer refuses them before policy, and policy must not guess what the app will do.
    pub fn matches(&self, path: &str) -> bool {
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        if !is_normal_path(path) {
            return false;
        }
        match_segments(&self.segments, path.split('/'), true)
    }
}

/// True when a path (without its leading '/') has no dot segments and no empty segment other
/// than a trailing one (`/a/` is normal, `/a//b` is not).
pub fn is_normal_path(path: &str) -> bool {
    // Per request on HTTP ports: no allocation.
    let mut parts = path.split('/').peekable();
    while let Some(p) = parts.next() {
        if p == "." || p == ".." || (p.is_empty() && parts.peek().is_some()) {
            return false;
        }
    }
    true
}

impl TryFrom<String> for PathPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        PathPattern::parse(&value)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", render_segments(&self.segments))
    }
}

/// An HTTP method name (RFC 9110 token, upper-cased at load: `get` means GET).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Method(String);

impl Method {
    /// Parses a method name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if text.is_empty() || text.len() > 32 || !text.chars().all(tchar) {
            return Err(format!("`{text}` is not an HTTP method name"));
        }
        Ok(Method(text.to_ascii_uppercase()))
    }

    /// The upper-case name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Method {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Method::parse(&value)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A source network (`10.0.0.0/8`, or a bare address meaning that one host).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SourceNet(IpNet);

impl SourceNet {
    /// Parses a network or a single address.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(SourceNet(net.trunc()));
        }
        text.parse::<IpAddr>()
            .map(|a| SourceNet(IpNet::from(a)))
            .map_err(|_| format!("`{text}` is not an IP network (10.0.0.0/8) or address"))
    }

    /// True when `addr` is in the network.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.0.contains(addr)
    }
}

impl TryFrom<String> for SourceNet {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        SourceNet::parse(&value)
    }
}

impl fmt::Display for SourceNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    #[test]
    fn id_pattern_wildcards_are_whole_segments() {
        let p = IdPattern::parse("spiffe://mesh.local/ns/shop/sa/*").unwrap();
        assert!(p.matches(&id("spiffe://mesh.local/ns/shop/sa/frontend")));
        assert!(!p.matches(&id("spiffe://mesh.local/ns/shop/sa/frontend/extra")));
        assert!(!p.matches(&id("spiffe://mesh.local/ns/shop/sa")));
        assert!(!p.matches(&id("spiffe://other.local/ns/shop/sa/frontend")));
        assert!(!p.matches(&id("spiffe://mesh.local/ns/shopx/sa/frontend")));
        for bad in [
            "spiffe://mesh.local/ns/shop/sa/front*",
            "spiffe://mesh.local/ns/**/sa/x",
            "spiffe://*/ns/shop",
            "spiffe://mesh.local",
            "spiffe://mesh.local/",
            "spiffe://Mesh.local/ns/x",
            "spiffe://mesh.local/ns//x",
            "spiffe://mesh.local/ns/../x",
            "https://mesh.local/ns/x",
            "spiffe://mesh.local/ns/x?y",
        ] {
            assert!(IdPattern::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn id_pattern_rest_needs_one_segment() {
        let p = IdPattern::parse("spiffe://mesh.local/ns/shop/**").unwrap();
        assert!(p.matches(&id("spiffe://mesh.local/ns/shop/sa/a")));
        assert!(p.matches(&id("spiffe://mesh.local/ns/shop/x")));
        assert!(!p.matches(&id("spiffe://mesh.local/ns/shop")));
        let all = IdPattern::parse("spiffe://mesh.local/**").unwrap();
        assert!(all.is_whole_trust_domain());
        assert!(!p.is_whole_trust_domain());
        assert_eq!(p.to_string(), "spiffe://mesh.local/ns/shop/**");
    }

    #[test]
    fn exact_id_pattern_matches_only_itself() {
        let p = IdPattern::parse("spiffe://mesh.local/ns/shop/sa/frontend").unwrap();
        assert!(p.is_exact());
        assert!(p.matches(&id("spiffe://mesh.local/ns/shop/sa/frontend")));
        assert!(!p.matches(&id("spiffe://mesh.local/ns/shop/sa/frontend2")));
    }

    #[test]
    fn path_patterns() {
        let p = PathPattern::parse("/v1/payments/*").unwrap();
        assert!(p.matches("/v1/payments/42"));
        assert!(!p.matches("/v1/payments/42/refund"));
        assert!(!p.matches("/v1/payments"));
        assert!(!p.matches("/v1/payments/../admin"));
        let rest = PathPattern::parse("/static/**").unwrap();
        assert!(rest.matches("/static"));
        assert!(rest.matches("/static/a/b.css"));
        assert!(!rest.matches("/static/../etc/passwd"));
        assert!(!rest.matches("/static//x"));
        assert!(!rest.matches("/staticx"));
        let exact = PathPattern::parse("/healthz").unwrap();
        assert!(exact.matches("/healthz"));
        assert!(!exact.matches("/healthz/"));
        assert!(!exact.matches("healthz"));
        for bad in [
            "healthz", "/a*", "/a/**/b", "/a?x", "/a%2f", "/a/../b", "/a b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn methods_and_networks() {
        assert_eq!(Method::parse("get").unwrap().as_str(), "GET");
        assert!(Method::parse("GE T").is_err());
        assert!(Method::parse("").is_err());
        let n = SourceNet::parse("10.1.2.3/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(&"10.9.9.9".parse().unwrap()));
        assert!(!n.contains(&"11.0.0.1".parse().unwrap()));
        let host = SourceNet::parse("::1").unwrap();
        assert!(host.contains(&"::1".parse().unwrap()));
        assert!(SourceNet::parse("10.0.0.0/33").is_err());
    }
}
