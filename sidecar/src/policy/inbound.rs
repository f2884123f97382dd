//! Inbound rules: who may call this workload, on which ports, with which methods and paths.

use std::sync::Arc;

use rampart_tls::spiffe::SpiffeId;

use super::decision::DenyReason;
use super::file::Mode;
use super::pattern::{IdPattern, Method, PathPattern, SourceNet};
use super::{judge_sets, InboundRequest, Judgement};

#[derive(Debug, Clone)]
pub(crate) struct InboundSet {
    pub name: Arc<str>,
    pub mode: Mode,
    pub ports: Vec<u16>,
    pub rules: Vec<InboundRule>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct InboundRule {
    pub name: Arc<str>,
    pub line: usize,
    pub callers: Vec<IdPattern>,
    /// `None`: every port of the set.
    pub ports: Option<Vec<u16>>,
    pub methods: Option<Vec<Method>>,
    pub paths: Option<Vec<PathPattern>>,
    pub sources: Option<Vec<SourceNet>>,
}

impl InboundRule {
    /// `Ok` when the rule admits; else how many dimensions matched and the first that failed.
    fn check(
        &self,
        caller: &SpiffeId,
        req: &InboundRequest<'_>,
    ) -> Result<(), (usize, DenyReason)> {
        let mut matched = 0;
        let mut first_miss: Option<DenyReason> = None;
        let mut note = |ok: bool, miss: &dyn Fn() -> DenyReason| {
            if ok {
                matched += 1;
            } else if first_miss.is_none() {
                first_miss = Some(miss());
            }
        };
        note(self.callers.iter().any(|p| p.matches(caller)), &|| {
            DenyReason::Caller {
                caller: caller.to_string(),
                allowed: self.callers.iter().map(|p| p.to_string()).collect(),
            }
        });
        if let Some(ports) = &self.ports {
            note(ports.contains(&req.port), &|| DenyReason::Port {
                port: req.port,
                allowed: ports.clone(),
            });
        }
        if let Some(sources) = &self.sources {
            let ok = req
                .source
                .is_some_and(|s| sources.iter().any(|n| n.contains(&s)));
            note(ok, &|| DenyReason::Source {
                source: req.source,
                allowed: sources.iter().map(|n| n.to_string()).collect(),
            });
        }
        if self.methods.is_some() || self.paths.is_some() {
            match req.http {
                None => note(false, &|| DenyReason::NotHttp),
                Some(http) => {
                    if let Some(methods) = &self.methods {
                        note(methods.iter().any(|m| m.as_str() == http.method), &|| {
                            DenyReason::Method {
                                method: http.method.to_string(),
                                allowed: methods.iter().map(|m| m.to_string()).collect(),
                            }
                        });
                    }
                    if let Some(paths) = &self.paths {
                        note(paths.iter().any(|p| p.matches(http.path)), &|| {
                            DenyReason::Path {
                                path: http.path.to_string(),
                                allowed: paths.iter().map(|p| p.to_string()).collect(),
                            }
                        });
                    }
                }
            }
        }
        match first_miss {
            None => Ok(()),
            Some(reason) => Err((matched, reason)),
        }
    }
}

/// Judges inbound traffic against the given sets (all of them govern the request's port).
pub(crate) fn judge<'s>(
    sets: impl Iterator<Item = &'s InboundSet>,
    caller: &SpiffeId,
    req: &InboundRequest<'_>,
) -> Judgement {
    judge_sets(
        sets,
        |set| (&set.name, set.mode, &set.rules[..]),
        |rule| (&rule.name, rule.line),
        |rule| rule.check(caller, req),
        // Sets govern the port but hold no rules: nobody is admitted.
        || DenyReason::Caller {
            caller: caller.to_string(),
            allowed: Vec::new(),
        },
    )
}
