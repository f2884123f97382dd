//! Per-request inspection: extract fields, normalize once per chain, scan
//! each group once, score and explain.

use super::compile::{Compiled, Group};
use super::RuleSet;
use crate::extract::{self, Class, Field};
use crate::policy::Policy;
use crate::request::Request;
use crate::verdict::{safe_fragment, RuleMatch, Verdict};
use regex_automata::{Input, PatternSet};

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
        let mut cache: Vec<Slot> = Vec::with_capacity(c.chains.len());
        let mut memo = Memo::default();
        for field in &fields.list {
            if skip_fast(field) {
                continue;
            }
            cache.clear();
            cache.resize_with(c.chains.len(), || Slot::Empty);
            memo.clear();
            let query = field.class == Class::Arg && field.source == "args";
            let named = if field.class == Class::Header {
                c.by_header.get(field.name.as_ref())
            } else {
                None
            };
            let groups = c.by_class[field.class.index()]
                .iter()
                .chain(if query {
                    &c.by_class[Class::QueryArg.index()][..]
                } else {
                    &[]
                })
                .chain(named.map_or(&[][..], |g| &g[..]));
            for &gi in groups {
                let g = &c.groups[gi];
                ensure(c, &mut cache, &field.value, g.chain);
                let value = bytes(c, &cache, &field.value, g.chain);
                let hit = g.filtered.is_some() && memo.hit(c, value, gi);
                run_group(c, g, field, value, hit, policy, req.path, &mut st);
            }
        }
        let mut v = st.verdict;
        v.block = v.score >= policy.threshold;
        v
    }
}

/// Which groups' literals occur in a value, computed once per distinct
/// value (chains that leave a value unchanged share it).
#[derive(Default)]
struct Memo {
    entries: Vec<(usize, usize, Vec<u64>)>,
    used: usize,
}

impl Memo {
    fn clear(&mut self) {
        self.used = 0;
    }

    fn hit(&mut self, c: &Compiled, value: &[u8], group: usize) -> bool {
        let Some((ac, owners)) = &c.prefilter else {
            return false;
        };
        let key = (value.as_ptr() as usize, value.len());
        let idx = match self.entries[..self.used]
            .iter()
            .position(|e| (e.0, e.1) == key)
        {
            Some(i) => i,
            None => {
                if self.used == self.entries.len() {
                    self.entries.push((0, 0, Vec::new()));
                }
                let e = &mut self.entries[self.used];
                e.0 = key.0;
                e.1 = key.1;
                e.2.clear();
                e.2.resize(c.groups.len().div_ceil(64), 0);
                for m in ac.find_overlapping_iter(value) {
                    let g = owners[m.pattern().as_usize()];
                    e.2[g / 64] |= 1 << (g % 64);
                }
                self.used += 1;
                self.used - 1
            }
        };
        self.entries[idx].2[group / 64] & (1 << (group % 64)) != 0
    }
}

/// A field value after one transform chain.
enum Slot {
    Empty,
    /// Unchanged from the chain's parent (or the raw value for a root).
    SameAsParent,
    Owned(Vec<u8>),
}

/// Computes the value for `chain`, reusing its parent's.
fn ensure(c: &Compiled, cache: &mut [Slot], raw: &[u8], chain: usize) {
    if !matches!(cache[chain], Slot::Empty) {
        return;
    }
    let parent = c.chain_parent[chain];
    if let Some(p) = parent {
        ensure(c, cache, raw, p);
    }
    let Some(&step) = c.chains[chain].last() else {
        cache[chain] = Slot::SameAsParent;
        return;
    };
    let out = {
        let input = match parent {
            Some(p) => bytes(c, cache, raw, p),
            None => raw,
        };
        step.apply(input)
    };
    cache[chain] = match out {
        Some(v) => Slot::Owned(v),
        None => Slot::SameAsParent,
    };
}

/// The bytes of `chain`'s value: the nearest owned ancestor, else raw.
fn bytes<'a>(c: &Compiled, cache: &'a [Slot], raw: &'a [u8], chain: usize) -> &'a [u8] {
    let mut at = Some(chain);
    while let Some(i) = at {
        if let Slot::Owned(v) = &cache[i] {
            return v;
        }
        at = c.chain_parent[i];
    }
    raw
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
    ) && (f
        .value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        || f.value
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b',')))
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

#[allow(clippy::too_many_arguments)]
fn run_group(
    c: &Compiled,
    g: &Group,
    field: &Field<'_>,
    value: &[u8],
    lits_hit: bool,
    policy: &Policy,
    path: &str,
    st: &mut State,
) {
    if value.is_empty() {
        return;
    }
    if let Some(set) = &g.filtered {
        if lits_hit {
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
