//! The egress decision: from what the sidecar saw and the policy, which rule allows the
//! connection and what to dial, or why not. Pure and offline (the same function backs
//! `policy explain --egress`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use rampart_dns::{DnsDenial, DnssecMode};

use crate::peek::{Seen, Target};
use crate::policy::{EgressPolicy, HostPattern, Protocol};

/// How the connection reached the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redirected by iptables; `original_dst` from SO_ORIGINAL_DST (what the app dialled).
    Transparent { original_dst: SocketAddr },
    /// The app uses the sidecar as its HTTP(S) proxy (`CONNECT`, absolute-form requests).
    ExplicitProxy,
}

/// What to dial once allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dial {
    /// Resolve through rampart-dns (DNSSEC per `dnssec`, vetting with `internal`), then dial
    /// exactly a vetted address.
    Name {
        host: String,
        port: u16,
        dnssec: DnssecMode,
        internal: Vec<IpNet>,
    },
    /// An address an address rule names; dialled as is.
    Address(SocketAddr),
}

/// An allowed connection: the rule, what to dial, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub protocol: Protocol,
    pub dial: Dial,
    pub explanation: String,
}

/// Why an egress connection was refused. `reason()` is the stable code for logs and metrics,
/// `rule()` the rule concerned when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("no egress rule allows {host}:{port} ({protocol}){}", closest.as_ref().map(|c| format!("; closest: {c}")).unwrap_or_default())]
    NoRule {
        host: String,
        port: u16,
        protocol: Protocol,
        closest: Option<String>,
    },
    #[error("rule {rule} allows {host} on ports {ports}, not {port}")]
    PortNotAllowed {
        rule: String,
        host: String,
        port: u16,
        ports: String,
    },
    #[error("rule {rule} expects {expected} to {host}:{port}, the client sent {seen}")]
    ProtocolMismatch {
        rule: String,
        host: String,
        port: u16,
        expected: Protocol,
        seen: Protocol,
    },
    #[error("TLS without SNI to {dst}, and no address rule names {dst}")]
    MissingSni { dst: SocketAddr },
    #[error("plain HTTP without a Host header to {dst}, and no address rule names {dst}")]
    MissingHost { dst: SocketAddr },
    #[error("raw IP destination {ip}:{port} is named by no address rule{}", sni.as_ref().map(|s| format!(" (SNI {s:?} does not change that)")).unwrap_or_default())]
    RawIpNotNamed {
        ip: IpAddr,
        port: u16,
        sni: Option<String>,
    },
    #[error("CONNECT to {connect} but the TLS inside names {}", sni.as_deref().map(|s| format!("{s:?}")).unwrap_or_else(|| "no server (no SNI)".into()))]
    ConnectSniMismatch {
        connect: String,
        sni: Option<String>,
    },
    #[error("request target {target} but Host header {host_header}")]
    HostMismatch { target: String, host_header: String },
    #[error("{0}")]
    NotAProxyRequest(String),
    #[error("{0}")]
    ProxyRequestInTransparentMode(String),
    #[error("unrecognized protocol: {0}")]
    Unrecognized(String),
    #[error("no complete ClientHello or request head within the deadline ({0} bytes seen)")]
    PeekTimeout(usize),
    #[error("client closed the connection before a ClientHello or request head ({0} bytes seen)")]
    ClientClosed(usize),
    #[error("rule {rule}: {source}")]
    Dns { rule: String, source: DnsDenial },
    #[error("rule {rule}: dialling {addr} failed: {detail}")]
    Dial {
        rule: String,
        addr: String,
        detail: String,
    },
}

/// Every reason code [`Denied::reason`] returns (rampart-dns's included), for docs, alert
/// rules and their tests.
pub const REASONS: &[&str] = &[
    "no_rule",
    "port_not_allowed",
    "protocol_mismatch",
    "missing_sni",
    "missing_host",
    "raw_ip_not_named",
    "connect_sni_mismatch",
    "host_mismatch",
    "not_a_proxy_request",
    "proxy_request_in_transparent_mode",
    "unrecognized_protocol",
    "peek_timeout",
    "client_closed",
    "dial_failed",
    "dns_invalid_name",
    "dns_nxdomain",
    "dns_no_addresses",
    "dnssec_bogus",
    "dnssec_unsigned",
    "dnssec_indeterminate",
    "resolver_unreachable",
    "resolver_failure",
    "address_refused",
];

