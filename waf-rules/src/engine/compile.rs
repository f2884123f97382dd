//! Builds the automata once, at load time.

use super::prefilter::{requirement, BitMask, ByteSet, LiteralScan, Need};
use super::quiet::{detector_trigger, group_skip, GroupParts, Skip, TriggerLits};
use super::regex_set::MultiRegex;
use crate::detect::Detector;
use crate::error::WafError;
use crate::extract::{Class, EncodedWords, Readable};
use crate::rules::{Operator, Rule, TargetSel};
use crate::syntax::syntax_config;
use crate::transform::Transform;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcKind};
use regex_automata::meta::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The automata compiled so far: by transform chain and gate kind (`RegexSet::regex`; None:
/// that union was refused or has no lazy DFA, so its groups have their own), and by a group's
/// own rule list.
#[derive(Default)]
struct SharedSets {
    unions: HashMap<(usize, GateKind), Option<Arc<SharedRegex>>>,
    lists: HashMap<Vec<usize>, Arc<SharedRegex>>,
}

/// Every regex rule of each transform chain and gate kind, ascending: the patterns of that
/// chain and kind's one automaton.
type Members = BTreeMap<(usize, GateKind), Vec<usize>>;

/// Which of a group's automata a regex rule goes to, from what its pattern needs
/// (`requirement`): gated by literals only, by punctuation (and perhaps literals), or always
/// scanned. A function of the rule alone, so the same in every group holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GateKind {
    Lits,
    Bytes,
    Always,
}

impl GateKind {
    fn of(need: Option<&Need>) -> GateKind {
        match need {
            Some(n) if n.bytes == ByteSet::default() => GateKind::Lits,
            Some(_) => GateKind::Bytes,
            None => GateKind::Always,
        }
    }
}

/// Gate and phrase literals are cut to this many bytes in the shared scan.
const GATE_PREFIX: usize = 5;

fn multi_regex(patterns: &[&str]) -> Result<MultiRegex, String> {
    MultiRegex::new(patterns, syntax_config())
}

/// A rule, compiled: what it matches with and its lazily built fragment finder.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub id: u32,
    pub family: crate::Family,
    pub message: std::sync::Arc<str>,
    pub paranoia: u8,
    pub score: u32,
    pub pattern: Option<String>,
    pub finder: OnceLock<Option<Regex>>,
}

/// A group's multi-pattern regex: the shared automaton of its rules' chain and gate kind, and
/// which of its patterns are this group's.
#[derive(Debug)]
pub(crate) struct RegexSet {
    /// Every regex rule of the group's transform chain and of this set's gate kind, whatever
    /// its targets, in one automaton shared by all the groups with that chain and kind (one
    /// rule targets several classes and headers, and groups of one chain hold nearly the same
    /// rules: 85 automata held 409 patterns of 157 rules; one per chain and kind holds each
    /// rule once). Compiled once, one search cache per thread for all of them.
    pub regex: Arc<SharedRegex>,
    /// This group's rules, ascending (a rule listed twice for one target, twice): a reported
    /// pattern of a rule not in it is another group's and ignored.
    pub rules: Vec<usize>,
}

/// One automaton over the patterns of several groups' rules, and the rule of each pattern.
#[derive(Debug)]
pub(crate) struct SharedRegex {
    pub multi: MultiRegex,
    /// The rule index of each pattern, ascending.
    pub rules: Vec<usize>,
}

/// Phrase lists of many rules in one automaton.
#[derive(Debug)]
pub(crate) struct PhraseSet {
    pub ac: AhoCorasick,
    pub rules: Vec<usize>,
}

/// Everything run on a field of one target class after one transform chain.
#[derive(Debug)]
pub(crate) struct Group {
    pub chain: usize,
    /// Multi-pattern automata, each scanned only when its gate opens.
    pub sets: Vec<Gated>,
    /// The phrases and their gate bit in the shared literal scan (the
    /// same phrases: a value holding none of them is not scanned).
    pub phrases: Option<(PhraseSet, usize)>,
    pub detectors: Vec<(Detector, usize)>,
    /// Per detector: `Detector::needs_punctuation`, read once at load.
    pub needs_punctuation: Vec<bool>,
    /// Only gated automata: plain text can skip the group unless one of
    /// its literals occurs (gate bytes are never plain-text bytes).
    pub gated_only: bool,
    /// The gate bits of its automata's literals, for deciding a plain
    /// value of a `gated_only` group without walking `sets`.
    pub lit_bits: Vec<usize>,
    /// Per detector: what its chain value must hold for it to be called
    /// (`quiet::detector_trigger`: its trigger bytes, or a literal under
    /// this gate bit); None: always called.
    pub detector_gates: Vec<Option<(ByteSet, Option<usize>)>>,
    /// What a value must hold for the group to run at all (`quiet.rs`):
    /// a value holding none of it is skipped with one byte-set test and
    /// one mask test. None: something in the group runs on any value.
    pub skip: Option<Skip>,
}

