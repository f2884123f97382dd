//! Turns the policy file into the matcher's types, refusing what must never load:
//! rules that admit by source address alone (S.N.10), empty lists, duplicate names, port 0.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;

use super::file::{RawInboundRule, RawOutboundRule, RawPolicy};
use super::inbound::{InboundRule, InboundSet};
use super::outbound::{OutboundRule, OutboundSet};
use super::{Policy, PolicyVersion, PortSets};
use crate::directory::valid_name;
use crate::source::{FileError, SourceFile};

struct Ctx<'a> {
    source: &'a SourceFile,
    names: HashSet<String>,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, field: String, message: String) -> FileError {
        self.source.error_at(Some(span), Some(field), message)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.source
            .error_at(Some(span.clone()), None, String::new())
            .line
            .unwrap_or(0)
    }

    /// Checks a set or rule name: valid and unique in the file, so "rule X" names one rule.
    fn name(&mut self, name: Spanned<String>, field: String) -> Result<Arc<str>, FileError> {
        let span = name.span();
        let name = name.into_inner();
        if !valid_name(&name) {
            return Err(self.err(
                span,
                field,
                format!("name `{name}` must be 1-63 characters of [a-z0-9-]"),
            ));
        }
        if !self.names.insert(name.clone()) {
            return Err(self.err(
                span,
                field,
                format!("name `{name}` is used twice: every rule set and rule needs its own name"),
            ));
        }
        Ok(name.into())
    }

    /// An optional list: absent is `None`, present must be non-empty.
    fn list<T>(
        &self,
        value: Option<Spanned<Vec<T>>>,
        field: String,
        what: &str,
    ) -> Result<Option<Vec<T>>, FileError> {
        match value {
            None => Ok(None),
            Some(v) if v.get_ref().is_empty() => Err(self.err(
                v.span(),
                field,
                format!("an empty list of {what} admits nothing; remove the key to mean any"),
            )),
            Some(v) => Ok(Some(v.into_inner())),
        }
    }

    fn ports(&self, value: Spanned<Vec<u16>>, field: String) -> Result<Vec<u16>, FileError> {
        if value.get_ref().is_empty() {
            return Err(self.err(value.span(), field, "list at least one port".into()));
        }
        if value.get_ref().contains(&0) {
            return Err(self.err(value.span(), field, "port 0 is not a port".into()));
        }
        Ok(value.into_inner())
    }
}

pub(super) fn compile(source: SourceFile) -> Result<Policy, FileError> {
    let raw: RawPolicy = source.parse()?;
    let mut cx = Ctx {
        source: &source,
        names: HashSet::new(),
    };
    let mut inbound = Vec::new();
    for (i, set) in raw.inbound.into_iter().enumerate() {
        let set_line = cx.line(&set.span());
        let set = set.into_inner();
        let f = |k: &str| format!("inbound[{i}].{k}");
        let name = cx.name(set.name, f("name"))?;
        let ports = cx.ports(set.ports, f("ports"))?;
        let mut rules = Vec::new();
        for (j, rule) in set.rules.into_iter().enumerate() {
            rules.push(inbound_rule(
                &mut cx,
                rule,
                &format!("inbound[{i}].rule[{j}]"),
            )?);
        }
        inbound.push(InboundSet {
            name,
            mode: set.mode,
            ports,
            rules,
            line: set_line,
        });
    }
    let mut outbound = Vec::new();
    for (i, set) in raw.outbound.into_iter().enumerate() {
        let set_line = cx.line(&set.span());
        let set = set.into_inner();
        let name = cx.name(set.name, format!("outbound[{i}].name"))?;
        let mut rules = Vec::new();
        for (j, rule) in set.rules.into_iter().enumerate() {
            rules.push(outbound_rule(
                &mut cx,
                rule,
                &format!("outbound[{i}].rule[{j}]"),
            )?);
        }
        outbound.push(OutboundSet {
            name,
            mode: set.mode,
            rules,
            line: set_line,
        });
    }
    let mut egress = super::egress::EgressRules {
        own: raw
            .egress
            .map(|e| (cx.line(&e.span()), e.into_inner()))
            .map(|(line, p)| (Arc::new(p), line)),
        by_service: Default::default(),
    };
    for (service, p) in raw.gateway {
        let line = cx.line(&p.span());
        if !valid_name(&service) {
            return Err(cx.err(
                p.span(),
                format!("gateway.{service}"),
                format!("`{service}` is not a service name (1-63 characters of [a-z0-9-])"),
            ));
        }
        egress
            .by_service
            .insert(service, (Arc::new(p.into_inner()), line));
    }
    let mut by_port: HashMap<u16, PortSets> = HashMap::new();
    for (i, set) in inbound.iter().enumerate() {
        for &port in &set.ports {
            let entry = by_port.entry(port).or_default();
            let list = match set.mode {
                super::Mode::Enforce => &mut entry.enforce,
                super::Mode::Audit => &mut entry.audit,
            };
            if !list.contains(&i) {
                list.push(i);
            }
            entry.reads_http |= set
                .rules
                .iter()
                .any(|rule| rule.methods.is_some() || rule.paths.is_some());
        }
    }
    let version = Arc::new(PolicyVersion {
        file: source.path().display().to_string(),
        version: source.version().to_string(),
    });
    Ok(Policy {
        source,
        version,
        inbound,
        by_port,
        outbound,
        egress: Arc::new(egress),
    })
}

