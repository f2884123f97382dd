//! Checks that parse cannot express (references between tables, uniqueness, ranges), and the
//! warnings for weak but allowed choices. Syntax (CIDRs, host patterns, endpoints) is checked
//! by the types at parse (`types.rs`).

use super::{Config, Issue};
use rampart_ops::config::{Bounds, SVID_TTL_SECS};
use std::collections::HashSet;

/// `[server] threads`: 1 to 1024 (each is an OS thread per listener).
pub const THREADS: Bounds = Bounds::new(1, 1024, "");
/// `[server] shutdown_grace_seconds`: 0 to one hour.
pub const GRACE_SECONDS: Bounds = Bounds::new(0, 3_600, "s");
/// `[log] queue_capacity`: 1 to a million lines.
pub const QUEUE: Bounds = Bounds::new(1, 1_000_000, "");
/// `[limits] max_header_bytes`: 1 KiB to 1 MiB (Pingora's own ceiling).
pub const HEADER_BYTES: Bounds = Bounds::new(1024, 1 << 20, "bytes");
/// `[limits] max_headers`: 8 to 10,000.
pub const HEADERS: Bounds = Bounds::new(8, 10_000, "");
/// `[limits] max_uri_bytes`: 256 bytes to 1 MiB.
pub const URI_BYTES: Bounds = Bounds::new(256, 1 << 20, "bytes");
/// Upstream `connect_timeout_ms`: 1 ms to one minute.
pub const CONNECT_MS: Bounds = Bounds::new(1, 60_000, "ms");
/// Upstream `read_timeout_ms`: 1 ms to one hour.
pub const READ_MS: Bounds = Bounds::new(1, 3_600_000, "ms");
/// Upstream `health.max_failures`: 1 to 1,000.
pub const MAX_FAILURES: Bounds = Bounds::new(1, 1_000, "");
/// Upstream `health.eject_seconds`: 1 s to one day (added to the time of the failure).
pub const EJECT_SECONDS: Bounds = Bounds::new(1, 86_400, "s");
/// Route `waf.max_body`: 1 byte to 1 TiB.
pub const MAX_BODY: Bounds = Bounds::new(1, 1 << 40, "bytes");

/// A number outside its range, as an issue at `path`.
fn bounded<T: Copy + TryInto<u64> + std::fmt::Display>(
    path: &[&str],
    value: T,
    range: Bounds,
) -> Result<T, Issue> {
    let field = path.last().copied().unwrap_or_default();
    range.check(field, value).map_err(|m| Issue::new(path, m))
}

/// The first problem found, with the key path it concerns.
pub fn validate(c: &Config) -> Result<(), Issue> {
    bounded(&["server", "threads"], c.server.threads, THREADS)?;
    bounded(
        &["server", "shutdown_grace_seconds"],
        c.server.shutdown_grace_seconds,
        GRACE_SECONDS,
    )?;
    bounded(&["log", "queue_capacity"], c.log.queue_capacity, QUEUE)?;
    if let Some(ttl) = c.identity.as_ref().and_then(|i| i.ttl_seconds) {
        bounded(&["identity", "ttl_seconds"], ttl, SVID_TTL_SECS)?;
    }
    validate_listeners(c)?;
    validate_upstreams(c)?;
    validate_routes(c)?;
    validate_protection(c)
}

/// Head limits and `[protect]` (whose route references must name configured routes).
fn validate_protection(c: &Config) -> Result<(), Issue> {
    let l = &c.limits;
    for (key, v, range) in [
        ("max_header_bytes", l.max_header_bytes, HEADER_BYTES),
        ("max_headers", l.max_headers, HEADERS),
        ("max_uri_bytes", l.max_uri_bytes, URI_BYTES),
    ] {
        bounded(&["limits", key], v, range)?;
    }
    let routes: Vec<String> = c.routes.iter().map(|r| r.name.clone()).collect();
    c.protect.validate(&routes).map_err(|e| {
        let path: Vec<&str> = std::iter::once("protect")
            .chain(e.path.iter().map(String::as_str))
            .collect();
        Issue::new(&path, e.message)
    })
}

