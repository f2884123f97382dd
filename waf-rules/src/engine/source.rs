//! Where a rule set comes from, and reuse of a compiled one on reload: compiling the built-in
//! rules takes ~0.1–0.3 s and ~8 MB, so a config reload that leaves the rules alone keeps the
//! generation before's compiled set (one `Arc`) instead of holding two until the old drains.

use super::RuleSet;
use crate::error::WafError;
use crate::rules::{self, Texts};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

/// The rules a rule set is compiled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// The rules shipped inside the binary.
    Builtin,
    /// Every `*.toml` file in a directory, read anew at each load.
    Dir(PathBuf),
}

/// Fingerprint of rule files: names and texts, in order. SipHash with fixed keys: the files
/// come from the operator, so only an accidental equality matters, and 64 bits make that
/// negligible.
pub(super) fn digest(texts: &Texts) -> u64 {
    #[allow(deprecated)] // SipHasher: stable output, no random keys; not for untrusted input.
    let mut h = std::hash::SipHasher::new();
    for (name, text) in texts {
        name.hash(&mut h);
        text.hash(&mut h);
    }
    h.finish()
}

impl RuleSet {
    /// Loads `source`, or returns `previous` itself when it was compiled from the very same rule
    /// files (same names, same texts): a reload that leaves the rules alone shares the compiled
    /// automata with the generation before. A directory is read anew each time, so an edited
    /// rule file is always compiled.
    pub fn load_or_reuse(
        source: &RuleSource,
        previous: Option<&Arc<RuleSet>>,
    ) -> Result<Arc<RuleSet>, WafError> {
        let texts = match source {
            RuleSource::Builtin => rules::builtin_texts(),
            RuleSource::Dir(dir) => rules::read_dir(dir)?,
        };
        match previous {
            Some(p) if p.digest == digest(&texts) => Ok(Arc::clone(p)),
            _ => Self::from_texts(&texts).map(Arc::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "family = \"sqli\"\n[[rule]]\nid = 900001\nmessage = \"m\"\nseverity = \"critical\"\ntargets = [\"args\"]\nregex = \"union\\\\s+select\"\n";

    #[test]
    fn unchanged_rules_are_shared_and_changed_ones_compiled() {
        let first = RuleSet::load_or_reuse(&RuleSource::Builtin, None).unwrap();
        let again = RuleSet::load_or_reuse(&RuleSource::Builtin, Some(&first)).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged builtin rules compiled again"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, RULE).unwrap();
        let source = RuleSource::Dir(dir.path().to_path_buf());
        let from_dir = RuleSet::load_or_reuse(&source, Some(&first)).unwrap();
        assert!(!Arc::ptr_eq(&first, &from_dir), "other rules shared");
        assert_eq!(from_dir.len(), 1);
        let same = RuleSet::load_or_reuse(&source, Some(&from_dir)).unwrap();
        assert!(
            Arc::ptr_eq(&from_dir, &same),
            "unchanged rule dir compiled again"
        );

        std::fs::write(&file, RULE.replace("900001", "900002")).unwrap();
        let edited = RuleSet::load_or_reuse(&source, Some(&same)).unwrap();
        assert!(
            !Arc::ptr_eq(&same, &edited),
            "an edited rule file was not compiled"
        );
        assert_eq!(edited.rules().next().map(|r| r.0), Some(900002));
        // A broken file is an error, not the previous set.
        std::fs::write(&file, "not toml [").unwrap();
        assert!(RuleSet::load_or_reuse(&source, Some(&edited)).is_err());
    }
}
