//! The compiled rule set: rules grouped by (target, transform chain), each
//! group one multi-pattern automaton behind an aho-corasick prefilter.

mod cache;
mod compile;
mod inspect;
mod prefilter;
mod values;

use crate::error::WafError;
use crate::rules::{self, Rule};
use std::path::Path;

pub(crate) use compile::single_regex;
use compile::Compiled;

/// A compiled, immutable rule set. `Send + Sync`: share it in an `Arc` and
/// swap the `Arc` on reload.
#[derive(Debug)]
pub struct RuleSet {
    compiled: Compiled,
}

impl RuleSet {
    /// The default rules shipped inside the binary.
    pub fn builtin() -> Result<RuleSet, WafError> {
        Self::from_rules(rules::load_builtin()?)
    }

    /// Every `*.toml` rule file in `dir`. Errors name the file, line and rule id.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, WafError> {
        Self::from_rules(rules::load_dir(dir)?)
    }

    fn from_rules(rules: Vec<Rule>) -> Result<RuleSet, WafError> {
        Ok(RuleSet {
            compiled: Compiled::new(rules)?,
        })
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
