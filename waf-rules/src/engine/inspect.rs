//! Per-request inspection: extract fields, normalize once per chain, scan
//! each group once, score and explain.

use super::cache::HeaderCache;
use super::compile::{Compiled, Group};
use super::prefilter::ByteSet;
use super::values::Values;
use super::RuleSet;
use crate::extract::{self, Class, Field, Fields};
use crate::policy::Policy;
use crate::request::Request;
use crate::verdict::{safe_fragment, RuleMatch, Verdict};
use regex_automata::{Input, PatternSet};
use std::cell::RefCell;

/// Matches listed per verdict; scoring continues past it.
const MAX_LISTED: usize = 64;

/// The bit of a group's open mask (one bit per gated automaton) that says
/// its phrases may occur.
const PHRASES_OPEN: u64 = 1 << 63;

/// A field's value after a group's chain, and where it lives (to answer
/// detectors' anchor questions from the value's literal scan).
struct Value<'v> {
    src: super::values::Src,
    bytes: &'v [u8],
    /// Plain text (see `Values::is_plain`).
    plain: bool,
    /// The value's byte set.
    byte_set: ByteSet,
    values: &'v Values,
}

impl RuleSet {
    /// Decides for one request: every matching rule, the score, and whether
    /// the policy would block it.
    pub fn inspect(&self, req: &Request<'_>, policy: &Policy) -> Verdict {
        // The thread's scratch, borrowed in place (not moved out and back:
        // two copies of it per request); a fresh one should an inspection
        // ever run inside another on this thread.
        let clean = Some(&self.clean);
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.inspect_with(req, policy, &mut scratch, clean).0,
            Err(_) => {
                self.inspect_with(req, policy, &mut Scratch::default(), clean)
                    .0
            }
        })
    }

    /// The request-line values on which no loaded rule fires at any paranoia level, found by
    /// inspecting each candidate at load (`CleanLine`).
    pub(super) fn clean_line(&self) -> CleanLine {
        let any_level = Policy {
            paranoia: u8::MAX,
            ..Policy::default()
        };
        let mut clean = CleanLine::default();
        let mut scratch = Scratch::default();
        let blank = Request {
            method: "",
            path: "",
            query: "",
            version: "",
            headers: &[],
            body: b"",
            body_truncated: false,
        };
        let candidates = CLEAN_METHODS
            .iter()
            .map(|m| (Class::Method, Request { method: m, ..blank }))
            .chain(CLEAN_VERSIONS.iter().map(|v| {
                (
                    Class::Version,
                    Request {
                        version: v,
                        ..blank
                    },
                )
            }))
            .chain(
                CLEAN_PATHS
                    .iter()
                    .map(|p| (Class::Path, Request { path: p, ..blank })),
            );
        for (class, req) in candidates {
            // Every rule hit counts ("fired", before exclusions, at every level): a request
            // whose fields (the candidate beside an empty method or path) fire nothing at all
            // makes the candidate's field clean.
            if self.inspect_with(&req, &any_level, &mut scratch, None).1 != 0 {
                continue;
            }
            let fields = extract::extract_into(
                &req,
                &any_level.limits,
                Vec::new(),
                crate::detect::sqli::shaping_word,
                self.compiled.encoded_words.as_ref(),
            );
            // The candidate's own field, as every request line with it yields it.
            let k = slot(class);
            let own = fields.list.iter().any(|f| {
                f.class == class
                    && k.is_some_and(|k| f.source == LINE_SOURCES[k])
                    && !f.value.is_empty()
                    && Some(f.value.len()) == req_value(&req, class).map(<[u8]>::len)
                    && !f.continued
                    && !f.whole
                    && f.name.is_empty()
            });
            if let (true, Some(k), Some(v)) = (own, k, req_value(&req, class)) {
                clean.values[k].push(v.into());
            }
        }
        clean
    }

    fn inspect_with(
        &self,
        req: &Request<'_>,
        policy: &Policy,
        scratch: &mut Scratch,
        clean: Option<&CleanLine>,
    ) -> (Verdict, u32) {
        let c = &self.compiled;
        let list = relabel(std::mem::take(&mut scratch.fields));
        let sql_words = crate::detect::sqli::shaping_word;
        let words = c.encoded_words.as_ref();
        let fields = extract::extract_into(req, &policy.limits, list, sql_words, words);
        let pats = match scratch.pats.take() {
            Some(mut p) if p.capacity() >= c.rules.len() => {
                p.clear();
                p
            }
            _ => PatternSet::new(c.rules.len()),
        };
        let mut st = State {
            verdict: Verdict {
                truncated: fields.truncated,
                ..Verdict::default()
            },
            scored: Vec::new(),
            fired: 0,
            fields: &fields,
            pats,
        };
        if scratch.values.as_ref().is_some_and(|v| !v.fits(c)) {
            scratch.values = None;
        }
        let values = scratch.values.get_or_insert_with(|| Values::new(c));
        let line = match clean {
            Some(clean) if shortcuts() => clean.of(req),
            _ => LineSkip::NONE,
        };
        scratch.headers.for_ruleset(c.id);
        for field in &fields.list {
            if skip_fast(field, words) {
                continue;
            }
            if line.skips(field) {
                #[cfg(test)]
                LINE_SKIPS.with(|c| c.set(c.get() + 1));
                continue;
            }
            let raw = &field.value[..];
            // A browser header value seen clean on this thread (cache.rs).
            let cache_key = (shortcuts()
                && field.class == Class::Header
                && field.source == "header"
                && !field.continued
                && !field.whole)
                .then(|| HeaderCache::key(&field.name, raw))
                .flatten();
            if cache_key.is_some_and(|k| scratch.headers.clean(k, policy.paranoia, raw)) {
                continue;
            }
            let fired = st.fired;
            let query = field.class == Class::Arg && extract::query_source(field.source);
            let named = if field.class == Class::Header {
                let name = field.name.as_ref();
                c.by_header
                    .iter()
                    .find(|(h, _)| h.len() == name.len() && h == name)
                    .map(|(_, g)| g)
            } else {
                None
            };
            // Multipart part headers are client-made structure, not browser
            // boilerplate: they always get the all-headers rules.
            // A header's byte set, read once, answers both plainness checks.
            let header_bytes = (field.class == Class::Header).then(|| ByteSet::of(raw));
            let generic: &[usize] = if field.class == Class::Header
                && field.source != "part-header"
                && header_bytes.is_some_and(|bs| plain_header(raw, &bs))
            {
                &[]
            } else {
                &c.by_class[field.class.index()]
            };

            let query: &[usize] = if query {
                &c.by_class[Class::QueryArg.index()]
            } else {
                &[]
            };
            // A header's rules by name, or an include-like arg's rules (a
            // field is one or the other): one more list, not two.
            let named: &[usize] = match named {
                Some(g) => &g[..],
                None if field.include_like => &c.by_class[Class::IncludeArg.index()],
                None => &[],
            };
            if generic.is_empty() && query.is_empty() && named.is_empty() {
                continue;
            }
            values.reset(raw, header_bytes);
            // A plain value holding none of the class's gated literals
            // skips every `gated_only` group at once (each would skip it).
            let k = field.class.index();
            let (generic, union) = if !generic.is_empty()
                && values.plain
                && !c.plain_lits[k]
                    .as_ref()
                    .is_some_and(|lits| values.raw_hits_mask(c, raw, lits))
            {
                (&c.plain_groups[k][..], &c.plain_skip[k])
            } else {
                (generic, &c.class_skip[k])
            };
            // A value holding nothing a group needs skips it (one byte-set
            // and one mask test, `quiet.rs`). A `_charset_` field's plain
            // word still matters.
            let skips = shortcuts() && !crate::extract::charset_field(field);
            // Nothing any of them needs: the whole list at once, one test
            // (`Skip::union`: each group's own test would skip it).
            let generic: &[usize] = if skips
                && !generic.is_empty()
                && union
                    .as_ref()
                    .is_some_and(|s| values.cannot_match(c, raw, s))
            {
                &[]
            } else {
                generic
            };
            let groups = generic.iter().chain(query).chain(named);
            for &gi in groups {
                let g = &c.groups[gi];
                if skips
                    && g.skip
                        .as_ref()
                        .is_some_and(|s| values.cannot_match(c, raw, s))
                {
                    continue;
                }
                // Plain text only changes case through any chain: a group
                // that runs nothing but literal- and punctuation-gated
                // patterns is decided on the raw value, without decoding.
                if values.plain && g.gated_only && !values.raw_hits_any(c, raw, &g.lit_bits) {
                    continue;
                }
                // A whole long value is read only by the detectors that
                // read a value from its start (`Field::whole`): a group
                // without one is not decoded for it.
                if field.whole && g.detectors.iter().all(|(d, _)| d.reads_anywhere()) {
                    continue;
                }
                let src = values.ensure(c, raw, g.chain);
                // Which automata the value opens (at most a few per group).
                let mut open = 0u64;
                for (k, s) in g.sets.iter().enumerate() {
                    if s.gate
                        .as_ref()
                        .is_none_or(|gate| values.opens(c, raw, g.chain, gate))
                    {
                        open |= 1 << k;
                    }
                }
                // Phrases are scanned only in a value holding one of them.
                if g.phrases
                    .as_ref()
                    .is_some_and(|&(_, gate)| values.lit_hit(c, raw, g.chain, gate))
                {
                    open |= PHRASES_OPEN;
                }
                let value = Value {
                    src,
                    bytes: values.get(raw, src),
                    plain: values.is_plain(g.chain),
                    byte_set: values.byte_set(g.chain),
                    values,
                };
                run_group(c, g, field, &value, open, policy, req.path, &mut st);
            }
            if let Some(k) = cache_key.filter(|_| st.fired == fired) {
                scratch.headers.insert(k, policy.paranoia, raw);
            }
        }
        let State {
            verdict: mut v,
            pats,
            fired,
            ..
        } = st;
        // Keep the allocations for this thread's next inspection, unless a
        // huge request grew them.
        if fields.list.capacity() <= MAX_KEPT_FIELDS {
            scratch.fields = relabel(fields.list);
        }
        values.trim(MAX_KEPT_BYTES);
        scratch.pats = Some(pats);
        v.block = v.score >= policy.threshold;
        (v, fired)
    }
}

