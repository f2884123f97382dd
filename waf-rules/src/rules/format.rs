//! The rule file format. One file per family:
//!
//! ```toml
//! family = "sqli"
//!
//! [[rule]]
//! id = 942001
//! message = "SQL tautology after a quote"
//! paranoia = 1                 # 1-4, default 1
//! severity = "critical"        # critical=5 error=4 warning=3 notice=2
//! targets = ["args", "cookies", "header:referer"]
//! transforms = ["url_decode", "lowercase"]
//! regex = '''...'''            # exactly one of regex / phrases / detector
//! ```

use crate::detect::Detector;
use crate::extract::Class;
use crate::family::Family;
use crate::transform::Transform;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    pub family: Family,
    #[serde(default)]
    pub rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    pub id: toml::Spanned<u32>,
    pub message: String,
    #[serde(default = "default_paranoia")]
    pub paranoia: u8,
    pub severity: Severity,
    pub targets: Vec<String>,
    #[serde(default)]
    pub transforms: Vec<String>,
    pub regex: Option<String>,
    pub phrases: Option<Vec<String>>,
    pub detector: Option<String>,
    /// Overrides the file's family (rare: a scanner rule in another file).
    pub family: Option<Family>,
}

fn default_paranoia() -> u8 {
    1
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub(crate) fn score(self) -> u32 {
        match self {
            Severity::Critical => 5,
            Severity::Error => 4,
            Severity::Warning => 3,
            Severity::Notice => 2,
        }
    }
}

/// Which fields a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TargetSel {
    Class(Class),
    /// One header by (lowercase) name.
    Header(String),
}

impl TargetSel {
    pub(crate) fn parse(s: &str) -> Option<Vec<TargetSel>> {
        let one = |c| Some(vec![TargetSel::Class(c)]);
        match s {
            "method" => one(Class::Method),
            "version" => one(Class::Version),
            "method_with_body" => one(Class::MethodWithBody),
            "path" => one(Class::Path),
            "path_segments" => one(Class::PathSegment),
            "args" => one(Class::Arg),
            "args_names" => one(Class::ArgName),
            "query_args" => one(Class::QueryArg),
            "include_args" => one(Class::IncludeArg),
            "cookies" => one(Class::Cookie),
            "cookies_names" => one(Class::CookieName),
            "headers" => one(Class::Header),
            "filenames" => one(Class::Filename),
            "body" => one(Class::RawBody),
            "xml" => one(Class::XmlRaw),
            _ => {
                let name = s.strip_prefix("header:")?;
                (!name.is_empty()).then(|| vec![TargetSel::Header(name.to_ascii_lowercase())])
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Operator {
    Regex(String),
    Phrases(Vec<String>),
    Detector(Detector),
}

/// A validated rule, ready to compile.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub id: u32,
    pub family: Family,
    pub message: Arc<str>,
    pub paranoia: u8,
    pub score: u32,
    pub targets: Vec<TargetSel>,
    pub transforms: Vec<Transform>,
    pub op: Operator,
}
