//! Warnings for `rampart-sidecar check`: rules that can never match, and rules that admit the
//! whole trust domain. A warning does not stop a load; an error does.

use std::collections::HashSet;
use std::fmt;

use rampart_tls::spiffe::TrustDomain;

use super::Policy;
use crate::config::{Config, Protocol};
use crate::directory::Directory;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Line in the policy file (`None` for findings about the config or directory).
    pub line: Option<usize>,
    /// The rule or set concerned.
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// What the policy is checked against: the sidecar's config and the directory, when known.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// The sidecar's config (trust domain, app ports and their protocols).
    pub config: Option<&'a Config>,
    /// The mesh directory.
    pub directory: Option<&'a Directory>,
}

/// Lists the policy's rules that can never match or that admit too much.
pub fn lint(policy: &Policy, cx: Context<'_>) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |line: usize, subject: String, message: String| {
        out.push(Warning {
            line: (line > 0).then_some(line),
            subject,
            message,
        })
    };
    let trust_domain: Option<&TrustDomain> = cx.config.map(|c| &c.trust_domain);
    let declared: Option<HashSet<u16>> = cx
        .config
        .map(|c| c.inbound.iter().map(|p| p.port).collect());

    for set in &policy.inbound {
        if set.rules.is_empty() {
            warn(
                set.line,
                format!("set {}", set.name),
                "has no rules: it admits nobody on its ports".into(),
            );
        }
        if let Some(declared) = &declared {
            for port in set.ports.iter().filter(|p| !declared.contains(p)) {
                warn(
                    set.line,
                    format!("set {}", set.name),
                    format!("port {port} is not an inbound port of the sidecar config: its rules never match there"),
                );
            }
        }
        for rule in &set.rules {
            let subject = format!("rule {}", rule.name);
            for c in &rule.callers {
                if c.is_whole_trust_domain() {
                    warn(
                        rule.line,
                        subject.clone(),
                        format!("caller {c} admits every workload of the trust domain"),
                    );
                }
                if let Some(td) = trust_domain {
                    if c.trust_domain() != td {
                        warn(
                            rule.line,
                            subject.clone(),
                            format!("caller {c} is outside the trust domain {td}: such callers are refused at the TLS layer, so it never matches"),
                        );
                    }
                }
            }
            if let Some(ports) = &rule.ports {
                let outside: Vec<u16> = ports
                    .iter()
                    .copied()
                    .filter(|p| !set.ports.contains(p))
                    .collect();
                if outside.len() == ports.len() {
                    warn(
                        rule.line,
                        subject.clone(),
                        format!("ports {outside:?} are all outside its set's ports {:?}: it never matches", set.ports),
                    );
                } else if !outside.is_empty() {
                    warn(
                        rule.line,
                        subject.clone(),
                        format!(
                            "ports {outside:?} are outside its set's ports {:?} and never match",
                            set.ports
                        ),
                    );
                }
            }
            if rule.methods.is_some() || rule.paths.is_some() {
                if let Some(config) = cx.config {
                    let ports: Vec<u16> = rule.ports.clone().unwrap_or_else(|| set.ports.clone());
                    let all_tcp = ports.iter().all(|p| {
                        config
                            .inbound_port(*p)
                            .is_none_or(|c| c.protocol == Protocol::Tcp)
                    });
                    if all_tcp {
                        warn(
                            rule.line,
                            subject.clone(),
                            format!("names HTTP methods or paths but its ports {ports:?} are not HTTP ports: it never matches"),
                        );
                    }
                }
            }
        }
    }
    for set in &policy.outbound {
        if set.rules.is_empty() {
            warn(
                set.line,
                format!("set {}", set.name),
                "has no rules: it admits no destination".into(),
            );
        }
        for rule in &set.rules {
            let subject = format!("rule {}", rule.name);
            for id in &rule.identities {
                if id.is_whole_trust_domain() {
                    warn(
                        rule.line,
                        subject.clone(),
                        format!("destination {id} admits every service of the trust domain"),
                    );
                }
            }
            let Some(directory) = cx.directory else {
                continue;
            };
            let mut any = false;
            for name in &rule.services {
                match directory.service(name) {
                    None => warn(
                        rule.line,
                        subject.clone(),
                        format!(
                            "service `{name}` is not in the directory {}",
                            directory.source().path().display()
                        ),
                    ),
                    Some(s) => {
                        let reachable = rule
                            .ports
                            .as_ref()
                            .is_none_or(|ports| ports.iter().any(|p| s.address_for(*p).is_some()));
                        if reachable {
                            any = true;
                        } else {
                            warn(
                                rule.line,
                                subject.clone(),
                                format!(
                                    "service `{name}` has none of the ports {:?} in the directory",
                                    rule.ports.clone().unwrap_or_default()
                                ),
                            );
                        }
                    }
                }
            }
            for id in &rule.identities {
                if directory.services().iter().any(|s| id.matches(&s.identity)) {
                    any = true;
                } else {
                    warn(
                        rule.line,
                        subject.clone(),
                        format!("identity {id} matches no service of the directory"),
                    );
                }
            }
            if !any {
                warn(
                    rule.line,
                    subject.clone(),
                    "matches no destination of the directory: it never matches".into(),
                );
            }
        }
    }
    policy.egress.lint(cx.config, cx.directory, &mut warn);
    if let (Some(config), Some(directory)) = (cx.config, cx.directory) {
        match directory.service(&config.service) {
            None => warn(
                0,
                format!("service {}", config.service),
                format!(
                    "this sidecar's service is not in the directory {}",
                    directory.source().path().display()
                ),
            ),
            Some(s) if !s.identity.is_member_of(&config.trust_domain) => warn(
                s.line,
                format!("service {}", s.name),
                format!(
                    "identity {} is outside the trust domain {}",
                    s.identity, config.trust_domain
                ),
            ),
            Some(_) => {}
        }
        for l in &config.outbound {
            let ok = directory
                .service(&l.service)
                .is_some_and(|s| s.address_for(l.port).is_some());
            if !ok {
                warn(
                    0,
                    format!("outbound listener {}", l.listen),
                    format!(
                        "{}:{} is not in the directory: every connection to it will be denied",
                        l.service, l.port
                    ),
                );
            }
        }
    }
    out
}