/// An automaton and what a value must hold for it to be scanned.
#[derive(Debug)]
pub(crate) struct Gated {
    /// None: always scanned.
    pub gate: Option<Gate>,
    pub set: RegexSet,
}

/// A value opens the gate if it holds one of `bytes` or one of the
/// literals reported under bit `lits` of the shared literal scan.
#[derive(Debug)]
pub(crate) struct Gate {
    pub bytes: ByteSet,
    pub lits: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    /// Unique per compiled rule set (per-thread caches belong to one).
    pub id: u64,
    pub rules: Vec<CompiledRule>,
    pub chains: Vec<Vec<Transform>>,
    /// For each chain: the chain one step shorter (None for one step) and
    /// its last step, so a value is decoded once and shared by all chains
    /// that start the same way.
    pub chain_parent: Vec<Option<usize>>,
    /// For each chain: bytes without which its last step changes nothing.
    pub chain_trigger: Vec<ByteSet>,
    /// For each chain: bytes without which no step of it changes anything
    /// (the union of its steps' triggers): a value holding none of them
    /// is its own result, undecoded.
    pub chain_any_trigger: Vec<ByteSet>,
    /// For each chain: no step of it changes plain text.
    pub chain_keeps_plain: Vec<bool>,
    /// Which long single-case words of args and cookies the rules can
    /// read (`extract::plain_token`); None: none.
    pub encoded_words: Option<EncodedWords>,
    pub groups: Vec<Group>,
    /// One automaton over every gate's literals, reporting gate bits.
    pub prefilter: Option<LiteralScan>,
    /// Number of gate bits the literal scan reports.
    pub gate_bits: usize,
    /// The gate bit of each detector's anchors (`Detector::anchors`).
    pub anchor_bits: Vec<(Detector, usize)>,
    /// Group indexes per target class.
    pub by_class: [Vec<usize>; Class::COUNT],
    /// Per target class, for a plain value: the gate bits of all its
    /// `gated_only` groups' literals (one word test instead of a visit per
    /// group), and its groups that are not `gated_only`, in order — all a
    /// plain value holding none of those literals needs visiting.
    /// (None: the class has no such literal.)
    pub plain_lits: [Option<BitMask>; Class::COUNT],
    pub plain_groups: [Vec<usize>; Class::COUNT],
    /// Per target class: the union of its groups' skips
    /// (`Skip::union`), and of its `plain_groups`' skips: a value that
    /// cannot match it skips every group of the list with one test.
    pub class_skip: [Option<Skip>; Class::COUNT],
    pub plain_skip: [Option<Skip>; Class::COUNT],
    /// Group indexes for one named header (a short list: a linear search
    /// beats hashing every header name).
    pub by_header: Vec<(String, Vec<usize>)>,
}

#[derive(Default)]
struct Pending {
    regexes: Vec<usize>,
    phrases: Vec<usize>,
    detectors: Vec<(Detector, usize)>,
}