impl Denied {
    /// Stable reason code (log field, metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::NoRule { .. } => "no_rule",
            Denied::PortNotAllowed { .. } => "port_not_allowed",
            Denied::ProtocolMismatch { .. } => "protocol_mismatch",
            Denied::MissingSni { .. } => "missing_sni",
            Denied::MissingHost { .. } => "missing_host",
            Denied::RawIpNotNamed { .. } => "raw_ip_not_named",
            Denied::ConnectSniMismatch { .. } => "connect_sni_mismatch",
            Denied::HostMismatch { .. } => "host_mismatch",
            Denied::NotAProxyRequest(_) => "not_a_proxy_request",
            Denied::ProxyRequestInTransparentMode(_) => "proxy_request_in_transparent_mode",
            Denied::Unrecognized(_) => "unrecognized_protocol",
            Denied::PeekTimeout(_) => "peek_timeout",
            Denied::ClientClosed(_) => "client_closed",
            Denied::Dns { source, .. } => source.reason(),
            Denied::Dial { .. } => "dial_failed",
        }
    }

    /// The rule concerned, if any.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Denied::PortNotAllowed { rule, .. }
            | Denied::ProtocolMismatch { rule, .. }
            | Denied::Dns { rule, .. }
            | Denied::Dial { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// A `403 Forbidden` for explicit-proxy clients (before any `200` to a CONNECT), carrying the
    /// reason code in `X-Rampart-Deny-Reason` and the explanation in the body.
    pub fn http_response(&self) -> Vec<u8> {
        forbidden_response(self.reason(), self.rule(), &self.to_string())
    }
}

/// A `403 Forbidden` naming a denial: `X-Rampart-Deny-Reason` (and `X-Rampart-Deny-Rule` when a
/// rule is concerned), the explanation in the body. Also used by the egress gateway's callers.
pub fn forbidden_response(reason: &str, rule: Option<&str>, text: &str) -> Vec<u8> {
    let body = format!("egress denied: {text}\n");
    let header = |v: &str| v.chars().all(|c| c.is_ascii_graphic());
    let rule = rule
        .filter(|r| header(r))
        .map(|r| format!("X-Rampart-Deny-Rule: {r}\r\n"))
        .unwrap_or_default();
    let reason = if header(reason) { reason } else { "denied" };
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
         X-Rampart-Deny-Reason: {reason}\r\n{rule}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allowed by {}: {}", self.rule, self.explanation)
    }
}

/// Decides one connection. For `Seen::Connect` in explicit mode, `inner` is what came through
/// the tunnel (the ClientHello, or a plain request); `None` checks the CONNECT target alone
/// (before answering `200`).
pub fn decide(
    policy: &EgressPolicy,
    mode: Mode,
    seen: &Seen,
    inner: Option<&Seen>,
) -> Result<Decision, Denied> {
    match (mode, seen) {
        (Mode::Transparent { original_dst }, Seen::Tls { sni }) => match sni {
            Some(name) => by_name(policy, name, original_dst.port(), Protocol::Tls),
            None => by_address(
                policy,
                original_dst.ip(),
                original_dst.port(),
                Protocol::Tls,
            )
            .unwrap_or(Err(Denied::MissingSni { dst: original_dst })),
        },
        (
            Mode::Transparent { original_dst },
            Seen::Http {
                host: Some(target), ..
            },
        ) => by_target(policy, target, original_dst.port(), Protocol::Http, None),
        (Mode::Transparent { original_dst }, Seen::Http { host: None, .. }) => by_address(
            policy,
            original_dst.ip(),
            original_dst.port(),
            Protocol::Http,
        )
        .unwrap_or(Err(Denied::MissingHost { dst: original_dst })),
        (Mode::Transparent { .. }, Seen::Connect { .. } | Seen::Absolute { .. }) => {
            Err(Denied::ProxyRequestInTransparentMode(
                "an explicit-proxy request (CONNECT or absolute-form) on a transparently \
                 redirected connection"
                    .into(),
            ))
        }
        (Mode::ExplicitProxy, Seen::Connect { target, port, .. }) => {
            decide_connect(policy, target, *port, inner)
        }
        (
            Mode::ExplicitProxy,
            Seen::Absolute {
                target,
                port,
                host_header,
                ..
            },
        ) => {
            if let Some(h) = host_header {
                if h != target {
                    return Err(Denied::HostMismatch {
                        target: target.to_string(),
                        host_header: h.to_string(),
                    });
                }
            }
            by_target(policy, target, *port, Protocol::Http, None)
        }
        (Mode::ExplicitProxy, Seen::Tls { .. } | Seen::Http { .. }) => {
            Err(Denied::NotAProxyRequest(
                "explicit proxy mode expects CONNECT or an absolute-form request".into(),
            ))
        }
    }
}

