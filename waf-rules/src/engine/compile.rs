//! Builds the automata once, at load time.

use super::prefilter::{needed_bytes, required_literals, ByteSet};
use crate::detect::Detector;
use crate::error::WafError;
use crate::extract::Class;
use crate::rules::{Operator, Rule, TargetSel};
use crate::transform::Transform;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcKind};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::MatchKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Byte-oriented, ASCII-class syntax: values are bytes, not always UTF-8.
fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// One rule's own regex, used to find the fragment once its group matched.
pub(crate) fn single_regex(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(Regex::config().utf8_empty(false))
        .build(pattern)
        .map_err(|e| e.to_string())
}

fn multi_regex(patterns: &[&str]) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(
            Regex::config()
                .match_kind(MatchKind::All)
                .utf8_empty(false)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(4 << 20),
        )
        .build_many(patterns)
        .map_err(|e| e.to_string())
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

/// A multi-pattern regex with the rule index of each pattern.
#[derive(Debug)]
pub(crate) struct RegexSet {
    pub regex: Regex,
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
    /// Patterns with required literals, scanned only when a literal occurs.
    pub filtered: Option<RegexSet>,
    /// Required literals of the filtered patterns (one must occur).
    pub literals: Vec<Vec<u8>>,
    /// Patterns without a useful literal, scanned unless the value lacks
    /// every byte they need.
    /// With the bytes one of which a value must hold for the set to match
    /// (None: always scan).
    pub unfiltered: Vec<(Option<ByteSet>, RegexSet)>,
    pub phrases: Option<PhraseSet>,
    pub detectors: Vec<(Detector, usize)>,
    /// Only literal- or punctuation-gated patterns: plain text can skip it
    /// unless one of its literals occurs.
    pub gated_only: bool,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub rules: Vec<CompiledRule>,
    pub chains: Vec<Vec<Transform>>,
    /// For each chain: the chain one step shorter (None for one step) and
    /// its last step, so a value is decoded once and shared by all chains
    /// that start the same way.
    pub chain_parent: Vec<Option<usize>>,
    pub groups: Vec<Group>,
    /// One automaton over every group's required literals; pattern -> group.
    pub prefilter: Option<(AhoCorasick, Vec<usize>)>,
    /// Group indexes per target class.
    pub by_class: [Vec<usize>; Class::COUNT],
    /// Group indexes for one named header.
    pub by_header: HashMap<String, Vec<usize>>,
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
        let mut by_class: [Vec<usize>; Class::COUNT] = Default::default();
        let mut by_header: HashMap<String, Vec<usize>> = HashMap::new();
        for ((target, chain), p) in pending {
            let label = format!("{target:?} {:?}", chains[chain]);
            let group = build_group(&rules, label, chain, p)?;
            let gi = groups.len();
            groups.push(group);
            match target {
                TargetSel::Class(c) => by_class[c.index()].push(gi),
                TargetSel::Header(h) => by_header.entry(h).or_default().push(gi),
            }
        }
        let mut lits: Vec<&[u8]> = Vec::new();
        let mut owners = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            for l in &g.literals {
                lits.push(l);
                owners.push(gi);
            }
        }
        if std::env::var_os("RAMPART_WAF_DEBUG").is_some() {
            let mut l: Vec<String> = lits
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect();
            l.sort();
            l.dedup();
            eprintln!("literals ({}): {:?}", l.len(), l);
        }
        let prefilter = if lits.is_empty() {
            None
        } else {
            let ac = ac_builder().build(lits).map_err(|e| WafError::Compile {
                group: "prefilter".into(),
                message: e.to_string(),
            })?;
            Some((ac, owners))
        };
        let chain_parent = chains
            .iter()
            .map(|c| {
                (c.len() > 1)
                    .then(|| chains.iter().position(|p| p[..] == c[..c.len() - 1]))
                    .flatten()
            })
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
        Ok(Compiled {
            rules,
            chains,
            chain_parent,
            prefilter,
            groups,
            by_class,
            by_header,
        })
    }
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

