//! How rule regexes are read: one byte-oriented syntax for every pattern, and
//! the builder for one rule's own regex. Below both the rule loader (which
//! checks each pattern against its rule) and the engine (which compiles them).

use regex_automata::meta::Regex;
use regex_automata::util::syntax;

/// Byte-oriented, ASCII-class syntax: values are bytes, not always UTF-8.
pub(crate) fn syntax_config() -> syntax::Config {
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