fn decide_connect(
    policy: &EgressPolicy,
    target: &Target,
    port: u16,
    inner: Option<&Seen>,
) -> Result<Decision, Denied> {
    match inner {
        // The CONNECT target alone: some rule must allow it for some protocol.
        None => by_target(policy, target, port, Protocol::Tls, None)
            .or_else(|_| by_target(policy, target, port, Protocol::Http, None)),
        Some(Seen::Tls { sni }) => {
            if let Target::Ip(ip) = target {
                // A raw IP is judged by the address rules whatever the SNI says.
                let d = by_address(policy, *ip, port, Protocol::Tls).unwrap_or(Err(
                    Denied::RawIpNotNamed {
                        ip: *ip,
                        port,
                        sni: sni.clone(),
                    },
                ))?;
                if sni.is_some() {
                    return Err(Denied::ConnectSniMismatch {
                        connect: format!("{ip}:{port}"),
                        sni: sni.clone(),
                    });
                }
                return Ok(d);
            }
            let Target::Name(name) = target else {
                return Err(Denied::Unrecognized("CONNECT target".into()));
            };
            if sni.as_deref() != Some(name.as_str()) {
                return Err(Denied::ConnectSniMismatch {
                    connect: format!("{name}:{port}"),
                    sni: sni.clone(),
                });
            }
            by_name(policy, name, port, Protocol::Tls)
        }
        Some(Seen::Http { host, .. }) => {
            if let Some(h) = host {
                if h != target {
                    return Err(Denied::HostMismatch {
                        target: target.to_string(),
                        host_header: h.to_string(),
                    });
                }
            }
            by_target(policy, target, port, Protocol::Http, None)
        }
        Some(Seen::Connect { .. } | Seen::Absolute { .. }) => Err(Denied::Unrecognized(
            "a proxy request inside a CONNECT tunnel".into(),
        )),
    }
}

fn by_target(
    policy: &EgressPolicy,
    target: &Target,
    port: u16,
    protocol: Protocol,
    sni: Option<&str>,
) -> Result<Decision, Denied> {
    match target {
        Target::Name(n) => by_name(policy, n, port, protocol),
        Target::Ip(ip) => {
            by_address(policy, *ip, port, protocol).unwrap_or(Err(Denied::RawIpNotNamed {
                ip: *ip,
                port,
                sni: sni.map(str::to_string),
            }))
        }
    }
}

