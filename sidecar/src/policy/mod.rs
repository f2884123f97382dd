//! The policy engine: the policy file operators edit, compiled once at load into rules that
//! decide inbound and outbound traffic, deny by default, and explain every decision.
//!
//! Model (docs/sidecar.md has the reference):
//! - Inbound rule sets govern app ports. A port no set governs admits nobody.
//! - A set's rules are allow rules; the first rule that matches admits.
//! - When enforce sets govern the port, they decide. When only audit sets govern it, the
//!   traffic passes and what the audit sets would decide is logged and counted. When both
//!   govern it, the enforce sets decide and the audit verdict rides along (a dry run of a
//!   tighter policy).
//! - Outbound rule sets govern every destination of the mesh directory; a destination outside
//!   the directory is egress, decided by the `[egress]` section (`egress`, rampart-egress's
//!   policy type); no section, no egress.
//! - A denial names the closest rule (the one that matched on the most dimensions, first in
//!   the file on a tie) and the first dimension it failed on.
//! - A caller without a client certificate is denied even under audit: audit dry-runs rules,
//!   never mutual TLS.

mod compile;
pub mod decision;
pub mod egress;
pub mod explain_egress;
pub mod file;
mod inbound;
pub mod lint;
mod outbound;
pub mod pattern;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rampart_tls::spiffe::SpiffeId;

pub use decision::{
    AuditOutcome, Decision, DenyReason, Direction, PolicyVersion, RuleRef, Verdict,
};
pub use file::Mode;

use crate::directory::Directory;
use crate::source::{FileError, SourceFile};
use inbound::InboundSet;
use outbound::OutboundSet;

/// An HTTP request's method and path, for rules on HTTP ports.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, as sent (compared case-sensitively, as RFC 9110 says).
    pub method: &'a str,
    /// The path of the request target, query excluded.
    pub path: &'a str,
}

/// Traffic arriving at this workload.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    /// The caller's verified identity; `None` when it sent no client certificate.
    pub caller: Option<&'a SpiffeId>,
    /// The app port it is for.
    pub port: u16,
    /// The caller's address, when known.
    pub source: Option<IpAddr>,
    /// The request, on HTTP ports; `None` on TCP ports.
    pub http: Option<HttpRequest<'a>>,
}

/// Where this workload wants to go.
#[derive(Debug, Clone, Copy)]
pub enum OutboundTarget<'a> {
    /// A service of the mesh directory and one of its ports.
    Service {
        /// The service name.
        name: &'a str,
        /// Its expected identity.
        identity: &'a SpiffeId,
        /// The service port.
        port: u16,
    },
    /// Something outside the directory (egress).
    Outside {
        /// What was dialled, for the explanation.
        destination: &'a str,
    },
}

/// A compiled policy file.
#[derive(Debug, Clone)]
pub struct Policy {
    source: SourceFile,
    version: Arc<PolicyVersion>,
    inbound: Vec<InboundSet>,
    /// Port → indexes of enforce sets and of audit sets governing it.
    by_port: HashMap<u16, PortSets>,
    outbound: Vec<OutboundSet>,
    egress: Arc<egress::EgressRules>,
}

#[derive(Debug, Clone, Default)]
struct PortSets {
    enforce: Vec<usize>,
    audit: Vec<usize>,
    /// Whether a rule of these sets names methods or paths (`Policy::inbound_reads_http`),
    /// known once the policy is compiled.
    reads_http: bool,
}