/// Request-line values every client sends (a method, a protocol version, the root path) that
/// the rule set is asked about once, at load: those on which no loaded rule — the operator's
/// own included — fires at any paranoia level are kept as [`CleanLine`] fields.
const CLEAN_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
const CLEAN_VERSIONS: &[&str] = &["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"];
const CLEAN_PATHS: &[&str] = &["/"];

/// Request-line values (method, version, path) on which no rule of this rule set fires, found
/// at load by inspecting each candidate (`RuleSet::clean_line`); an inspection skips the
/// request line's field when it holds one of them.
///
/// Why this is sound: a field's rule hits depend only on the field (class, source, name, value
/// and its flags), the compiled rules and the policy; the policy's paranoia level only removes
/// hits (the candidates were read at every level) and its exclusions only drop hits already
/// counted as fired; the request's path is read by exclusions alone. The request line's field
/// of a value is always built the same way (`extract::extract_into`: class, source, no name,
/// no flags), so a field of a candidate that fired nothing fires nothing; a value cut into
/// windows by the policy's value limit is not that field and is read (`LineSkip::skips`). The
/// table belongs to one rule set (a reload computes its own) and holds nothing a client sent.
#[derive(Debug, Default)]
pub(super) struct CleanLine {
    /// By `slot`: the clean values.
    values: [Vec<Box<[u8]>>; 3],
}