fn validate_route_waf(r: &super::RouteConfig, at: &[&str]) -> Result<(), Issue> {
    let w = &r.waf;
    let policy = rampart_waf::Policy {
        paranoia: w.paranoia,
        threshold: w.threshold,
        exclusions: w.exclusions.clone(),
        limits: rampart_waf::Limits::default(),
    };
    // Each error names its own field below `routes.N.waf` (and so its own line).
    if let Err(e) = policy.validate() {
        let n;
        let key: &[&str] = match &e {
            rampart_waf::PolicyError::Paranoia(_) => &["paranoia"],
            rampart_waf::PolicyError::Threshold => &["threshold"],
            rampart_waf::PolicyError::EmptyExclusion(i) => {
                n = i.to_string();
                &["exclusions", &n]
            }
        };
        return Err(Issue::new(&[at, key].concat(), e.to_string()));
    }
    bounded(&[at, &["max_body"]].concat(), w.max_body, MAX_BODY)?;
    if w.inspect_limit as u64 > w.max_body {
        return Err(Issue::new(
            &[at, &["inspect_limit"]].concat(),
            "inspect_limit must not exceed max_body",
        ));
    }
    if w.inspect_limit > 16 * 1024 * 1024 {
        return Err(Issue::new(
            &[at, &["inspect_limit"]].concat(),
            "inspect_limit must be at most 16 MiB",
        ));
    }
    Ok(())
}

fn validate_listeners(c: &Config) -> Result<(), Issue> {
    if c.listeners.is_empty() {
        return Err(Issue::new(
            &["listeners"],
            "at least one [[listeners]] is needed",
        ));
    }
    let mut names = HashSet::new();
    let mut ports = HashSet::new();
    for (i, l) in c.listeners.iter().enumerate() {
        let i = i.to_string();
        let at = |k: &'static str| ["listeners", i.as_str(), k];
        if !names.insert(&l.name) {
            return Err(Issue::new(
                &at("name"),
                format!("duplicate listener name `{}`", l.name),
            ));
        }
        // Requests are attributed to listeners by local port (port 0: the kernel picks a free
        // one for each at start, printed in the ready line).
        if l.address.port() != 0 && !ports.insert(l.address.port()) {
            return Err(Issue::new(
                &at("address"),
                "each listener needs its own port",
            ));
        }
        if let Some(tls) = &l.tls {
            if l.insecure_plaintext {
                return Err(Issue::new(
                    &at("insecure_plaintext"),
                    "only for listeners without tls",
                ));
            }
            if tls.certificates.is_empty() {
                return Err(Issue::new(
                    &at("tls"),
                    "needs at least one [[listeners.tls.certificates]]",
                ));
            }
            if tls.certificates.iter().filter(|c| c.default).count() > 1 {
                return Err(Issue::new(
                    &at("tls"),
                    "only one certificate can be the default",
                ));
            }
            let mut from_ca = false;
            for (j, cert) in tls.certificates.iter().enumerate() {
                if let super::CertSource::Ca(ca) = &cert.source {
                    from_ca = true;
                    if let Some(ttl) = ca.ttl_seconds {
                        let j = j.to_string();
                        let field = ["certificates", &j, "from_ca", "ttl_seconds"];
                        bounded(&[&at("tls")[..], &field[..]].concat(), ttl, SVID_TTL_SECS)?;
                    }
                }
            }
            if from_ca && c.identity.is_none() {
                return Err(Issue::new(
                    &at("tls"),
                    "a certificate `from_ca` needs the edge's [identity]",
                ));
            }
        }
    }
    if c.admin.enabled
        && c.listeners.iter().any(|l| {
            l.address.port() != 0
                && l.address.port() == c.admin.address.port()
                && l.address.ip() == c.admin.address.ip()
        })
    {
        return Err(Issue::new(
            &["admin", "address"],
            "collides with a listener",
        ));
    }
    Ok(())
}

