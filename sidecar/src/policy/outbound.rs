//! Outbound rules: which directory services (or identities) this workload may call, on which
//! ports.

use std::sync::Arc;

use rampart_tls::spiffe::SpiffeId;

use super::decision::DenyReason;
use super::file::Mode;
use super::pattern::IdPattern;
use super::{judge_sets, Judgement};

#[derive(Debug, Clone)]
pub(crate) struct OutboundSet {
    pub name: Arc<str>,
    pub mode: Mode,
    pub rules: Vec<OutboundRule>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct OutboundRule {
    pub name: Arc<str>,
    pub line: usize,
    pub services: Vec<String>,
    pub identities: Vec<IdPattern>,
    pub ports: Option<Vec<u16>>,
}

impl OutboundRule {
    fn check(
        &self,
        service: &str,
        identity: &SpiffeId,
        port: u16,
    ) -> Result<(), (usize, DenyReason)> {
        let dest_ok = self.services.iter().any(|s| s == service)
            || self.identities.iter().any(|p| p.matches(identity));
        let port_ok = self.ports.as_ref().is_none_or(|p| p.contains(&port));
        if !dest_ok {
            let mut allowed: Vec<String> = self.services.clone();
            allowed.extend(self.identities.iter().map(|p| p.to_string()));
            return Err((
                usize::from(port_ok),
                DenyReason::Destination {
                    service: service.to_string(),
                    identity: identity.to_string(),
                    allowed,
                },
            ));
        }
        match &self.ports {
            Some(ports) if !port_ok => Err((
                1,
                DenyReason::Port {
                    port,
                    allowed: ports.clone(),
                },
            )),
            _ => Ok(()),
        }
    }
}

/// Judges a connection to `service` (expected `identity`) on `port`.
pub(crate) fn judge<'s>(
    sets: impl Iterator<Item = &'s OutboundSet>,
    service: &str,
    identity: &SpiffeId,
    port: u16,
) -> Judgement {
    judge_sets(
        sets,
        |set| (&set.name, set.mode, &set.rules[..]),
        |rule| (&rule.name, rule.line),
        |rule| rule.check(service, identity, port),
        || DenyReason::NoOutboundRules,
    )
}