impl Compiled {
    pub(crate) fn new(rules: Vec<Rule>) -> Result<Compiled, WafError> {
        let mut chains: Vec<Vec<Transform>> = Vec::new();
        let mut pending: BTreeMap<(TargetSel, usize), Pending> = BTreeMap::new();
        for (i, r) in rules.iter().enumerate() {
            let chain = intern(&mut chains, &r.transforms);
            for t in &r.targets {
                let p = pending.entry((t.clone(), chain)).or_default();
                match &r.op {
                    Operator::Regex(_) => p.regexes.push(i),
                    Operator::Phrases(_) => p.phrases.push(i),
                    Operator::Detector(d) => p.detectors.push((*d, i)),
                }
            }
        }
        let mut groups = Vec::new();
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut owners = Vec::new();
        // What each regex needs, once per rule (a rule sits in several groups).
        let needs: Vec<Option<Need>> = rules
            .iter()
            .map(|r| match &r.op {
                Operator::Regex(p) => requirement(p),
                _ => None,
            })
            .collect();
        let mut by_class: [Vec<usize>; Class::COUNT] = Default::default();
        let mut by_header: HashMap<String, Vec<usize>> = HashMap::new();
        let mut members = Members::new();
        for ((_, chain), p) in &pending {
            for &ri in &p.regexes {
                let kind = GateKind::of(needs[ri].as_ref());
                members.entry((*chain, kind)).or_default().push(ri);
            }
        }
        for list in members.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let mut shared = SharedSets::default();
        for ((target, chain), p) in pending {
            let label = format!("{target:?} {:?}", chains[chain]);
            let out = (&mut lits, &mut owners, &mut shared);
            let group = build_group(&rules, &needs, &members, label, chain, p, out)?;
            let gi = groups.len();
            groups.push(group);
            match target {
                TargetSel::Class(c) => by_class[c.index()].push(gi),
                TargetSel::Header(h) => by_header.entry(h).or_default().push(gi),
            }
        }
        // Each detector's anchors under one bit of the same scan.
        let mut anchor_bits = Vec::new();
        for g in &groups {
            for &(d, _) in &g.detectors {
                if d.anchors().is_empty() || anchor_bits.iter().any(|&(x, _)| x == d) {
                    continue;
                }
                let bit = next_bit(&owners);
                for a in d.anchors() {
                    lits.push(a.as_bytes().to_vec());
                    owners.push(bit);
                }
                anchor_bits.push((d, bit));
            }
        }
        // Each detector's own trigger literals (`quiet::detector_trigger`)
        // under one bit of the same scan.
        let mut trigger_bits: Vec<(Detector, usize)> = Vec::new();
        for g in &groups {
            for &(d, _) in &g.detectors {
                let Some((_, TriggerLits::Own(own))) = detector_trigger(d) else {
                    continue;
                };
                if trigger_bits.iter().any(|&(x, _)| x == d) {
                    continue;
                }
                let bit = next_bit(&owners);
                for l in own {
                    lits.push(l.as_bytes().to_vec());
                    owners.push(bit);
                }
                trigger_bits.push((d, bit));
            }
        }
        let gate_bits = next_bit(&owners);
        for g in &mut groups {
            let bit_of = |d: Detector, l: TriggerLits| {
                let bits = match l {
                    TriggerLits::Anchors => &anchor_bits,
                    TriggerLits::Own(_) => &trigger_bits,
                    TriggerLits::None => return None,
                };
                bits.iter().find(|b| b.0 == d).map(|b| b.1)
            };
            let parts = GroupParts {
                gates: g
                    .sets
                    .iter()
                    .map(|set| set.gate.as_ref().map(|gate| (&gate.bytes, gate.lits))),
                phrase_bit: g.phrases.as_ref().map(|(_, b)| *b),
                detectors: &g.detectors,
            };
            g.skip = group_skip(parts, &chains[g.chain], gate_bits, bit_of);
            g.detector_gates = g
                .detectors
                .iter()
                .map(|&(d, _)| detector_gate(d, bit_of))
                .collect();
        }
        let encoded_words = encoded_words(&rules);
        if std::env::var_os("RAMPART_WAF_DEBUG").is_some() {
            let mut l: Vec<String> = lits
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect();
            l.sort();
            l.dedup();
            eprintln!("literals ({}): {:?}", l.len(), l);
            let read = encoded_words.as_ref().map(EncodedWords::rules);
            eprintln!("rules reading long single-case words: {read:?}");
        }
        // A gate only needs "may hold one of these": a value holding a
        // literal holds its first `GATE_PREFIX` bytes, so gate and phrase
        // literals are cut there (a smaller automaton, the same verdicts:
        // a gate that opens more often only costs a scan). Detectors'
        // anchors and trigger literals are kept whole.
        for (l, &bit) in lits.iter_mut().zip(&owners) {
            if !anchor_bits
                .iter()
                .chain(&trigger_bits)
                .any(|&(_, b)| b == bit)
            {
                l.truncate(GATE_PREFIX);
            }
        }
        // The cut makes some (literal, bit) pairs equal (a gate's `selec`
        // of `select` and `selected`, the same phrase in several groups):
        // one pattern each (3,372 → 3,279 patterns, the same 1.18 MB DFA; a
        // match state reports each pattern, so −0.5 k instructions per
        // typical inspection).
        let (lits, owners) = dedup_pairs(lits, owners);
        let prefilter = if lits.is_empty() {
            None
        } else {
            // Walked byte by byte (values.rs). A DFA: one table step per byte, where the
            // contiguous NFA (0.37 MB) follows failure links through sparse states: 125.5k
            // → 110.3k instructions per typical inspection for +0.8 MB (1.17 MB with the
            // gate literals cut to `GATE_PREFIX` bytes, 1.94 MB whole). Its table copied
            // into one of our own (`LiteralScan`) for a cheaper step.
            let scan = LiteralScan::new(&lits, &owners).map_err(|message| WafError::Compile {
                group: "prefilter".into(),
                message,
            })?;
            Some(scan)
        };
        let chain_parent = chains
            .iter()
            .map(|c| {
                (c.len() > 1)
                    .then(|| chains.iter().position(|p| p[..] == c[..c.len() - 1]))
                    .flatten()
            })
            .collect();
        let chain_trigger = chains
            .iter()
            .map(|c| {
                let mut t = ByteSet::default();
                match c.last().and_then(|s| s.trigger_bytes()) {
                    Some(bytes) => bytes.iter().for_each(|&b| t.insert(b)),
                    None => t = ByteSet([u64::MAX; 4]),
                }
                t
            })
            .collect();
        let chain_any_trigger = chains
            .iter()
            .map(|c| {
                let mut t = ByteSet::default();
                for s in c {
                    match s.trigger_bytes() {
                        Some(bytes) => bytes.iter().for_each(|&b| t.insert(b)),
                        None => t = ByteSet([u64::MAX; 4]),
                    }
                }
                t
            })
            .collect();
        let mut plain_lits: [Option<BitMask>; Class::COUNT] = Default::default();
        let mut plain_groups: [Vec<usize>; Class::COUNT] = Default::default();
        for (k, list) in by_class.iter().enumerate() {
            let mut mask = vec![0u64; gate_bits.div_ceil(64)];
            for &gi in list {
                let g = &groups[gi];
                if g.gated_only {
                    for &bit in &g.lit_bits {
                        mask[bit / 64] |= 1 << (bit % 64);
                    }
                } else {
                    plain_groups[k].push(gi);
                }
            }
            let mask = BitMask::from_words(&mask);
            plain_lits[k] = (!mask.is_empty()).then_some(mask);
        }
        let union = |list: &[usize]| Skip::union(list.iter().map(|&gi| groups[gi].skip.as_ref()));
        let class_skip = std::array::from_fn(|k| union(&by_class[k]));
        let plain_skip = std::array::from_fn(|k| union(&plain_groups[k]));
        let chain_keeps_plain = chains
            .iter()
            .map(|c| !c.iter().any(|s| s.changes_plain_text()))
            .collect();
        let rules = rules
            .into_iter()
            .map(|r| CompiledRule {
                id: r.id,
                family: r.family,
                message: r.message,
                paranoia: r.paranoia,
                score: r.score,
                pattern: match r.op {
                    Operator::Regex(p) => Some(p),
                    _ => None,
                },
                finder: OnceLock::new(),
            })
            .collect();
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Compiled {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rules,
            chains,
            chain_parent,
            chain_trigger,
            chain_any_trigger,
            chain_keeps_plain,
            encoded_words,
            prefilter,
            gate_bits,
            anchor_bits,
            groups,
            by_class,
            plain_lits,
            plain_groups,
            class_skip,
            plain_skip,
            by_header: by_header.into_iter().collect(),
        })
    }
}