fn validate_upstreams(c: &Config) -> Result<(), Issue> {
    let mut names = HashSet::new();
    for (i, u) in c.upstreams.iter().enumerate() {
        let i = i.to_string();
        let at = |k: &'static str| ["upstreams", i.as_str(), k];
        if !names.insert(&u.name) {
            return Err(Issue::new(
                &at("name"),
                format!("duplicate upstream name `{}`", u.name),
            ));
        }
        if u.endpoints.is_empty() {
            return Err(Issue::new(&at("endpoints"), "needs at least one endpoint"));
        }
        bounded(&at("connect_timeout_ms"), u.connect_timeout_ms, CONNECT_MS)?;
        bounded(&at("read_timeout_ms"), u.read_timeout_ms, READ_MS)?;
        let health = |k: &'static str| ["upstreams", i.as_str(), "health", k];
        bounded(&health("max_failures"), u.health.max_failures, MAX_FAILURES)?;
        bounded(
            &health("eject_seconds"),
            u.health.eject_seconds,
            EJECT_SECONDS,
        )?;
        if let Some(tls) = &u.tls {
            if rustls_pki_types::ServerName::try_from(tls.sni.as_str()).is_err() {
                return Err(Issue::new(
                    &at("tls"),
                    format!("sni `{}` is not a valid server name", tls.sni),
                ));
            }
        }
        if let Some(mtls) = &u.mtls {
            if u.tls.is_some() {
                return Err(Issue::new(&at("mtls"), "either `tls` or `mtls`, not both"));
            }
            let Some(identity) = &c.identity else {
                return Err(Issue::new(&at("mtls"), "needs the edge's [identity]"));
            };
            let (want, ours) = (
                mtls.spiffe_id.trust_domain_str(),
                identity.spiffe_id.trust_domain_str(),
            );
            if want != ours {
                return Err(Issue::new(
                    &at("mtls"),
                    format!("spiffe_id is in trust domain `{want}`, the edge's identity in `{ours}` (one bundle)"),
                ));
            }
            if let Some(sni) = &mtls.sni {
                if rustls_pki_types::ServerName::try_from(sni.as_str()).is_err() || sni.is_empty() {
                    return Err(Issue::new(
                        &at("mtls"),
                        format!("sni `{sni}` is not a valid server name"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_routes(c: &Config) -> Result<(), Issue> {
    let mut names = HashSet::new();
    for (i, r) in c.routes.iter().enumerate() {
        let i = i.to_string();
        let at = |k: &'static str| ["routes", i.as_str(), k];
        if !names.insert(&r.name) {
            return Err(Issue::new(
                &at("name"),
                format!("duplicate route name `{}`", r.name),
            ));
        }
        if r.hosts.is_empty() {
            return Err(Issue::new(
                &at("hosts"),
                "needs at least one host (`*` for any)",
            ));
        }
        if !r.path_prefix.starts_with('/') {
            return Err(Issue::new(&at("path_prefix"), "must start with `/`"));
        }
        if !c.upstreams.iter().any(|u| u.name == r.upstream) {
            return Err(Issue::new(
                &at("upstream"),
                format!("no upstream named `{}`", r.upstream),
            ));
        }
        for (name, value) in &r.headers.set {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(Issue::new(
                    &at("headers"),
                    format!("`{name}` is not a header name"),
                ));
            }
            if http::HeaderValue::try_from(value.as_str()).is_err() {
                return Err(Issue::new(
                    &at("headers"),
                    format!("value of `{name}` is not a valid header value"),
                ));
            }
        }
        for name in &r.headers.remove {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(Issue::new(
                    &at("headers"),
                    format!("`{name}` is not a header name"),
                ));
            }
        }
        validate_route_waf(r, &at("waf"))?;
        for name in &r.cookies.http_only_exceptions {
            if name.is_empty() || name.contains([';', '=', ' ', ',']) {
                return Err(Issue::new(
                    &at("cookies"),
                    format!("`{name}` is not a cookie name"),
                ));
            }
        }
    }
    Ok(())
}

/// Weak choices the operator asked for by name; printed by `check` and at start.
pub fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for l in &c.listeners {
        if l.insecure_plaintext {
            out.push(format!("listener `{}` serves plain HTTP (insecure_plaintext = true): traffic can be read and changed in transit", l.name));
        }
    }
    if c.admin.enabled && !c.admin.address.ip().is_loopback() {
        out.push(format!(
            "admin listener on {} is not loopback: metrics are reachable from the network",
            c.admin.address
        ));
    }
    for cidr in &c.server.trusted_proxies {
        if cidr.0.prefix_len() == 0 {
            out.push(format!(
                "trusted_proxies contains `{cidr}`: every client can forge its address"
            ));
        }
    }
    for u in &c.upstreams {
        if let Some(tls) = &u.tls {
            if !tls.verify_hostname {
                out.push(format!("upstream `{}`: verify_hostname = false, any certificate from the CA is accepted", u.name));
            }
        }
    }
    for r in &c.routes {
        for name in &r.cookies.http_only_exceptions {
            out.push(format!(
                "route `{}`: cookie `{name}` is readable by scripts (HttpOnly exception)",
                r.name
            ));
        }
        for name in &r.headers.remove {
            out.push(format!(
                "route `{}`: secure header `{name}` is not added",
                r.name
            ));
        }
        match r.waf.mode {
            super::WafMode::Off => out.push(format!("route `{}`: WAF off", r.name)),
            super::WafMode::Detect => out.push(format!(
                "route `{}`: WAF in detect mode (attacks are logged, not blocked)",
                r.name
            )),
            super::WafMode::Block => {}
        }
        if r.waf.insecure_pass_uninspected_body && r.waf.mode != super::WafMode::Off {
            out.push(format!(
                "route `{}`: insecure_pass_uninspected_body = true, body bytes past inspect_limit ({}) and fields past the WAF's field limit reach the upstream uninspected",
                r.name, r.waf.inspect_limit
            ));
        }
    }
    out
}
