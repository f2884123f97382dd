#![forbid(unsafe_code)]
//! Rampart WAF engine: native signature rules, request normalization,
//! one-pass multi-pattern matching and anomaly scoring.
//!
//! Build a [`RuleSet`] once ([`RuleSet::builtin`] or [`RuleSet::load_dir`]),
//! share it in an `Arc`, and call [`RuleSet::inspect`] per request.

mod automaton;
mod detect;
mod engine;
mod error;
mod extract;
mod family;
mod policy;
mod request;
mod rules;
mod syntax;
#[cfg(test)]
mod test_support;
mod transform;
mod verdict;
mod word_index;

#[doc(hidden)]
pub use engine::MemoryPart;
pub use engine::{RuleSet, RuleSource};
pub use error::WafError;
pub use family::Family;
pub use policy::{Exclusion, Limits, Policy, PolicyError};
pub use request::Request;
pub use verdict::{RuleMatch, Verdict};

/// Decoders and body parsers, exposed for fuzzing and tooling. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::detect::{
        log4j::is_log4j,
        path::is_path_attack,
        shell::{is_command_line, is_shell_injection},
        sqli::is_sqli,
        xss::{is_html_injection, is_xss},
    };
    pub use crate::extract::fuzz_extract;
    pub use crate::transform::fuzz_all_transforms;
}
