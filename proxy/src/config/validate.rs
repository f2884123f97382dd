//! Checks that parse cannot express (references between tables, uniqueness, ranges), and the
//! warnings for weak but allowed choices. Syntax (CIDRs, host patterns, endpoints) is checked
//! by the types at parse (`types.rs`).

use super::{Config, Issue};
use std::collections::HashSet;

/// The first problem found, with the key path it concerns.
pub fn validate(c: &Config) -> Result<(), Issue> {
    if c.server.threads == 0 {
        return Err(Issue::new(&["server", "threads"], "must be at least 1"));
    }
    if c.log.queue_capacity == 0 {
        return Err(Issue::new(&["log", "queue_capacity"], "must be at least 1"));
    }
    validate_listeners(c)?;
    validate_upstreams(c)?;
    validate_routes(c)?;
    validate_protection(c)
}

/// Head limits and `[protect]` (whose route references must name configured routes).
fn validate_protection(c: &Config) -> Result<(), Issue> {
    let l = &c.limits;
    for (key, v, min) in [
        ("max_header_bytes", l.max_header_bytes, 1024),
        ("max_headers", l.max_headers, 8),
        ("max_uri_bytes", l.max_uri_bytes, 256),
    ] {
        if v < min {
            return Err(Issue::new(
                &["limits", key],
                format!("must be at least {min}"),
            ));
        }
    }
    let routes: Vec<String> = c.routes.iter().map(|r| r.name.clone()).collect();
    c.protect
        .validate(&routes)
        .map_err(|e| Issue::new(&["protect"], e))
}

fn validate_route_waf(r: &super::RouteConfig, at: &[&str]) -> Result<(), Issue> {
    let w = &r.waf;
    let policy = rampart_waf::Policy {
        paranoia: w.paranoia,
        threshold: w.threshold,
        exclusions: w.exclusions.clone(),
        limits: rampart_waf::Limits::default(),
    };
    if let Err(e) = policy.validate() {
        return Err(Issue::new(at, e.to_string()));
    }
    if w.max_body == 0 {
        return Err(Issue::new(at, "max_body must be above 0"));
    }
    if w.inspect_limit as u64 > w.max_body {
        return Err(Issue::new(at, "inspect_limit must not exceed max_body"));
    }
    if w.inspect_limit > 16 * 1024 * 1024 {
        return Err(Issue::new(at, "inspect_limit must be at most 16 MiB"));
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
            let from_ca = tls
                .certificates
                .iter()
                .any(|c| matches!(c.source, super::CertSource::Ca(_)));
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
        if u.connect_timeout_ms == 0 {
            return Err(Issue::new(&at("connect_timeout_ms"), "must be above 0"));
        }
        if u.read_timeout_ms == 0 {
            return Err(Issue::new(&at("read_timeout_ms"), "must be above 0"));
        }
        if u.health.max_failures == 0 {
            return Err(Issue::new(&at("health"), "max_failures must be at least 1"));
        }
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