/// `Group::detector_gates` for one detector: its trigger bytes and the
/// gate bit of its trigger literals, if it has a trigger set (the
/// `_charset_` check has none: it is never gated).
fn detector_gate(
    d: Detector,
    bit_of: impl Fn(Detector, TriggerLits) -> Option<usize>,
) -> Option<(ByteSet, Option<usize>)> {
    if d == Detector::FormCharset {
        return None;
    }
    let (bytes, lits) = detector_trigger(d)?;
    match lits {
        TriggerLits::None => Some((bytes, None)),
        lits => Some((bytes, Some(bit_of(d, lits)?))),
    }
}

/// The (literal, gate bit) pairs without repeats, first occurrences kept
/// in order, compared with ASCII case ignored (the scan ignores it).
fn dedup_pairs(lits: Vec<Vec<u8>>, owners: Vec<usize>) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut seen = std::collections::HashSet::new();
    lits.into_iter()
        .zip(owners)
        .filter(|(l, bit)| seen.insert((l.to_ascii_lowercase(), *bit)))
        .unzip()
}

/// The next free gate bit of the literal scan.
fn next_bit(owners: &[usize]) -> usize {
    owners.last().map_or(0, |m| m + 1)
}

/// Interns a chain and all its prefixes (so every chain's parent exists).
fn intern(chains: &mut Vec<Vec<Transform>>, chain: &[Transform]) -> usize {
    for k in 1..chain.len() {
        intern_one(chains, &chain[..k]);
    }
    intern_one(chains, chain)
}

