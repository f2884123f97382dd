//! The compiled rule set: rules grouped by (target, transform chain), each
//! group's regexes scanned by up to three multi-pattern automata (one per gate
//! kind, each shared by every group of its chain: `compile.rs`) behind an
//! aho-corasick prefilter.

mod cache;
mod compile;
mod inspect;
mod memory;
pub(crate) mod prefilter;
mod quiet;
pub(crate) mod regex_set;
mod source;
mod values;

use crate::error::WafError;
use crate::rules;
use std::path::Path;

use compile::Compiled;
#[doc(hidden)]
pub use memory::MemoryPart;
pub use source::RuleSource;

/// A compiled, immutable rule set. `Send + Sync`: share it in an `Arc` and
/// swap the `Arc` on reload.
#[derive(Debug)]
pub struct RuleSet {
    compiled: Compiled,
    /// Request-line values on which no loaded rule fires (`inspect::CleanLine`).
    clean: inspect::CleanLine,
    /// Fingerprint of the rule texts it was compiled from (`RuleSet::load_or_reuse`).
    digest: u64,
}

impl RuleSet {
    /// The default rules shipped inside the binary.
    pub fn builtin() -> Result<RuleSet, WafError> {
        Self::from_texts(&rules::builtin_texts())
    }

    /// Every `*.toml` rule file in `dir`. Errors name the file, line and rule id.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, WafError> {
        Self::from_texts(&rules::read_dir(dir)?)
    }

    fn from_texts(texts: &rules::Texts) -> Result<RuleSet, WafError> {
        let mut rs = RuleSet {
            compiled: Compiled::new(rules::parse_all(texts)?)?,
            clean: inspect::CleanLine::default(),
            digest: source::digest(texts),
        };
        rs.clean = rs.clean_line();
        Ok(rs)
    }

    /// The rules' reading of long single-case words (`extract::plain_token`).
    #[cfg(test)]
    pub(crate) fn encoded_words(&self) -> Option<&crate::extract::EncodedWords> {
        self.compiled.encoded_words.as_ref()
    }

    /// A rule set of the built-in rules and `extra` rule files (name, text).
    #[cfg(test)]
    pub(crate) fn builtin_and(extra: &[(&str, &str)]) -> Result<RuleSet, WafError> {
        let mut texts = rules::builtin_texts();
        for (name, text) in extra {
            texts.push((name.to_string(), std::borrow::Cow::Owned(text.to_string())));
        }
        Self::from_texts(&texts)
    }

    /// The request line's clean values: methods, versions, paths (`inspect::CleanLine`).
    #[cfg(test)]
    pub(crate) fn clean_line_values(&self) -> [Vec<String>; 3] {
        self.clean.values()
    }

    /// Number of rules loaded.
    pub fn len(&self) -> usize {
        self.compiled.rules.len()
    }

    /// True if no rule is loaded.
    pub fn is_empty(&self) -> bool {
        self.compiled.rules.is_empty()
    }

    /// (id, family, paranoia, score, message) of every rule, for listings.
    pub fn rules(&self) -> impl Iterator<Item = (u32, crate::Family, u8, u32, &str)> + '_ {
        self.compiled
            .rules
            .iter()
            .map(|r| (r.id, r.family, r.paranoia, r.score, &*r.message))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod worst_case;
