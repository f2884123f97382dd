//! Per-request inspection: extract fields, normalize once per chain, scan
//! each group once, score and explain.

use super::compile::{Compiled, Group};
use super::RuleSet;
use crate::extract::{self, Class, Field};
use crate::policy::Policy;
use crate::request::Request;
use crate::transform::apply_chain;
use crate::verdict::{safe_fragment, RuleMatch, Verdict};
use regex_automata::{Input, PatternSet};
use std::borrow::Cow;

/// Matches listed per verdict; scoring continues past it.
const MAX_LISTED: usize = 64;

impl RuleSet {
    /// Decides for one request: every matching rule, the score, and whether
    /// the policy would block it.
    pub fn inspect(&self, req: &Request<'_>, policy: &Policy) -> Verdict {
        let fields = extract::extract(req, &policy.limits);
        let mut st = State {
            verdict: Verdict {
                truncated: fields.truncated,
                ..Verdict::default()
            },
            scored: Vec::new(),
        };
        let c = &self.compiled;
        let mut cache: Vec<Option<Cow<'_, [u8]>>> = Vec::new();
        for field in &fields.list {
            if skip_fast(field) {
                continue;
            }
            cache.clear();
            cache.resize_with(c.chains.len(), || None);
            for &gi in &c.by_class[field.class.index()] {
                run_group(
                    c,
                    &c.groups[gi],
                    field,
                    &mut cache,
                    policy,
                    req.path,
                    &mut st,
                );
            }
            if field.class == Class::Arg && field.source == "args" {
                for &gi in &c.by_class[Class::QueryArg.index()] {
                    run_group(
                        c,
                        &c.groups[gi],
                        field,
                        &mut cache,
                        policy,
                        req.path,
                        &mut st,
                    );
                }
            }
            if field.class == Class::Header && !c.by_header.is_empty() {
                if let Some(gs) = c.by_header.get(field.name.as_ref()) {
                    for &gi in gs {
                        run_group(
                            c,
                            &c.groups[gi],
                            field,
                            &mut cache,
                            policy,
                            req.path,
                            &mut st,
                        );
                    }
                }
            }
        }
        let mut v = st.verdict;
        v.block = v.score >= policy.threshold;
        v
    }
}

struct State {
    verdict: Verdict,
    /// Rules that already scored in this request (each scores once).
    scored: Vec<usize>,
}

/// Plain tokens (ids, numbers, words) cannot carry an attack
/// in a parameter or cookie: skip all rules for them.
fn skip_fast(f: &Field<'_>) -> bool {
    if f.class == Class::RawBody {
        return is_binary(&f.value);
    }
    matches!(
        f.class,
        Class::Arg | Class::ArgName | Class::Cookie | Class::CookieName
    ) && f
        .value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// A body that is mostly not text (images, protobuf, compressed data) is
/// not matched against text signatures.
fn is_binary(v: &[u8]) -> bool {
    let sample = &v[..v.len().min(512)];
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    control * 20 > sample.len()
}

fn run_group<'v>(
    c: &Compiled,
    g: &Group,
    field: &'v Field<'_>,
    cache: &mut [Option<Cow<'v, [u8]>>],
    policy: &Policy,
    path: &str,
    st: &mut State,
) {
    let value: &[u8] =
        cache[g.chain].get_or_insert_with(|| apply_chain(&c.chains[g.chain], &field.value));
    if value.is_empty() {
        return;
    }
    if let Some((ac, set)) = &g.filtered {
        if ac.is_match(value) {
            scan_regexes(c, set, value, field, policy, path, st);
        }
    }
    if let Some(set) = &g.unfiltered {
        scan_regexes(c, set, value, field, policy, path, st);
    }
    if let Some(ph) = &g.phrases {
        for m in ph.ac.find_overlapping_iter(value) {
            let ri = ph.rules[m.pattern().as_usize()];
            record(c, ri, &value[m.start()..m.end()], field, policy, path, st);
        }
    }
    for (det, ri) in &g.detectors {
        if !applies(c, *ri, policy) {
            continue;
        }
        if let Some(span) = det.detect(value) {
            record(c, *ri, &value[span], field, policy, path, st);
        }
    }
}

fn applies(c: &Compiled, ri: usize, policy: &Policy) -> bool {
    c.rules[ri].paranoia <= policy.paranoia
}

fn scan_regexes(
    c: &Compiled,
    set: &super::compile::RegexSet,
    value: &[u8],
    field: &Field<'_>,
    policy: &Policy,
    path: &str,
    st: &mut State,
) {
    let mut pats = PatternSet::new(set.regex.pattern_len());
    set.regex
        .which_overlapping_matches(&Input::new(value), &mut pats);
    for pid in pats.iter() {
        let ri = set.rules[pid.as_usize()];
        let rule = &c.rules[ri];
        let frag = rule
            .finder
            .get_or_init(|| {
                rule.pattern
                    .as_deref()
                    .and_then(|p| super::compile::single_regex(p).ok())
            })
            .as_ref()
            .and_then(|re| re.find(value))
            .map_or(value, |m| &value[m.range()]);
        record(c, ri, frag, field, policy, path, st);
    }
}

fn record(
    c: &Compiled,
    ri: usize,
    fragment: &[u8],
    field: &Field<'_>,
    policy: &Policy,
    path: &str,
    st: &mut State,
) {
    let rule = &c.rules[ri];
    if rule.paranoia > policy.paranoia {
        return;
    }
    let target = field.target();
    if !policy.exclusions.is_empty() && policy.excludes(rule.id, rule.family, &target, path) {
        return;
    }
    let first = !st.scored.contains(&ri);
    let score = if first { rule.score } else { 0 };
    if first {
        st.scored.push(ri);
        st.verdict.score += score;
    } else if st
        .verdict
        .matches
        .iter()
        .any(|m| m.rule_id == rule.id && m.target == target)
    {
        return;
    }
    if st.verdict.matches.len() < MAX_LISTED {
        st.verdict.matches.push(RuleMatch {
            rule_id: rule.id,
            family: rule.family,
            message: rule.message.clone(),
            target,
            fragment: safe_fragment(fragment),
            score,
        });
    }
}
