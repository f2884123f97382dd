//! How rule regexes are read: one byte-oriented syntax for every pattern, and
//! the builder for one rule's own regex. Below both the rule loader (which
//! checks each pattern against its rule) and the engine (which compiles them).

use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;

/// Byte-oriented, ASCII-class syntax: values are bytes, not always UTF-8.
pub(crate) fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// The configuration of one rule's own regex.
fn single_config() -> meta::Config {
    Regex::config().utf8_empty(false)
}

/// One rule's own regex, used to find the fragment once its group matched.
pub(crate) fn single_regex(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(single_config())
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// What building [`single_regex`] refuses, with its messages, checked without building it:
/// the pattern parses, and the forward NFA (with its captures) and the reverse NFA that
/// `meta::Regex` compiles from it stay within its size limit. The rest of that regex (DFAs,
/// literal prefilter, one-pass and backtracking engines) cannot fail its build; building it for
/// every rule at load allocated and freed 42 MB over the built-in rules and ran code an idle
/// edge never needs (the regex itself is built on the rule's first match). A pattern of
/// nothing but literals `meta::Regex` may answer with a literal search, without an NFA: when
/// an NFA passes the size limit, the regex is built and its answer taken, so what is refused
/// is exactly what building it refuses.
pub(crate) fn check(pattern: &str) -> Result<(), String> {
    let meta = single_config();
    let hir = syntax::parse_with(pattern, &syntax_config())
        .map_err(|_| "error parsing pattern 0".to_string())?;
    let forward = thompson::Config::new()
        .utf8(meta.get_utf8_empty())
        .nfa_size_limit(meta.get_nfa_size_limit())
        .shrink(false)
        .which_captures(meta.get_which_captures());
    let reverse = forward
        .clone()
        .which_captures(WhichCaptures::None)
        .reverse(true);
    for config in [forward, reverse] {
        if thompson::Compiler::new()
            .configure(config)
            .build_from_hir(&hir)
            .is_err()
        {
            return single_regex(pattern).map(|_| ());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `check` refuses what building the rule's regex refuses, with the same message, and
    /// takes every built-in rule's pattern.
    #[test]
    fn check_refuses_what_building_the_regex_refuses() {
        let builtin = crate::rules::parse_all(&crate::rules::builtin_texts()).unwrap();
        let mut patterns: Vec<String> = builtin
            .into_iter()
            .filter_map(|r| match r.op {
                crate::rules::Operator::Regex(p) => Some(p),
                _ => None,
            })
            .collect();
        assert!(patterns.len() > 100, "{}", patterns.len());
        let bad = [
            "a(b",
            "[z-a]",
            "x{2,1}",
            r"\p{Greek}",
            "(?P<n>a)(?P<n>b)",
            r"\xZZ",
            // NFAs past the size limit: the forward one, and one with captures.
            "(?:[a-z0-9]{100}){100}{20}",
            "(?:(a)(b)(c)[0-9]{50}){200}{20}",
        ];
        patterns.extend(bad.iter().map(|s| s.to_string()));
        patterns
            .extend(["", "(?i)select.+from", r"\bunion\b", "^$", "[^\x00-\x7f]"].map(String::from));
        let mut refused = 0;
        for p in &patterns {
            let want = super::single_regex(p).map(|_| ());
            refused += usize::from(want.is_err());
            assert_eq!(super::check(p), want, "{p:?}");
        }
        assert_eq!(refused, bad.len(), "every bad pattern refused");
    }
}