/// Host rules for a name.
fn by_name(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
    protocol: Protocol,
) -> Result<Decision, Denied> {
    let host = match rampart_dns::normalize(host) {
        Ok(h) => h,
        Err(e) => return Err(Denied::Unrecognized(e.to_string())),
    };
    let rules = policy.host_rules_for(&host);
    let mut port_ok_other_protocol = None;
    for &i in &rules {
        let Some(r) = policy.hosts.get(i) else {
            continue;
        };
        if !r.ports.contains(port) {
            continue;
        }
        if r.protocol != protocol {
            port_ok_other_protocol.get_or_insert((i, r.protocol));
            continue;
        }
        return Ok(Decision {
            rule: policy.host_rule_name(i),
            protocol,
            dial: Dial::Name {
                host: host.clone(),
                port,
                dnssec: policy.dnssec_of(r),
                internal: r.internal.clone(),
            },
            explanation: format!(
                "{host}:{port} ({protocol}) matches {} ports {}; resolved by rampart-dns \
                 (dnssec {}){}",
                r.host,
                r.ports,
                policy.dnssec_of(r).as_str(),
                if r.internal.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", internal networks allowed: {}",
                        r.internal
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        });
    }
    if let Some((i, expected)) = port_ok_other_protocol {
        return Err(Denied::ProtocolMismatch {
            rule: policy.host_rule_name(i),
            host,
            port,
            expected,
            seen: protocol,
        });
    }
    if let Some(&i) = rules.first() {
        return Err(Denied::PortNotAllowed {
            rule: policy.host_rule_name(i),
            host,
            port,
            ports: policy
                .hosts
                .get(i)
                .map(|r| r.ports.to_string())
                .unwrap_or_default(),
        });
    }
    Err(Denied::NoRule {
        closest: closest(policy, &host),
        host,
        port,
        protocol,
    })
}

/// Address rules for an IP; `None` when no rule's networks contain it.
fn by_address(
    policy: &EgressPolicy,
    ip: IpAddr,
    port: u16,
    protocol: Protocol,
) -> Option<Result<Decision, Denied>> {
    let mut named = None;
    for (i, r) in policy.addresses.iter().enumerate() {
        let Some(net) = r.networks.iter().find(|n| n.contains(&ip)) else {
            continue;
        };
        named.get_or_insert(i);
        if r.ports.contains(port) && r.protocol == protocol {
            return Some(Ok(Decision {
                rule: policy.address_rule_name(i),
                protocol,
                dial: Dial::Address(SocketAddr::new(ip, port)),
                explanation: format!("{ip}:{port} ({protocol}) is in {net} ports {}", r.ports),
            }));
        }
    }
    let i = named?;
    let r = policy.addresses.get(i)?;
    Some(Err(if r.ports.contains(port) {
        Denied::ProtocolMismatch {
            rule: policy.address_rule_name(i),
            host: ip.to_string(),
            port,
            expected: r.protocol,
            seen: protocol,
        }
    } else {
        Denied::PortNotAllowed {
            rule: policy.address_rule_name(i),
            host: ip.to_string(),
            port,
            ports: r.ports.to_string(),
        }
    }))
}

/// The nearest rule that did not match, and why.
fn closest(policy: &EgressPolicy, host: &str) -> Option<String> {
    for (i, r) in policy.hosts.iter().enumerate() {
        match &r.host {
            HostPattern::Wildcard(s) if s == host => {
                return Some(format!(
                    "{} ({}) matches names below {s}, never {s} itself: add an exact rule for {s}",
                    r.host,
                    policy.host_rule_name(i)
                ))
            }
            HostPattern::Exact(e) if host.ends_with(&format!(".{e}")) => {
                return Some(format!(
                    "{e} ({}) is exact and does not cover names below it: use *.{e}",
                    policy.host_rule_name(i)
                ))
            }
            _ => {}
        }
    }
    // Same parent domain.
    let parent = host.split_once('.').map(|(_, p)| p)?;
    policy.hosts.iter().enumerate().find_map(|(i, r)| {
        let s = r.host.to_string();
        (s.ends_with(&format!(".{parent}")) || s == parent)
            .then(|| format!("{s} ({}) is for another name", policy.host_rule_name(i)))
    })
}

/// One protocol's outcome in [`explain`].
pub type Explained = (Protocol, Result<Decision, Denied>);

/// The offline decision for `HOST:PORT` (`rampart-sidecar policy explain --egress`): a name
/// is judged as TLS carrying it as SNI and as plain HTTP carrying it as Host (or only the given
/// `protocol`); an IP literal as a redirected connection to it without SNI or Host. DNS is not
/// consulted: an allowed name is still resolved, DNSSEC-checked and vetted at connect time.
pub fn explain(
    policy: &EgressPolicy,
    dest: &str,
    protocol: Option<Protocol>,
) -> Result<Vec<Explained>, String> {
    let (target, port) = crate::peek::parse_host_port(dest)
        .ok_or_else(|| format!("{dest:?} is not HOST:PORT (use [v6]:port for IPv6)"))?;
    let protocols = match protocol {
        Some(p) => vec![p],
        None => vec![Protocol::Tls, Protocol::Http],
    };
    Ok(protocols
        .into_iter()
        .map(|p| {
            let d = match &target {
                Target::Name(n) => by_name(policy, n, port, p),
                Target::Ip(ip) => {
                    let mode = Mode::Transparent {
                        original_dst: SocketAddr::new(*ip, port),
                    };
                    let seen = match p {
                        Protocol::Tls => Seen::Tls { sni: None },
                        Protocol::Http => Seen::Http {
                            host: None,
                            host_port: None,
                            head_len: 0,
                        },
                    };
                    decide(policy, mode, &seen, None)
                }
            };
            (p, d)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{host_rule, EgressPolicy};

    fn policy() -> EgressPolicy {
        let text = host_rule("api", "api.example.com", 443, "tls", "")
            + &host_rule("cdn", "*.cdn.example.com", 443, "tls", "dnssec = \"required\"\n")
            + &host_rule("plain", "www.example.org", 80, "http", "")
            + "[[addresses]]\nname = \"legacy\"\nnetworks = [\"203.0.113.7/32\"]\nports = [443]\nprotocol = \"tls\"\n";
        EgressPolicy::from_toml(&text, "t").unwrap()
    }

    fn dst(s: &str) -> Mode {
        Mode::Transparent {
            original_dst: s.parse().unwrap(),
        }
    }

    fn tls(sni: Option<&str>) -> Seen {
        Seen::Tls {
            sni: sni.map(str::to_string),
        }
    }

    fn http(host: Option<&str>) -> Seen {
        Seen::Http {
            host: host.and_then(Target::parse),
            host_port: None,
            head_len: 0,
        }
    }

    fn connect(target: &str, port: u16) -> Seen {
        Seen::Connect {
            target: Target::parse(target).unwrap(),
            port,
            head_len: 0,
        }
    }

    fn absolute(target: &str, host_header: &str) -> Seen {
        Seen::Absolute {
            target: Target::parse(target).unwrap(),
            port: 80,
            host_header: Target::parse(host_header),
            head_len: 0,
        }
    }

    /// One case: (mode, what was seen, what came through the tunnel, the rule that allows it or
    /// the reason code that refuses it, text the decision or refusal must say).
    type Case = (
        Mode,
        Seen,
        Option<Seen>,
        Result<&'static str, &'static str>,
        &'static str,
    );

    /// Decides each case.
    fn check(cases: Vec<Case>) {
        let p = policy();
        for (mode, seen, inner, want, text) in cases {
            let got = decide(&p, mode, &seen, inner.as_ref());
            let (outcome, said) = match &got {
                Ok(d) => (Ok(d.rule.as_str()), d.to_string()),
                Err(e) => (Err(e.reason()), e.to_string()),
            };
            assert_eq!(outcome, want, "{seen:?} (inside: {inner:?}): {said}");
            assert!(said.contains(text), "{said:?} does not say {text:?}");
        }
    }

    #[test]
    fn transparent_tls_and_http() {
        let web = dst("198.51.100.1:443");
        check(vec![
            (
                web,
                tls(Some("api.example.com")),
                None,
                Ok("api"),
                "(dnssec if-signed)",
            ),
            // Wildcard: one or more labels, never the apex.
            (
                web,
                tls(Some("a.b.cdn.example.com")),
                None,
                Ok("cdn"),
                "(dnssec required)",
            ),
            (
                web,
                tls(Some("cdn.example.com")),
                None,
                Err("no_rule"),
                "never cdn.example.com itself",
            ),
            (
                web,
                tls(Some("x.api.example.com")),
                None,
                Err("no_rule"),
                "is exact",
            ),
            (
                dst("198.51.100.1:8443"),
                tls(Some("api.example.com")),
                None,
                Err("port_not_allowed"),
                "rule api allows",
            ),
            (
                web,
                tls(Some("evil.example.net")),
                None,
                Err("no_rule"),
                "evil.example.net:443 (tls)",
            ),
            // Missing SNI: only an address rule can allow it.
            (web, tls(None), None, Err("missing_sni"), "198.51.100.1:443"),
            (
                dst("203.0.113.7:443"),
                tls(None),
                None,
                Ok("legacy"),
                "203.0.113.7:443 (tls) is in 203.0.113.7/32",
            ),
            // An address rule does not open other names on that address: the SNI decides.
            (
                dst("203.0.113.7:443"),
                tls(Some("evil.example.net")),
                None,
                Err("no_rule"),
                "",
            ),
            (
                dst("198.51.100.1:80"),
                http(Some("api.example.com")),
                None,
                Err("port_not_allowed"),
                "",
            ),
            (
                dst("198.51.100.1:80"),
                http(Some("www.example.org")),
                None,
                Ok("plain"),
                "",
            ),
            (
                web,
                http(Some("api.example.com")),
                None,
                Err("protocol_mismatch"),
                "rule api expects tls",
            ),
            (
                dst("198.51.100.1:80"),
                http(None),
                None,
                Err("missing_host"),
                "",
            ),
            (
                dst("198.51.100.1:80"),
                http(Some("10.0.0.1")),
                None,
                Err("raw_ip_not_named"),
                "",
            ),
            (
                web,
                connect("a", 1),
                None,
                Err("proxy_request_in_transparent_mode"),
                "",
            ),
        ]);
        let d = decide(
            &policy(),
            dst("198.51.100.1:443"),
            &tls(Some("api.example.com")),
            None,
        )
        .unwrap();
        assert!(
            matches!(d.dial, Dial::Name { ref host, port: 443, dnssec: DnssecMode::IfSigned, .. } if host == "api.example.com")
        );
        let d = decide(&policy(), dst("203.0.113.7:443"), &tls(None), None).unwrap();
        assert_eq!(d.dial, Dial::Address("203.0.113.7:443".parse().unwrap()));
    }

    #[test]
    fn explicit_proxy() {
        let proxy = Mode::ExplicitProxy;
        let api = connect("api.example.com", 443);
        let raw = connect("198.51.100.9", 443);
        let named = connect("203.0.113.7", 443);
        check(vec![
            (proxy, api.clone(), None, Ok("api"), ""),
            (
                proxy,
                api.clone(),
                Some(tls(Some("api.example.com"))),
                Ok("api"),
                "",
            ),
            (
                proxy,
                api.clone(),
                Some(tls(Some("evil.example.net"))),
                Err("connect_sni_mismatch"),
                "CONNECT to api.example.com:443 but the TLS inside names \"evil.example.net\"",
            ),
            (
                proxy,
                api.clone(),
                Some(tls(None)),
                Err("connect_sni_mismatch"),
                "no SNI",
            ),
            // Raw IP whatever the SNI.
            (
                proxy,
                raw.clone(),
                Some(tls(Some("api.example.com"))),
                Err("raw_ip_not_named"),
                "does not change that",
            ),
            (proxy, raw, None, Err("raw_ip_not_named"), ""),
            (proxy, named.clone(), Some(tls(None)), Ok("legacy"), ""),
            (
                proxy,
                named,
                Some(tls(Some("api.example.com"))),
                Err("connect_sni_mismatch"),
                "",
            ),
            // Plain HTTP through a tunnel: every request must name the CONNECT target.
            (
                proxy,
                connect("www.example.org", 80),
                Some(http(Some("www.example.org"))),
                Ok("plain"),
                "",
            ),
            (
                proxy,
                connect("www.example.org", 80),
                Some(http(Some("api.example.com"))),
                Err("host_mismatch"),
                "",
            ),
            // Absolute form.
            (
                proxy,
                absolute("www.example.org", "www.example.org"),
                None,
                Ok("plain"),
                "",
            ),
            (
                proxy,
                absolute("www.example.org", "evil.example.net"),
                None,
                Err("host_mismatch"),
                "",
            ),
            (
                proxy,
                tls(Some("api.example.com")),
                None,
                Err("not_a_proxy_request"),
                "",
            ),
        ]);
    }

    #[test]
    fn explain_offline() {
        let p = policy();
        let r = explain(&p, "api.example.com:443", None).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1.as_ref().unwrap().rule, "api");
        assert_eq!(r[1].1.as_ref().unwrap_err().reason(), "protocol_mismatch");
        let r = explain(&p, "203.0.113.7:443", Some(Protocol::Tls)).unwrap();
        assert_eq!(r[0].1.as_ref().unwrap().rule, "legacy");
        let r = explain(&p, "[2001:db8::1]:443", Some(Protocol::Tls)).unwrap();
        assert_eq!(r[0].1.as_ref().unwrap_err().reason(), "missing_sni");
        assert!(explain(&p, "api.example.com", None).is_err());
    }

    #[test]
    fn forbidden_response_names_the_reason() {
        let e = Denied::MissingSni {
            dst: "198.51.100.1:443".parse().unwrap(),
        };
        let r = String::from_utf8(e.http_response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(r.contains("X-Rampart-Deny-Reason: missing_sni\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
