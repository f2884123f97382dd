//! Regex-automata building blocks shared by the rule sets (`engine`) and the
//! long-word reader (`extract::encoded`): a leaf module, so neither of those
//! depends on the other for them.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::MatchKind;
use regex_syntax::hir::Hir;

pub(crate) type CachePool<T> =
    Pool<T, Box<dyn Fn() -> T + Send + Sync + std::panic::RefUnwindSafe + std::panic::UnwindSafe>>;

/// A lazy DFA over `nfa` whose per-thread cache may grow to `capacity` bytes, with the pool of
/// those caches; `None` when the automaton cannot work within that capacity.
pub(crate) fn lazy_dfa(
    nfa: &thompson::NFA,
    kind: MatchKind,
    capacity: usize,
) -> Option<(DFA, CachePool<Cache>)> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(kind)
                .cache_capacity(capacity)
                .minimum_cache_clear_count(None),
        )
        .build_from_nfa(nfa.clone())
        .ok()
        .map(|dfa| {
            let d = dfa.clone();
            let pool: CachePool<Cache> = Pool::new(Box::new(move || d.create_cache()));
            (dfa, pool)
        })
}

/// `pattern` as bytes-mode HIR (the rules' regexes are byte regexes), or `None`.
pub(crate) fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}