fn inbound_rule(
    cx: &mut Ctx<'_>,
    rule: Spanned<RawInboundRule>,
    at: &str,
) -> Result<InboundRule, FileError> {
    let span = rule.span();
    let line = cx.line(&span);
    let rule = rule.into_inner();
    let f = |k: &str| format!("{at}.{k}");
    let name = cx.name(rule.name, f("name"))?;
    let sources = cx.list(rule.sources, f("sources"), "source networks")?;
    let callers = match rule.callers {
        Some(c) if !c.get_ref().is_empty() => c.into_inner(),
        Some(c) if sources.is_some() => {
            return Err(cx.err(c.span(), f("callers"), s_n_10(&name)));
        }
        None if sources.is_some() => return Err(cx.err(span, f("callers"), s_n_10(&name))),
        Some(c) => {
            return Err(cx.err(
                c.span(),
                f("callers"),
                format!("rule {name} names no callers: an empty list admits nobody"),
            ))
        }
        None => {
            return Err(cx.err(
                span,
                f("callers"),
                format!(
                    "rule {name} must name its callers by SPIFFE ID (callers = [\"spiffe://…\"])"
                ),
            ))
        }
    };
    let ports = match rule.ports {
        Some(p) => Some(cx.ports(p, f("ports"))?),
        None => None,
    };
    Ok(InboundRule {
        name,
        line,
        callers,
        ports,
        methods: cx.list(rule.methods, f("methods"), "methods")?,
        paths: cx.list(rule.paths, f("paths"), "paths")?,
        sources,
    })
}

fn s_n_10(name: &str) -> String {
    format!(
        "rule {name} admits by source address alone; addresses may only narrow a rule that names callers by SPIFFE ID (control S.N.10: IP allowlists are never the only protection)"
    )
}

fn outbound_rule(
    cx: &mut Ctx<'_>,
    rule: Spanned<RawOutboundRule>,
    at: &str,
) -> Result<OutboundRule, FileError> {
    let span = rule.span();
    let line = cx.line(&span);
    let rule = rule.into_inner();
    let f = |k: &str| format!("{at}.{k}");
    let name = cx.name(rule.name, f("name"))?;
    let services = cx.list(rule.services, f("services"), "services")?;
    let identities = cx.list(rule.identities, f("identities"), "identities")?;
    if services.is_none() && identities.is_none() {
        return Err(cx.err(
            span,
            f("services"),
            format!("rule {name} must name services from the directory or identities"),
        ));
    }
    let services = services.unwrap_or_default();
    for s in &services {
        if !valid_name(s) {
            return Err(cx.err(
                span,
                f("services"),
                format!("`{s}` is not a service name (1-63 characters of [a-z0-9-])"),
            ));
        }
    }
    let ports = match rule.ports {
        Some(p) => Some(cx.ports(p, f("ports"))?),
        None => None,
    };
    Ok(OutboundRule {
        name,
        line,
        services,
        identities: identities.unwrap_or_default(),
        ports,
    })
}