fn intern_one(chains: &mut Vec<Vec<Transform>>, chain: &[Transform]) -> usize {
    match chains.iter().position(|c| c == chain) {
        Some(i) => i,
        None => {
            chains.push(chain.to_vec());
            chains.len() - 1
        }
    }
}

/// `out`: the shared scan's literals and their gate bits, and the sets compiled so far.
fn build_group(
    rules: &[Rule],
    needs: &[Option<Need>],
    members: &Members,
    label: String,
    chain: usize,
    p: Pending,
    out: (&mut Vec<Vec<u8>>, &mut Vec<usize>, &mut SharedSets),
) -> Result<Group, WafError> {
    let (lits, owners, shared) = out;
    let err = |e: String| WafError::Compile {
        group: label.clone(),
        message: e,
    };
    // Three automata at most: patterns gated by literals only (plain text
    // holding none of them skips it), patterns gated by punctuation (and
    // perhaps literals), and patterns that need nothing useful.
    let (mut by_lits, mut by_bytes) = ((Need::default(), vec![]), (Need::default(), vec![]));
    let mut always = Vec::new();
    for &ri in &p.regexes {
        match (GateKind::of(needs[ri].as_ref()), needs[ri].clone()) {
            (GateKind::Lits, Some(n)) => {
                by_lits.0 = std::mem::take(&mut by_lits.0).union(n);
                by_lits.1.push(ri);
            }
            (_, Some(n)) => {
                by_bytes.0 = std::mem::take(&mut by_bytes.0).union(n);
                by_bytes.1.push(ri);
            }
            (_, None) => always.push(ri),
        }
    }
    if std::env::var_os("RAMPART_WAF_DEBUG").is_some() {
        let ids = |v: &[usize]| v.iter().map(|&i| rules[i].id).collect::<Vec<_>>();
        eprintln!(
            "group {label}: literal-gated {:?} byte-gated {:?} always {:?}",
            ids(&by_lits.1),
            ids(&by_bytes.1),
            ids(&always)
        );
    }
    let mut sets = Vec::with_capacity(3);
    let mut regex_set = |kind, idx| {
        let key = (chain, kind);
        regex_set(
            rules,
            members.get(&key).map_or(&[][..], Vec::as_slice),
            key,
            idx,
            shared,
        )
    };
    for (kind, (need, idx)) in [GateKind::Lits, GateKind::Bytes]
        .into_iter()
        .zip([by_lits, by_bytes])
    {
        if idx.is_empty() {
            continue;
        }
        let bit = (!need.lits.is_empty()).then(|| {
            let bit = next_bit(owners);
            for l in need.lits {
                lits.push(l);
                owners.push(bit);
            }
            bit
        });
        sets.push(Gated {
            gate: Some(Gate {
                bytes: need.bytes,
                lits: bit,
            }),
            set: regex_set(kind, idx).map_err(err)?,
        });
    }
    if !always.is_empty() {
        sets.push(Gated {
            gate: None,
            set: regex_set(GateKind::Always, always).map_err(err)?,
        });
    }
    let phrases = if p.phrases.is_empty() {
        None
    } else {
        let mut pats = Vec::new();
        let mut rule_of = Vec::new();
        for &ri in &p.phrases {
            if let Operator::Phrases(ps) = &rules[ri].op {
                for ph in ps {
                    pats.push(ph.as_bytes());
                    rule_of.push(ri);
                }
            }
        }
        let ac = ac_builder().build(&pats).map_err(|e| err(e.to_string()))?;
        // The same phrases gate the scan (both ignore ASCII case).
        let gate = next_bit(owners);
        for ph in pats {
            lits.push(ph.to_vec());
            owners.push(gate);
        }
        Some((PhraseSet { ac, rules: rule_of }, gate))
    };
    Ok(Group {
        chain,
        gated_only: p.detectors.iter().all(|(d, _)| d.needs_punctuation())
            && phrases.is_none()
            && sets.iter().all(|s| s.gate.is_some()),
        lit_bits: sets
            .iter()
            .filter_map(|s| s.gate.as_ref().and_then(|g| g.lits))
            .collect(),
        sets,
        phrases,
        needs_punctuation: p
            .detectors
            .iter()
            .map(|d| d.0.needs_punctuation())
            .collect(),
        detectors: p.detectors,
        detector_gates: Vec::new(),
        skip: None,
    })
}

