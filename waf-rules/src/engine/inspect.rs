//! Per-request inspection: extract fields, normalize once per chain, scan
//! each group once, score and explain.

use super::compile::{Compiled, Gate, Group};
use super::prefilter::{ByteSet, PLAIN_TEXT};
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
            pats: PatternSet::new(self.compiled.rules.len()),
        };
        let c = &self.compiled;
        // One slot per chain for the whole request: transform outputs reuse
        // their buffers from field to field instead of allocating.
        let mut cache: Vec<Slot> = (0..c.chains.len()).map(|_| Slot::default()).collect();
        let mut memo = Memo::default();
        for field in &fields.list {
            if skip_fast(field) {
                continue;
            }
            for slot in &mut cache {
                slot.kind = Kind::Empty;
            }
            memo.clear();
            let plain = ByteSet::of(&field.value).is_subset(&PLAIN_TEXT);
            let query = field.class == Class::Arg && field.source == "args";
            let named = if field.class == Class::Header {
                c.by_header.get(field.name.as_ref())
            } else {
                None
            };
            // Multipart part headers are client-made structure, not browser
            // boilerplate: they always get the all-headers rules.
            let generic: &[usize] = if field.class == Class::Header
                && field.source != "part-header"
                && plain_header(&field.value)
            {
                &[]
            } else {
                &c.by_class[field.class.index()]
            };
            let groups = generic
                .iter()
                .chain(if query {
                    &c.by_class[Class::QueryArg.index()][..]
                } else {
                    &[]
                })
                .chain(named.map_or(&[][..], |g| &g[..]));
            for &gi in groups {
                let g = &c.groups[gi];
                // Plain text only changes case through any chain: a group
                // that runs nothing but literal- and punctuation-gated
                // patterns is decided on the raw value, without decoding.
                if plain && g.gated_only {
                    let entry = memo.entry(c, &cache, &field.value, None);
                    let lit_hit = |s: &super::compile::Gated| {
                        s.gate
                            .as_ref()
                            .and_then(|g| g.lits)
                            .is_some_and(|bit| memo.hit(entry, bit))
                    };
                    if !g.sets.iter().any(lit_hit) {
                        continue;
                    }
                }
                ensure(c, &mut cache, &field.value, plain, g.chain);
                let value = bytes(c, &cache, &field.value, g.chain);
                let entry = memo.entry(c, &cache, &field.value, Some(g.chain));
                run_group(
                    c,
                    g,
                    field,
                    value,
                    (&memo, entry),
                    policy,
                    req.path,
                    &mut st,
                );
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
    /// (value identity: pointer, length, the chain it came from, data index)
    keys: Vec<(usize, usize, Option<usize>, usize)>,
    /// Literal hits per gate bit, and the value's byte set.
    data: Vec<(Vec<u64>, ByteSet)>,
    used: usize,
}

impl Memo {
    fn clear(&mut self) {
        self.keys.clear();
        self.used = 0;
    }

    /// The memo data for this value, computed on first use. Values equal
    /// up to ASCII case share it: the literal automaton ignores case and
    /// the byte sets that gate patterns hold no letters.
    fn entry(&mut self, c: &Compiled, cache: &[Slot], raw: &[u8], chain: Option<usize>) -> usize {
        let value = chain.map_or(raw, |ch| bytes(c, cache, raw, ch));
        let key = (value.as_ptr() as usize, value.len());
        if let Some(k) = self.keys.iter().find(|k| (k.0, k.1) == key) {
            return k.3;
        }
        let same = self.keys.iter().find(|k| {
            k.1 == value.len()
                && k.2
                    .map_or(raw, |ch| bytes(c, cache, raw, ch))
                    .eq_ignore_ascii_case(value)
        });
        if let Some(&(_, _, _, d)) = same {
            self.keys.push((key.0, key.1, chain, d));
            return d;
        }
        if self.used == self.data.len() {
            self.data.push((Vec::new(), ByteSet::default()));
        }
        let d = self.used;
        let e = &mut self.data[d];
        e.0.clear();
        e.0.resize(c.gate_bits.div_ceil(64), 0);
        e.1 = ByteSet::of(value);
        if let Some((ac, owners)) = &c.prefilter {
            for m in ac.find_overlapping_iter(value) {
                let g = owners[m.pattern().as_usize()];
                e.0[g / 64] |= 1 << (g % 64);
            }
        }
        self.used += 1;
        self.keys.push((key.0, key.1, chain, d));
        d
    }

    fn hit(&self, entry: usize, bit: usize) -> bool {
        self.data[entry].0[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Whether a value (by its memo entry) opens a gate.
    fn opens(&self, entry: usize, gate: &Gate) -> bool {
        gate.bytes.intersects(&self.data[entry].1) || gate.lits.is_some_and(|b| self.hit(entry, b))
    }
}

/// A field value after one transform chain.
#[derive(Default)]
struct Slot {
    kind: Kind,
    /// The value when `kind` is `Owned`; otherwise capacity kept for reuse.
    buf: Vec<u8>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[default]
    Empty,
    /// Unchanged from the chain's parent (or the raw value for a root).
    SameAsParent,
    Owned,
}

/// Computes the value for `chain`, reusing its parent's.
fn ensure(c: &Compiled, cache: &mut [Slot], raw: &[u8], plain: bool, chain: usize) {
    if cache[chain].kind != Kind::Empty {
        return;
    }
    let parent = c.chain_parent[chain];
    if let Some(p) = parent {
        ensure(c, cache, raw, plain, p);
    }
    let Some(&step) = c.chains[chain].last() else {
        cache[chain].kind = Kind::SameAsParent;
        return;
    };
    // Plain text (letters, digits, spaces, light punctuation) has nothing to
    // decode: only case and spacing steps can change it.
    if plain && !step.changes_plain_text() {
        cache[chain].kind = Kind::SameAsParent;
        return;
    }
    // The parent is another slot, so this one's buffer can be lent out.
    let mut buf = std::mem::take(&mut cache[chain].buf);
    let changed = {
        let input = match parent {
            Some(p) => bytes(c, cache, raw, p),
            None => raw,
        };
        step.apply_into(input, &mut buf)
    };
    cache[chain] = Slot {
        kind: if changed {
            Kind::Owned
        } else {
            Kind::SameAsParent
        },
        buf,
    };
}

/// The bytes of `chain`'s value: the nearest owned ancestor, else raw.
fn bytes<'a>(c: &Compiled, cache: &'a [Slot], raw: &'a [u8], chain: usize) -> &'a [u8] {
    let mut at = Some(chain);
    while let Some(i) = at {
        if cache[i].kind == Kind::Owned {
            return &cache[i].buf;
        }
        at = c.chain_parent[i];
    }
    raw
}

struct State {
    verdict: Verdict,
    /// Rules that already scored in this request (each scores once).
    scored: Vec<usize>,
    /// Scratch for regex scans, shared by all of them: large enough for
    /// any set, and emptied only after a scan that matched.
    pats: PatternSet,
}

/// Plain tokens cannot carry an attack in a parameter or cookie: skip all
/// rules for them (see `extract::plain_token`). Binary raw bodies too.
fn skip_fast(f: &Field<'_>) -> bool {
    if f.class == Class::RawBody {
        return is_binary(&f.value);
    }
    matches!(
        f.class,
        Class::Arg | Class::ArgName | Class::Cookie | Class::CookieName
    ) && crate::extract::plain_token(&f.value)
}

/// A header value made only of what browsers put in standard headers
/// (tokens, media types, quality values, dates, user agents). Rules for
/// all headers look for `${`, `() {`, `%{`, `..`, escapes, quotes and
/// control bytes; without any of them only the rules for this header
/// by name run.
fn plain_header(v: &[u8]) -> bool {
    !v.iter().any(|&b| {
        !(0x20..0x7f).contains(&b)
            || matches!(
                b,
                b'{' | b'}' | b'$' | b'%' | b'\\' | b'<' | b'>' | b'`' | b'|' | b'\'' | b'#' | b'['
            )
    }) && !v.windows(2).any(|w| w == b"..")
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
    (memo, entry): (&Memo, usize),
    policy: &Policy,
    path: &str,
    st: &mut State,
) {
    if value.is_empty() {
        return;
    }
    for s in &g.sets {
        if s.gate.as_ref().is_none_or(|gate| memo.opens(entry, gate)) {
            scan_regexes(c, &s.set, value, field, policy, path, st);
        }
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
    let n = set.regex.pattern_len();
    if st.pats.capacity() < n {
        st.pats = PatternSet::new(n);
    }
    if !st.pats.is_empty() {
        st.pats.clear();
    }
    set.regex
        .which_overlapping_matches(&Input::new(value), &mut st.pats);
    if st.pats.is_empty() {
        return;
    }
    let pats = std::mem::replace(&mut st.pats, PatternSet::new(0));
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
    st.pats = pats;
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