fn build_group(rules: &[Rule], label: String, chain: usize, p: Pending) -> Result<Group, WafError> {
    let err = |e: String| WafError::Compile {
        group: label.clone(),
        message: e,
    };
    let mut with_lits: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    let mut without: Vec<usize> = Vec::new();
    for &ri in &p.regexes {
        if let Operator::Regex(pat) = &rules[ri].op {
            match required_literals(pat) {
                Some(l) => with_lits.push((ri, l)),
                None => without.push(ri),
            }
        }
    }
    let literals: Vec<Vec<u8>> = with_lits
        .iter()
        .flat_map(|(_, l)| l.iter().cloned())
        .collect();
    let filtered = if with_lits.is_empty() {
        None
    } else {
        Some(regex_set(rules, with_lits.iter().map(|(r, _)| *r).collect()).map_err(err)?)
    };
    // Patterns without literals are split in two: those that need a byte
    // plain text never has (punctuation, quotes, brackets, slashes...) run
    // only on values holding one of those bytes; the rest always run.
    let mut punct: (ByteSet, Vec<usize>) = (ByteSet::default(), Vec::new());
    let mut rest: Vec<usize> = Vec::new();
    for &ri in &without {
        let Operator::Regex(pat) = &rules[ri].op else {
            continue;
        };
        match needed_bytes(pat).filter(|n| !n.intersects(&ByteSet::plain_text())) {
            Some(n) => {
                punct.0.union(&n);
                punct.1.push(ri);
            }
            None => rest.push(ri),
        }
    }
    if std::env::var_os("RAMPART_WAF_DEBUG").is_some() {
        let ids = |v: &[usize]| v.iter().map(|&i| rules[i].id).collect::<Vec<_>>();
        eprintln!(
            "group {label}: literal-gated {:?} punct-gated {:?} always {:?}",
            with_lits
                .iter()
                .map(|(i, _)| rules[*i].id)
                .collect::<Vec<_>>(),
            ids(&punct.1),
            ids(&rest)
        );
    }
    let mut unfiltered = Vec::with_capacity(2);
    if !punct.1.is_empty() {
        unfiltered.push((Some(punct.0), regex_set(rules, punct.1).map_err(err)?));
    }
    if !rest.is_empty() {
        unfiltered.push((None, regex_set(rules, rest).map_err(err)?));
    }
    let phrases = if p.phrases.is_empty() {
        None
    } else {
        let mut pats = Vec::new();
        let mut owners = Vec::new();
        for &ri in &p.phrases {
            if let Operator::Phrases(ps) = &rules[ri].op {
                for ph in ps {
                    pats.push(ph.as_bytes());
                    owners.push(ri);
                }
            }
        }
        let ac = ac_builder().build(pats).map_err(|e| err(e.to_string()))?;
        Some(PhraseSet { ac, rules: owners })
    };
    Ok(Group {
        chain,
        filtered,
        literals,
        gated_only: p.detectors.is_empty()
            && phrases.is_none()
            && unfiltered.iter().all(|(need, _)| need.is_some()),
        unfiltered,
        phrases,
        detectors: p.detectors,
    })
}

fn ac_builder() -> AhoCorasickBuilder {
    let mut b = AhoCorasickBuilder::new();
    b.ascii_case_insensitive(true)
        .match_kind(AcKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA));
    b
}

fn regex_set(rules: &[Rule], idx: Vec<usize>) -> Result<RegexSet, String> {
    let pats: Vec<&str> = idx
        .iter()
        .map(|&i| match &rules[i].op {
            Operator::Regex(p) => p.as_str(),
            _ => "",
        })
        .collect();
    let regex = multi_regex(&pats).map_err(|e| e.to_string())?;
    Ok(RegexSet { regex, rules: idx })
}