impl Policy {
    /// Reads and compiles a policy file.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::from_source(SourceFile::read(path)?)
    }

    /// Compiles a policy file already read.
    pub fn from_source(source: SourceFile) -> Result<Self, FileError> {
        compile::compile(source)
    }

    /// An empty policy: everything denied.
    pub fn deny_all() -> Self {
        let source = SourceFile::from_text(Path::new("<empty policy>"), String::new());
        compile::compile(source).unwrap_or_else(|_| unreachable_empty())
    }

    /// The file it came from.
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// The policy file and its version.
    pub fn version(&self) -> &Arc<PolicyVersion> {
        &self.version
    }

    /// Decides traffic arriving at this workload.
    pub fn inbound(&self, req: &InboundRequest<'_>) -> Decision {
        let decision = |verdict, rule, reason, audit| Decision {
            direction: Direction::Inbound,
            verdict,
            policy: self.version.clone(),
            rule,
            reason,
            audit,
        };
        let Some(caller) = req.caller else {
            return decision(
                Verdict::Deny,
                None,
                Some(DenyReason::NoClientIdentity),
                None,
            );
        };
        let Some(sets) = self.by_port.get(&req.port) else {
            return decision(
                Verdict::Deny,
                None,
                Some(DenyReason::NoRuleForPort { port: req.port }),
                None,
            );
        };
        let judge = |indexes: &[usize]| {
            inbound::judge(
                indexes.iter().filter_map(|&i| self.inbound.get(i)),
                caller,
                req,
            )
        };
        if !sets.enforce.is_empty() {
            let (verdict, rule, reason) = judge(&sets.enforce).into_parts(Verdict::Deny);
            let audit = (!sets.audit.is_empty()).then(|| {
                let (verdict, rule, reason) = judge(&sets.audit).into_parts(Verdict::AuditDeny);
                AuditOutcome {
                    verdict,
                    rule,
                    reason,
                }
            });
            decision(verdict, rule, reason, audit)
        } else {
            let (verdict, rule, reason) = judge(&sets.audit).into_parts(Verdict::AuditDeny);
            decision(verdict, rule, reason, None)
        }
    }

    /// Whether inbound decisions on `port` read the request's method or path: `false` when no
    /// rule of the sets governing the port names methods or paths, so that the decision made
    /// for one request of a connection (caller, port and source fixed) holds for all of them.
    pub fn inbound_reads_http(&self, port: u16) -> bool {
        self.by_port.get(&port).is_some_and(|sets| sets.reads_http)
    }

    /// Decides a connection this workload makes.
    pub fn outbound(&self, target: &OutboundTarget<'_>) -> Decision {
        let decision = |verdict, rule, reason, audit| Decision {
            direction: Direction::Outbound,
            verdict,
            policy: self.version.clone(),
            rule,
            reason,
            audit,
        };
        let (name, identity, port) = match *target {
            OutboundTarget::Outside { destination } => {
                return decision(
                    Verdict::Deny,
                    None,
                    Some(DenyReason::UnknownDestination {
                        destination: destination.to_string(),
                    }),
                    None,
                )
            }
            OutboundTarget::Service {
                name,
                identity,
                port,
            } => (name, identity, port),
        };
        let judge = |mode: Mode| {
            let sets: Vec<&OutboundSet> = self.outbound.iter().filter(|s| s.mode == mode).collect();
            (!sets.is_empty()).then(|| outbound::judge(sets.into_iter(), name, identity, port))
        };
        match (judge(Mode::Enforce), judge(Mode::Audit)) {
            (Some(enforced), audit) => {
                let (verdict, rule, reason) = enforced.into_parts(Verdict::Deny);
                let audit = audit.map(|a| {
                    let (verdict, rule, reason) = a.into_parts(Verdict::AuditDeny);
                    AuditOutcome {
                        verdict,
                        rule,
                        reason,
                    }
                });
                decision(verdict, rule, reason, audit)
            }
            (None, Some(audit)) => {
                let (verdict, rule, reason) = audit.into_parts(Verdict::AuditDeny);
                decision(verdict, rule, reason, None)
            }
            (None, None) => decision(Verdict::Deny, None, Some(DenyReason::NoOutboundRules), None),
        }
    }

    /// Decides a connection to a directory service by name and port (explicit listeners,
    /// `policy explain --outbound`).
    pub fn outbound_to(&self, directory: &Directory, service: &str, port: u16) -> Decision {
        match directory.service(service) {
            Some(s) => self.outbound(&OutboundTarget::Service {
                name: &s.name,
                identity: &s.identity,
                port,
            }),
            None => self.outbound(&OutboundTarget::Outside {
                destination: &format!("{service}:{port}"),
            }),
        }
    }

    /// The ports some inbound rule set governs.
    pub fn inbound_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.by_port.keys().copied()
    }
}

/// The result of judging traffic against some rule sets.
pub(crate) enum Judgement {
    Admitted(RuleRef),
    Refused {
        closest: Option<RuleRef>,
        reason: DenyReason,
    },
}

impl Judgement {
    fn into_parts(self, refusal: Verdict) -> (Verdict, Option<RuleRef>, Option<DenyReason>) {
        match self {
            Judgement::Admitted(rule) => (Verdict::Allow, Some(rule), None),
            Judgement::Refused { closest, reason } => (refusal, closest, Some(reason)),
        }
    }
}

/// Judges against rule sets in file order: the first rule that admits, else the closest miss
/// (`empty`: the reason when the sets hold no rule at all). `rules` gives a set's name, mode
/// and rules; `rule` a rule's name and line; `check` matches one rule (`Err`: how many
/// dimensions matched and the first that failed).
pub(crate) fn judge_sets<'s, S: 's, R: 's>(
    sets: impl Iterator<Item = &'s S>,
    rules: impl Fn(&'s S) -> (&'s Arc<str>, Mode, &'s [R]),
    rule: impl Fn(&R) -> (&Arc<str>, usize),
    check: impl Fn(&R) -> Result<(), (usize, DenyReason)>,
    empty: impl FnOnce() -> DenyReason,
) -> Judgement {
    let mut misses = Vec::new();
    for set in sets {
        let (set_name, mode, set_rules) = rules(set);
        for r in set_rules {
            let (name, line) = rule(r);
            let at = RuleRef {
                set: set_name.clone(),
                rule: name.clone(),
                mode,
                line,
            };
            match check(r) {
                Ok(()) => return Judgement::Admitted(at),
                Err((score, reason)) => misses.push((score, at, reason)),
            }
        }
    }
    match closest(misses.into_iter()) {
        Some((rule, reason)) => Judgement::Refused {
            closest: Some(rule),
            reason,
        },
        None => Judgement::Refused {
            closest: None,
            reason: empty(),
        },
    }
}

/// Picks the closest of several near misses: the most dimensions matched, first on a tie.
pub(crate) fn closest(
    misses: impl Iterator<Item = (usize, RuleRef, DenyReason)>,
) -> Option<(RuleRef, DenyReason)> {
    let mut best: Option<(usize, RuleRef, DenyReason)> = None;
    for miss in misses {
        if best.as_ref().is_none_or(|b| miss.0 > b.0) {
            best = Some(miss);
        }
    }
    best.map(|(_, rule, reason)| (rule, reason))
}

#[cold]
fn unreachable_empty() -> Policy {
    // The empty text always compiles; this only satisfies the type checker without a panic.
    let source = SourceFile::from_text(Path::new("<empty policy>"), String::new());
    Policy {
        version: Arc::new(PolicyVersion {
            file: "<empty policy>".into(),
            version: source.version().to_string(),
        }),
        source,
        inbound: Vec::new(),
        by_port: HashMap::new(),
        outbound: Vec::new(),
        egress: Default::default(),
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod tests;
