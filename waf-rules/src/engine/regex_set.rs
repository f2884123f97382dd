//! A multi-pattern regex (the automaton of one transform chain and gate kind, shared by its
//! groups: `compile::RegexSet`): which of its patterns match anywhere in a value.
//!
//! Only that question is asked of it (the matched text comes from each rule's own fragment
//! finder), so it is one forward lazy DFA over one NFA without capture states, with a search
//! cache per thread. `meta::Regex` would also build a reverse NFA and a literal prefilter per
//! set (to report where a match starts, and to skip ahead): 44 % and 43 % of the sets' heap
//! here, neither used by this search, and the group's literals already gate the scan
//! (docs/measurements/proxy.md, memory).

use crate::automaton::{lazy_dfa, CachePool};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, pikevm::PikeVM, WhichCaptures};
use regex_automata::util::{pool::Pool, syntax};
use regex_automata::{Input, MatchKind, PatternSet};

/// Most a thread's lazy-DFA cache for one set may grow to before it is cleared and refilled.
const CACHE_CAPACITY: usize = 4 << 20;

/// Patterns, each reported when it matches anywhere.
pub(crate) struct MultiRegex {
    /// None when the lazy DFA cannot be built (its minimum cache would exceed the capacity):
    /// the PikeVM answers alone.
    lazy: Option<(DFA, CachePool<Cache>)>,
    /// Answers when the lazy DFA cannot (it never gives up as configured; kept so a search
    /// can never go unanswered).
    pikevm: PikeVM,
    pikevm_caches: CachePool<regex_automata::nfa::thompson::pikevm::Cache>,
}

impl std::fmt::Debug for MultiRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRegex")
            .field("patterns", &self.pattern_len())
            .field("lazy_dfa", &self.lazy.is_some())
            .finish()
    }
}

impl MultiRegex {
    pub(crate) fn new(patterns: &[&str], syntax: syntax::Config) -> Result<MultiRegex, String> {
        let nfa = thompson::Compiler::new()
            .syntax(syntax)
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .which_captures(WhichCaptures::None)
                    .nfa_size_limit(Some(64 << 20)),
            )
            .build_many(patterns)
            .map_err(|e| e.to_string())?;
        let lazy = lazy_dfa(&nfa, MatchKind::All, CACHE_CAPACITY);
        let pikevm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::All))
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        let p = pikevm.clone();
        let pikevm_caches: CachePool<_> = Pool::new(Box::new(move || p.create_cache()));
        Ok(MultiRegex {
            lazy,
            pikevm,
            pikevm_caches,
        })
    }

    /// Whether the lazy DFA answers (false: the PikeVM alone, much slower).
    pub(crate) fn has_lazy_dfa(&self) -> bool {
        self.lazy.is_some()
    }

    pub(crate) fn pattern_len(&self) -> usize {
        self.pikevm.pattern_len()
    }

    /// Adds to `patset` every pattern that matches somewhere in `input`.
    pub(crate) fn which_overlapping_matches(&self, input: &Input<'_>, patset: &mut PatternSet) {
        if let Some((dfa, pool)) = &self.lazy {
            if dfa
                .try_which_overlapping_matches(&mut pool.get(), input, patset)
                .is_ok()
            {
                return;
            }
        }
        self.pikevm
            .which_overlapping_matches(&mut self.pikevm_caches.get(), input, patset);
    }

    /// Heap bytes of the automata (the NFA is shared by both engines; caches not included).
    pub(crate) fn memory_usage(&self) -> usize {
        self.pikevm.get_nfa().memory_usage()
            + self.lazy.as_ref().map_or(0, |(dfa, _)| dfa.memory_usage())
    }

    /// Heap bytes of one new search cache (what each thread that searches this set starts
    /// with), and whether the lazy DFA answers (false: the PikeVM alone).
    pub(crate) fn fresh_cache(&self) -> (usize, bool) {
        match &self.lazy {
            Some((dfa, _)) => (dfa.create_cache().memory_usage(), true),
            None => (self.pikevm.create_cache().memory_usage(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::RuleSet;
    use regex_automata::{meta::Regex, Input, MatchKind, PatternSet};

    /// Every group's set answers exactly as a `meta::Regex` over its own rules' patterns (what
    /// the sets were before they shared one automaton per chain and gate kind) on values that
    /// reach the rule families: the same rules, in the same order, as many times.
    #[test]
    fn sets_report_the_patterns_meta_regex_reports() {
        let rules = RuleSet::builtin().unwrap();
        let c = &rules.compiled;
        let values: &[&[u8]] = &[
            b"1' OR 1=1-- ",
            b"<script>alert(1)</script>",
            b"<img src=x onerror=alert(1)>",
            b"../../../etc/passwd",
            b";cat /etc/passwd",
            b"${jndi:ldap://evil/a}",
            b"php://filter/convert.base64-encode/resource=index",
            b"http://169.254.169.254/latest/meta-data/",
            b"1 UNION SELECT username,password FROM users",
            b"{{7*7}}",
            b"Mozilla/5.0 (X11; Linux x86_64) sqlmap/1.7",
            b"plain words and a number 42",
            b"\xff\xfe binary \x00 bytes",
        ];
        let (mut checked, mut others) = (0, 0);
        for g in &c.groups {
            for s in &g.sets {
                let pats: Vec<&str> = s
                    .set
                    .rules
                    .iter()
                    .map(|&ri| c.rules[ri].pattern.as_deref().unwrap())
                    .collect();
                let meta = Regex::builder()
                    .syntax(crate::syntax::syntax_config())
                    .configure(Regex::config().match_kind(MatchKind::All).utf8_empty(false))
                    .build_many(&pats)
                    .unwrap();
                let shared = &s.set.regex;
                for v in values {
                    let mut want = PatternSet::new(pats.len());
                    meta.which_overlapping_matches(&Input::new(v), &mut want);
                    let want: Vec<usize> = want.iter().map(|p| s.set.rules[p.as_usize()]).collect();
                    let mut got = PatternSet::new(shared.multi.pattern_len());
                    shared
                        .multi
                        .which_overlapping_matches(&Input::new(v), &mut got);
                    // What `inspect::scan_regexes` records, in its order.
                    let mut recorded = Vec::new();
                    for p in got.iter() {
                        let ri = shared.rules[p.as_usize()];
                        let n = s.set.rules.iter().filter(|&&r| r == ri).count();
                        recorded.extend(std::iter::repeat_n(ri, n));
                    }
                    assert_eq!(
                        want,
                        recorded,
                        "{pats:?} on {:?}",
                        String::from_utf8_lossy(v)
                    );
                    checked += usize::from(!want.is_empty());
                    others += usize::from(got.len() > want.len());
                }
            }
        }
        assert!(
            checked > 20,
            "only {checked} set/value pairs matched anything"
        );
        // The shared automata do report other groups' rules, which the groups ignore.
        assert!(others > 0, "no set/value pair matched another group's rule");
    }
}
