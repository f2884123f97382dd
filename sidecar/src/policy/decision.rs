//! The answer of the policy engine, which explains itself: the verdict, the policy file and
//! its version, the rule that admitted the traffic, or for a denial the closest rule and the
//! exact reason it did not match ("rule frontend-reads: method POST not in [GET]").

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::file::Mode;

/// Which side of the sidecar decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A peer calling this workload.
    Inbound,
    /// This workload calling a peer.
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What happens to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Admitted by a rule.
    Allow,
    /// Refused.
    Deny,
    /// Would be refused, but the deciding rule set is in audit mode: the traffic passes and the
    /// would-be denial is logged and counted.
    AuditDeny,
}

impl Verdict {
    /// `allow` / `deny` / `audit_deny` (the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::AuditDeny => "audit_deny",
        }
    }

    /// True when the traffic may pass.
    pub fn passes(self) -> bool {
        !matches!(self, Verdict::Deny)
    }
}

/// The policy file a decision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyVersion {
    /// Path of the policy file.
    pub file: String,
    /// `sha256:` and 16 hex digits of its text.
    pub version: String,
}

/// A rule, named for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The rule set's name.
    pub set: Arc<str>,
    /// The rule's name.
    pub rule: Arc<str>,
    /// The rule set's mode.
    pub mode: Mode,
    /// The line of the rule in the policy file.
    pub line: usize,
}

/// Why traffic was (or would be) refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyReason {
    /// The caller presented no client certificate, so it has no identity to admit.
    NoClientIdentity,
    /// No inbound rule set governs this port: default deny.
    NoRuleForPort {
        /// The port.
        port: u16,
    },
    /// No outbound rule set exists: default deny.
    NoOutboundRules,
    /// The destination is not in the mesh directory (egress is a separate path).
    UnknownDestination {
        /// What the app dialled.
        destination: String,
    },
    /// The caller's identity is not among the rule's callers.
    Caller {
        /// The caller.
        caller: String,
        /// The rule's caller patterns.
        allowed: Vec<String>,
    },
    /// The port is not among the rule's ports.
    Port {
        /// The port.
        port: u16,
        /// The rule's ports.
        allowed: Vec<u16>,
    },
    /// The source address is not in the rule's networks.
    Source {
        /// The source address, when known.
        source: Option<IpAddr>,
        /// The rule's networks.
        allowed: Vec<String>,
    },
    /// The rule names HTTP methods or paths but the traffic is plain TCP.
    NotHttp,
    /// The HTTP method is not among the rule's methods.
    Method {
        /// The request's method.
        method: String,
        /// The rule's methods.
        allowed: Vec<String>,
    },
    /// The HTTP path matches none of the rule's patterns.
    Path {
        /// The request's path.
        path: String,
        /// The rule's patterns.
        allowed: Vec<String>,
    },
    /// The destination service is not among the rule's services or identities.
    Destination {
        /// The destination service.
        service: String,
        /// Its expected identity.
        identity: String,
        /// The rule's services and identity patterns.
        allowed: Vec<String>,
    },
}

impl DenyReason {
    /// A short stable label for metrics (`denials_total{reason=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            DenyReason::NoClientIdentity => "no_client_identity",
            DenyReason::NoRuleForPort { .. } => "no_rule_for_port",
            DenyReason::NoOutboundRules => "no_outbound_rules",
            DenyReason::UnknownDestination { .. } => "unknown_destination",
            DenyReason::Caller { .. } => "caller",
            DenyReason::Port { .. } => "port",
            DenyReason::Source { .. } => "source",
            DenyReason::NotHttp => "not_http",
            DenyReason::Method { .. } => "method",
            DenyReason::Path { .. } => "path",
            DenyReason::Destination { .. } => "destination",
        }
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoClientIdentity => {
                f.write_str("no client certificate: the caller presented no identity")
            }
            DenyReason::NoRuleForPort { port } => {
                write!(f, "no inbound rule set governs port {port} (default deny)")
            }
            DenyReason::NoOutboundRules => f.write_str("no outbound rule set (default deny)"),
            DenyReason::UnknownDestination { destination } => write!(
                f,
                "destination {destination} is not in the mesh directory (egress is denied by default)"
            ),
            DenyReason::Caller { caller, allowed } => {
                write!(f, "caller {caller} not in {}", list(allowed))
            }
            DenyReason::Port { port, allowed } => write!(f, "port {port} not in {}", list(allowed)),
            DenyReason::Source { source, allowed } => match source {
                Some(s) => write!(f, "source {s} not in {}", list(allowed)),
                None => write!(f, "source address unknown, rule needs {}", list(allowed)),
            },
            DenyReason::NotHttp => {
                f.write_str("rule names HTTP methods or paths but the traffic is plain TCP")
            }
            DenyReason::Method { method, allowed } => {
                write!(f, "method {method} not in {}", list(allowed))
            }
            DenyReason::Path { path, allowed } => {
                write!(f, "path {path} matches none of {}", list(allowed))
            }
            DenyReason::Destination {
                service,
                identity,
                allowed,
            } => write!(
                f,
                "destination {service} ({identity}) not in {}",
                list(allowed)
            ),
        }
    }
}

/// What an audit-mode rule set would have decided, recorded beside an enforced decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditOutcome {
    /// `allow` or `audit_deny`.
    pub verdict: Verdict,
    /// The admitting rule, or the closest one.
    pub rule: Option<RuleRef>,
    /// Why it would deny.
    pub reason: Option<DenyReason>,
}

/// A policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Inbound or outbound.
    pub direction: Direction,
    /// What happens.
    pub verdict: Verdict,
    /// The policy file and version that decided.
    pub policy: Arc<PolicyVersion>,
    /// For an allow: the rule that admitted. For a denial: the closest rule, if any.
    pub rule: Option<RuleRef>,
    /// For a denial or audit denial: why.
    pub reason: Option<DenyReason>,
    /// When enforced sets decided and audit sets also govern the traffic: their verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditOutcome>,
}

impl Decision {
    /// The explanation in one line: `deny: rule frontend-reads: method POST not in [GET]
    /// (policy /etc/rampart/policy.toml sha256:…)`.
    pub fn explain(&self) -> String {
        self.to_string()
    }

    /// The reason alone, prefixed with the closest rule (`rule frontend-reads: method …`).
    pub fn reason_text(&self) -> Option<String> {
        let reason = self.reason.as_ref()?;
        Some(match &self.rule {
            Some(rule) => format!("rule {}: {reason}", rule.rule),
            None => reason.to_string(),
        })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.direction.as_str(), self.verdict.as_str())?;
        match (&self.reason_text(), &self.rule) {
            (Some(reason), _) => f.write_str(reason)?,
            (None, Some(rule)) => write!(f, "admitted by rule {} (set {})", rule.rule, rule.set)?,
            (None, None) => f.write_str("admitted")?,
        }
        if self.verdict == Verdict::AuditDeny {
            f.write_str(" [audit mode: traffic passes]")?;
        }
        write!(f, " (policy {} {})", self.policy.file, self.policy.version)?;
        if let Some(audit) = &self.audit {
            if audit.verdict == Verdict::AuditDeny {
                if let (Some(rule), Some(reason)) = (&audit.rule, &audit.reason) {
                    write!(
                        f,
                        "; audit set {} would deny: rule {}: {reason}",
                        rule.set, rule.rule
                    )?;
                } else if let Some(reason) = &audit.reason {
                    write!(f, "; audit would deny: {reason}")?;
                }
            }
        }
        Ok(())
    }
}
