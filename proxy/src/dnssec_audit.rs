//! `rampart-proxy audit dnssec` (S.N.11): for every host name the edge serves (route hosts and
//! certificate `server_names`), check through a validating resolver (rampart-dns) that its zone
//! is signed and validates; report each name secure / insecure / bogus / failed with the reason.
//! Exit status: success only when every name is secure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rampart_dns::audit::{audit, Finding, Verdict};
use rampart_dns::{Resolver, ResolverConfig, TrustAnchor};

use crate::config::Config;

/// A name to audit and where the config serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedName {
    pub name: String,
    pub sources: Vec<String>,
}

/// Names the edge serves, deduplicated, in config order. Wildcards, `*` and IP literals are
/// returned separately: they are not names one can look up.
pub fn served_names(config: &Config) -> (Vec<ServedName>, Vec<(String, String)>) {
    let mut names: Vec<ServedName> = Vec::new();
    let mut skipped = Vec::new();
    let mut add = |raw: &str, source: String| {
        let n = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if n.contains('*') || n.parse::<std::net::IpAddr>().is_ok() || n.is_empty() {
            skipped.push((raw.to_string(), source));
            return;
        }
        match names.iter_mut().find(|s| s.name == n) {
            Some(s) => s.sources.push(source),
            None => names.push(ServedName {
                name: n,
                sources: vec![source],
            }),
        }
    };
    for r in &config.routes {
        for h in &r.hosts {
            add(&h.to_string(), format!("route {}", r.name));
        }
    }
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            for c in &t.certificates {
                for n in &c.server_names {
                    add(n, format!("listener {} certificate", l.name));
                }
            }
        }
    }
    (names, skipped)
}

/// Upstream resolvers from resolv.conf (`nameserver` lines, port 53).
pub fn system_resolvers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver"))
                .then(|| f.next())
                .flatten()
                .and_then(|ip| ip.split('%').next())
                .and_then(|ip| ip.parse().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Runs the audit and prints the report (text, or one JSON object per line with `json`).
/// `Ok(true)` when every name is secure.
pub fn run(
    config_path: &Path,
    resolvers: Vec<SocketAddr>,
    trust_anchor: Option<PathBuf>,
    json: bool,
) -> Result<bool, String> {
    let config = crate::config::load(config_path).map_err(|e| e.to_string())?;
    let resolvers = if resolvers.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf")
            .map_err(|e| format!("no --resolver given and /etc/resolv.conf unreadable: {e}"))?;
        let r = system_resolvers(&text);
        if r.is_empty() {
            return Err("no --resolver given and no nameserver in /etc/resolv.conf".into());
        }
        r
    } else {
        resolvers
    };
    let mut rc = ResolverConfig::new(resolvers);
    if let Some(p) = trust_anchor {
        rc.trust_anchor = TrustAnchor::File(p);
    }
    let resolver = Resolver::new(rc).map_err(|e| e.to_string())?;
    let (names, skipped) = served_names(&config);
    let list: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let findings = rt.block_on(audit(&resolver, &list));
    let mut all_secure = true;
    for (f, n) in findings.iter().zip(&names) {
        all_secure &= f.verdict == Verdict::Secure;
        println!("{}", line(f, &n.sources, json));
    }
    for (raw, source) in &skipped {
        if json {
            println!(
                "{}",
                serde_json::json!({"name": raw, "verdict": "skipped", "code": "not_a_name",
                    "reason": "a wildcard or address is not a name to look up; list concrete names to audit them",
                    "sources": [source]})
            );
        } else {
            println!("skipped   {raw}  ({source}): a wildcard or address is not a name to look up");
        }
    }
    if names.is_empty() {
        return Err(format!(
            "{}: no host names to audit (routes and certificates name none)",
            config_path.display()
        ));
    }
    Ok(all_secure)
}

fn line(f: &Finding, sources: &[String], json: bool) -> String {
    if json {
        serde_json::json!({
            "name": f.name,
            "verdict": f.verdict.as_str(),
            "code": f.code,
            "reason": f.reason,
            "sources": sources,
        })
        .to_string()
    } else {
        format!(
            "{:<9} {}  ({}): {}",
            f.verdict.as_str(),
            f.name,
            sources.join(", "),
            f.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let r = system_resolvers(
            "# c\nnameserver 10.0.0.2\nsearch x\nnameserver fe80::1%eth0\nnameserver bad\n",
        );
        assert_eq!(
            r,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