fn ac_builder() -> AhoCorasickBuilder {
    let mut b = AhoCorasickBuilder::new();
    b.ascii_case_insensitive(true)
        .match_kind(AcKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA));
    b
}

/// A group's set of rules `idx` (ascending) of chain and gate kind `key`: the automaton over
/// `members` (every rule of that chain and kind, ascending, a superset of `idx`), compiled on
/// first use.
fn regex_set(
    rules: &[Rule],
    members: &[usize],
    key: (usize, GateKind),
    idx: Vec<usize>,
    shared: &mut SharedSets,
) -> Result<RegexSet, String> {
    let build = |list: &[usize]| {
        let pats: Vec<&str> = list
            .iter()
            .map(|&i| match &rules[i].op {
                Operator::Regex(p) => p.as_str(),
                _ => "",
            })
            .collect();
        multi_regex(&pats).map(|multi| {
            Arc::new(SharedRegex {
                multi,
                rules: list.to_vec(),
            })
        })
    };
    // A union the size limit refuses, or without a lazy DFA (a pattern the lazy DFA cannot
    // run: the PikeVM would answer for every group of the chain), is not used: each group of
    // that chain and kind gets its own automaton, as before (review-s15-waf F1, F2).
    let union = (shared.unions.entry(key))
        .or_insert_with(|| build(members).ok().filter(|r| r.multi.has_lazy_dfa()));
    if let Some(regex) = union {
        return Ok(RegexSet {
            regex: Arc::clone(regex),
            rules: idx,
        });
    }
    let mut own = idx.clone();
    own.dedup();
    let regex = match shared.lists.get(&own) {
        Some(r) => Arc::clone(r),
        None => {
            let r = build(&own)?;
            shared.lists.insert(own, Arc::clone(&r));
            r
        }
    };
    Ok(RegexSet { regex, rules: idx })
}

/// Classes whose plain tokens extraction counts without listing them
/// (`extract::plain_token`), and the classes looked up for such fields.
const TOKEN_CLASSES: [Class; 6] = [
    Class::Arg,
    Class::ArgName,
    Class::Cookie,
    Class::CookieName,
    Class::QueryArg,
    Class::IncludeArg,
];

/// The rules that read a token class and what each can match on a long
/// single-case word (`EncodedWords`), read off the loaded rules —
/// built-in and the operator's own — once, at load.
fn encoded_words(rules: &[Rule]) -> Option<EncodedWords> {
    let items = rules.iter().filter_map(|r| {
        let reads_tokens = r
            .targets
            .iter()
            .any(|t| matches!(t, TargetSel::Class(c) if TOKEN_CLASSES.contains(c)));
        if !reads_tokens {
            return None;
        }
        let item = match (&r.op, chain_on_words(&r.transforms)) {
            (Operator::Detector(_), _) => return None,
            (_, None) => Readable::Any,
            (Operator::Regex(p), Some(folds)) => Readable::Regex { pattern: p, folds },
            // Phrases ignore ASCII case.
            (Operator::Phrases(list), Some(_)) => {
                return Some(list.iter().map(|p| (r.id, Readable::Phrase(p))).collect());
            }
        };
        Some(vec![(r.id, item)])
    });
    EncodedWords::build(items.flatten())
}

