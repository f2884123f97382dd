//! Errors raised while loading and compiling rules.

use std::path::PathBuf;

/// A rule file or rule set that cannot be used. Each variant says where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WafError {
    /// A rule file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rule file is not valid TOML or has unknown / missing fields.
    #[error("{file}:{line}: {rule}{message}")]
    Syntax {
        file: String,
        line: usize,
        /// "rule N: " when the error is inside a known rule, else empty.
        rule: String,
        message: String,
    },
    /// A rule is well-formed TOML but invalid (bad regex, unknown target...).
    #[error("{file}:{line}: rule {rule_id}: {message}")]
    Rule {
        file: String,
        line: usize,
        rule_id: u32,
        message: String,
    },
    /// The same rule id appears twice.
    #[error("{file}:{line}: rule {rule_id}: duplicate rule id (first defined in {first})")]
    DuplicateId {
        file: String,
        line: usize,
        rule_id: u32,
        first: String,
    },
    /// A directory holds no rule files.
    #[error("{0}: no *.toml rule files found")]
    NoRules(PathBuf),
    /// The compiled automata exceeded a size limit.
    #[error("compiling rule group {group}: {message}")]
    Compile { group: String, message: String },
}