/// The source each request-line class is listed under (`extract::extract_into`), by `slot`.
const LINE_SOURCES: [&str; 3] = ["method", "version", "path"];

/// Where a request-line class is kept.
fn slot(class: Class) -> Option<usize> {
    match class {
        Class::Method => Some(0),
        Class::Version => Some(1),
        Class::Path => Some(2),
        _ => None,
    }
}

impl CleanLine {
    /// The clean values, by `slot` (tests).
    #[cfg(test)]
    pub(super) fn values(&self) -> [Vec<String>; 3] {
        std::array::from_fn(|k| {
            self.values[k]
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
    }

    /// Which of this request's line values are clean: by `slot`, the value's length. Once per
    /// request, kept out of line (inlined, it changed how the field loop was compiled).
    #[inline(never)]
    fn of(&self, req: &Request<'_>) -> LineSkip {
        let line = [req.method, req.version, req.path];
        LineSkip(std::array::from_fn(|k| {
            let v = line[k].as_bytes();
            self.values[k].iter().any(|c| **c == *v).then_some(v.len())
        }))
    }
}

/// A request's clean line values (`CleanLine::of`).
#[derive(Clone, Copy)]
struct LineSkip([Option<usize>; 3]);

impl LineSkip {
    const NONE: LineSkip = LineSkip([None; 3]);

    /// Whether `f` is the request line's own field of a clean value: its class and source,
    /// no name, no window flags, the whole value (a first window of a longer value has the
    /// flags of a field but not its length).
    fn skips(self, f: &Field<'_>) -> bool {
        slot(f.class).is_some_and(|k| {
            self.0[k] == Some(f.value.len())
                && !f.continued
                && !f.whole
                && f.name.is_empty()
                && f.source == LINE_SOURCES[k]
        })
    }
}

/// Allocations an inspection reuses from the previous one on its thread:
/// the field list, the per-chain value buffers, the regex match set; and
/// the thread's cache of clean browser-header values.
#[derive(Default)]
struct Scratch {
    fields: Vec<Field<'static>>,
    values: Option<Values>,
    pats: Option<PatternSet>,
    headers: HeaderCache,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

#[cfg(test)]
thread_local! {
    /// Tests turn the quiet-value skip, the header cache and the request
    /// line's clean values (`CleanLine`) off on their thread to compare
    /// verdicts with and without them.
    pub(super) static NO_SHORTCUTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Request-line fields skipped as clean on this thread (tests).
    pub(super) static LINE_SKIPS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the quiet-value skip, the header cache and the request line's
/// clean values are on (always, outside tests).
fn shortcuts() -> bool {
    #[cfg(test)]
    if NO_SHORTCUTS.with(std::cell::Cell::get) {
        return false;
    }
    true
}

/// Field-list capacity and per-chain buffer bytes kept between inspections.
const MAX_KEPT_FIELDS: usize = 1024;
const MAX_KEPT_BYTES: usize = 64 << 10;

/// An empty field list with another borrow lifetime, same allocation (an
/// empty collect into an element type of the same layout reuses it;
/// `filter_map` is what changes the element type).
#[allow(clippy::unnecessary_filter_map)]
fn relabel<'x, 'y>(mut list: Vec<Field<'x>>) -> Vec<Field<'y>> {
    list.clear();
    list.into_iter().filter_map(|_| None).collect()
}

struct State<'s, 'f> {
    verdict: Verdict,
    /// The request's fields, for the labels of matched JSON fields.
    fields: &'s Fields<'f>,
    /// Rules that already scored in this request (each scores once).
    scored: Vec<usize>,
    /// Rule hits at the policy's paranoia level, before exclusions.
    fired: u32,
    /// Scratch for regex scans, shared by all of them: large enough for
    /// any set, and emptied only after a scan that matched.
    pats: PatternSet,
}

/// Plain tokens cannot carry an attack in a parameter or cookie: skip all
/// rules for them (see `extract::plain_token`). Binary raw bodies too.
/// (The JSON reader pushes no plain token: its fields are not read again.)
fn skip_fast(f: &Field<'_>, words: Option<&crate::extract::EncodedWords>) -> bool {
    if f.class == Class::RawBody {
        return is_binary(&f.value);
    }
    matches!(
        f.class,
        Class::Arg | Class::ArgName | Class::Cookie | Class::CookieName
    ) && !f.not_token
        && crate::extract::plain_token(&f.value, words)
        // `_charset_=utf-7` is a plain word that re-decodes the whole body.
        && !crate::extract::charset_field(f)
}

/// A header value made only of what browsers put in standard headers
/// (tokens, media types, quality values, dates, user agents). Rules for
/// all headers look for `${`, `() {`, `%{`, `..`, escapes, quotes and
/// control bytes; without any of them only the rules for this header
/// by name run.
fn plain_header(v: &[u8], bytes: &ByteSet) -> bool {
    bytes.is_subset(&HEADER_TEXT) && !(bytes.contains(b'.') && v.windows(2).any(|w| w == b".."))
}

/// Printable ASCII except the bytes rules for all headers look for.
const HEADER_TEXT: ByteSet = header_text();

const fn header_text() -> ByteSet {
    let mut s = [0u64; 4];
    let mut b = 0x20u8;
    while b < 0x7f {
        if !matches!(
            b,
            b'{' | b'}' | b'$' | b'%' | b'\\' | b'<' | b'>' | b'`' | b'|' | b'\'' | b'#' | b'['
        ) {
            s[(b >> 6) as usize] |= 1 << (b & 63);
        }
        b += 1;
    }
    ByteSet(s)
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
    v: &Value<'_>,
    open: u64,
    policy: &Policy,
    path: &str,
    st: &mut State<'_, '_>,
) {
    let (value, plain) = (v.bytes, v.plain);
    if value.is_empty() {
        return;
    }
    // Patterns and phrases read a whole long value in its windows.
    let open = if field.whole { 0 } else { open };
    for (k, s) in g.sets.iter().enumerate() {
        if open & (1 << k) != 0 {
            scan_regexes(c, &s.set, value, field, policy, path, st);
        }
    }
    if let Some((ph, _)) = g.phrases.as_ref().filter(|_| open & PHRASES_OPEN != 0) {
        for m in ph.ac.find_overlapping_iter(value) {
            let ri = ph.rules[m.pattern().as_usize()];
            record(c, ri, &value[m.start()..m.end()], field, policy, path, st);
        }
    }
    let gates = g.detector_gates.iter();
    for (((det, ri), &needs_punctuation), gate) in
        g.detectors.iter().zip(&g.needs_punctuation).zip(gates)
    {
        // A plain value (its byte set, read once) holds none of the bytes
        // such a detector starts from.
        if !applies(c, *ri, policy)
            // A later window is not read by SQL, a whole value only by it.
            || ((field.continued || field.whole) && det.reads_anywhere() == field.whole)
            || (plain && needs_punctuation)
        {
            continue;
        }
        // Nor does a chain value holding none of its trigger bytes and
        // literals (`quiet::detector_trigger`): the decoded consent cookie
        // `{"ads":false}` is not read for paths, markup or shell.
        if shortcuts()
            && gate.as_ref().is_some_and(|(bytes, lits)| {
                !bytes.intersects(&v.byte_set)
                    && lits.is_none_or(|bit| !v.values.lit_hit_in(c, v.src, value, bit))
            })
        {
            continue;
        }
        let anchored = || {
            c.anchor_bits
                .iter()
                .find(|&&(d, _)| d == *det)
                .is_none_or(|&(_, bit)| v.values.lit_hit_in(c, v.src, value, bit))
        };
        if let Some(span) = det.detect_field(field, value, anchored) {
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
    st: &mut State<'_, '_>,
) {
    let n = set.regex.multi.pattern_len();
    if st.pats.capacity() < n {
        st.pats = PatternSet::new(n);
    }
    if !st.pats.is_empty() {
        st.pats.clear();
    }
    set.regex
        .multi
        .which_overlapping_matches(&Input::new(value), &mut st.pats);
    if st.pats.is_empty() {
        return;
    }
    let pats = std::mem::replace(&mut st.pats, PatternSet::new(0));
    for pid in pats.iter() {
        // The automaton is shared by the groups of this chain (`RegexSet`): a pattern of a
        // rule this group does not hold is ignored; one it holds twice is recorded twice.
        let ri = set.regex.rules[pid.as_usize()];
        let first = set.rules.partition_point(|&r| r < ri);
        let times = set.rules[first..].iter().take_while(|&&r| r == ri).count();
        if times == 0 {
            continue;
        }
        let rule = &c.rules[ri];
        let frag = rule
            .finder
            .get_or_init(|| {
                rule.pattern
                    .as_deref()
                    .and_then(|p| crate::syntax::single_regex(p).ok())
            })
            .as_ref()
            .and_then(|re| re.find(value))
            .map_or(value, |m| &value[m.range()]);
        for _ in 0..times {
            record(c, ri, frag, field, policy, path, st);
        }
    }
    st.pats = pats;
}

/// Whether an exclusion covers the hit: on the field's target, or on the
/// target of the whole structured value it was read from (an exclusion on
/// `header:referer` covers `referer-args:q`; on `cookie:prefs`, the JSON
/// cookie's `cookie:prefs$.a`).
fn excluded(
    rule: &super::compile::CompiledRule,
    field: &Field<'_>,
    target: &str,
    policy: &Policy,
    path: &str,
) -> bool {
    policy.excludes(rule.id, rule.family, target, path)
        || field
            .whole_target()
            .is_some_and(|whole| policy.excludes(rule.id, rule.family, &whole, path))
}

fn record(
    c: &Compiled,
    ri: usize,
    fragment: &[u8],
    field: &Field<'_>,
    policy: &Policy,
    path: &str,
    st: &mut State<'_, '_>,
) {
    let rule = &c.rules[ri];
    if rule.paranoia > policy.paranoia {
        return;
    }
    st.fired += 1;
    let target = field.target(st.fields);
    if !policy.exclusions.is_empty() && excluded(rule, field, &target, policy, path) {
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

/// The request line's value of a line class (`slot`), `None` for another class.
fn req_value<'r>(req: &Request<'r>, class: Class) -> Option<&'r [u8]> {
    match class {
        Class::Method => Some(req.method.as_bytes()),
        Class::Version => Some(req.version.as_bytes()),
        Class::Path => Some(req.path.as_bytes()),
        _ => None,
    }
}