/// What a chain makes of a plain token `EncodedWords` is asked of (a
/// single-case word of letters, digits, `_`, `-`; a dotted id, any case):
/// the token itself (`Some(false)`), the word in lower case
/// (`Some(true)`), or something else (`None`). A step whose trigger bytes
/// hold none of a word's bytes leaves it as it is; `lowercase` and
/// `cmdline` rewrite only its upper-case letters, to lower case (their
/// other trigger bytes are no token bytes); `base64` decodes neither (a
/// value needs both cases and no `.` to be decoded: `transform::base64`;
/// a mixed-case word is read whatever the rules, never asked).
fn chain_on_words(chain: &[Transform]) -> Option<bool> {
    let mut folds = false;
    for &step in chain {
        if step == Transform::Base64 {
            continue;
        }
        // The bytes of a token `EncodedWords` is asked of (its alphabet).
        let word_byte = |b: &u8| {
            crate::extract::ENCODED_ALPHABET
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(b))
        };
        let hits: Vec<u8> = step
            .trigger_bytes()?
            .iter()
            .copied()
            .filter(word_byte)
            .collect();
        if hits.is_empty() {
            continue;
        }
        let lowers = matches!(step, Transform::Lowercase | Transform::CmdLine);
        if !(lowers && hits.iter().all(u8::is_ascii_uppercase)) {
            return None;
        }
        folds = true;
    }
    Some(folds)
}

#[cfg(test)]
mod tests {
    use super::GateKind;
    use std::sync::Arc;

    /// Two groups' sets share one automaton exactly when their rules have the same transform
    /// chain and gate kind; it holds every regex rule of that chain and kind once, ascending,
    /// and each group's rules among them.
    #[test]
    fn sets_of_one_chain_and_gate_kind_share_one_automaton() {
        let rules = super::super::RuleSet::builtin().unwrap();
        let c = &rules.compiled;
        let sets: Vec<_> = (c.groups.iter())
            .flat_map(|g| g.sets.iter().map(move |s| (g.chain, s)))
            .collect();
        let kind = |s: &super::Gated| match &s.gate {
            None => GateKind::Always,
            Some(g) if g.bytes == super::ByteSet::default() => GateKind::Lits,
            Some(_) => GateKind::Bytes,
        };
        let (mut shared, mut fewer) = (0, 0);
        for (i, &(chain_a, a)) in sets.iter().enumerate() {
            let all = &a.set.regex.rules;
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
            assert_eq!(all.len(), a.set.regex.multi.pattern_len());
            assert!(a.set.rules.iter().all(|r| all.binary_search(r).is_ok()));
            assert!(a.set.rules.windows(2).all(|w| w[0] <= w[1]));
            fewer += usize::from(a.set.rules.len() < all.len());
            for &(chain_b, b) in &sets[i + 1..] {
                let same = Arc::ptr_eq(&a.set.regex, &b.set.regex);
                let key = (chain_a, kind(a)) == (chain_b, kind(b));
                assert_eq!(same, key, "{:?} / {:?}", a.set.rules, b.set.rules);
                shared += usize::from(same);
            }
        }
        // Every regex rule is in exactly one automaton.
        let mut seen = std::collections::HashSet::new();
        let mut patterns = 0;
        for (_, s) in &sets {
            if seen.insert(Arc::as_ptr(&s.set.regex)) {
                patterns += s.set.regex.rules.len();
            }
        }
        let regex_rules = (c.rules.iter()).filter(|r| r.pattern.is_some()).count();
        assert_eq!(patterns, regex_rules);
        assert!(
            shared > 0 && fewer > 0,
            "shared {shared}, smaller groups {fewer}"
        );
    }

    /// An operator rule the lazy DFA cannot run (a Unicode word boundary) leaves every group
    /// that does not hold it on a lazy DFA: its chain's union is not used.
    #[test]
    fn a_rule_without_lazy_dfa_keeps_the_other_groups_on_one() {
        let extra = "family = \"protocol\"\n[[rule]]\nid = 99001\nmessage = \"m\"\nseverity = \"notice\"\ntargets = [\"header:x-probe\", \"args\"]\ntransforms = [\"url_decode\", \"remove_nulls\", \"lowercase\"]\nregex = '(?u:\\b)zz9q'\n";
        let rules = super::super::RuleSet::builtin_and(&[("probe.toml", extra)]).unwrap();
        let c = &rules.compiled;
        let bad = c.rules.iter().position(|r| r.id == 99001).unwrap();
        let (mut with, mut without) = (0, 0);
        for g in &c.groups {
            for s in &g.sets {
                if s.set.rules.contains(&bad) {
                    with += 1;
                    assert!(!s.set.regex.multi.has_lazy_dfa());
                } else {
                    without += 1;
                    assert!(s.set.regex.multi.has_lazy_dfa(), "{:?}", s.set.rules);
                }
            }
        }
        assert!(with > 0 && without > 0, "{with} / {without}");
    }
}
