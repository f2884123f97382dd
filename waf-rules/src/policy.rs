//! Per-site policy: paranoia, threshold, exclusions and inspection limits.

use crate::family::Family;
use serde::Deserialize;

/// How strict to be, and what to leave alone. Embeddable in the proxy's TOML.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// 1 (default, fewest false positives) to 4 (most rules).
    pub paranoia: u8,
    /// Block when the anomaly score reaches this (default 5 = one critical match).
    pub threshold: u32,
    pub exclusions: Vec<Exclusion>,
    pub limits: Limits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            paranoia: 1,
            threshold: 5,
            exclusions: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Turns rules off. Every field given must match; a missing field matches all.
/// An exclusion with neither `rule_id` nor `family` is refused by [`Policy::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub rule_id: Option<u32>,
    pub family: Option<Family>,
    /// Target as reported in matches ("args:q"); a trailing '*' matches a prefix ("json:$.profile.*").
    pub target: Option<String>,
    /// Only for request paths starting with this (raw path).
    pub path_prefix: Option<String>,
}

/// Bounds on how much of a request is inspected. Past a bound the rest is
/// skipped and the verdict says `truncated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Body bytes inspected.
    pub max_body_bytes: usize,
    /// Window size for values: a longer value is inspected whole, as
    /// windows of this many bytes that overlap by a quarter (at most
    /// 2 KiB), so nothing within the body limit goes unread.
    pub max_value_bytes: usize,
    /// Fields (args, cookies, headers, JSON leaves...) inspected per request.
    pub max_fields: usize,
    /// JSON / XML nesting depth followed.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 128 * 1024,
            max_value_bytes: 16 * 1024,
            max_fields: 1024,
            max_depth: 32,
        }
    }
}

/// A policy that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("paranoia must be 1 to 4, got {0}")]
    Paranoia(u8),
    #[error("threshold must be at least 1")]
    Threshold,
    #[error("exclusion {0} names neither rule_id nor family: it would turn the WAF off")]
    EmptyExclusion(usize),
}

impl Policy {
    /// Checks values serde cannot: ranges and exclusions that would disable everything.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(1..=4).contains(&self.paranoia) {
            return Err(PolicyError::Paranoia(self.paranoia));
        }
        if self.threshold == 0 {
            return Err(PolicyError::Threshold);
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            if e.rule_id.is_none() && e.family.is_none() {
                return Err(PolicyError::EmptyExclusion(i));
            }
        }
        Ok(())
    }

    /// True when an exclusion turns this rule off for this target and path.
    pub(crate) fn excludes(&self, rule_id: u32, family: Family, target: &str, path: &str) -> bool {
        self.exclusions
            .iter()
            .any(|e| e.covers(rule_id, family, target, path))
    }
}

impl Exclusion {
    fn covers(&self, rule_id: u32, family: Family, target: &str, path: &str) -> bool {
        if self.rule_id.is_some_and(|id| id != rule_id) {
            return false;
        }
        if self.family.is_some_and(|f| f != family) {
            return false;
        }
        if let Some(p) = &self.path_prefix {
            if !path.starts_with(p.as_str()) {
                return false;
            }
        }
        match &self.target {
            None => true,
            Some(t) => match t.strip_suffix('*') {
                Some(prefix) => target.starts_with(prefix),
                None => t == target,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_from_toml_and_rejects_unknown_fields() {
        let p: Policy = toml::from_str(
            "paranoia = 2\n[[exclusions]]\nfamily = \"sqli\"\ntarget = \"args:q\"\npath_prefix = \"/search\"\n",
        )
        .unwrap();
        assert_eq!(p.paranoia, 2);
        assert_eq!(p.threshold, 5);
        assert!(p.validate().is_ok());
        assert!(p.excludes(942100, Family::Sqli, "args:q", "/search/x"));
        assert!(!p.excludes(942100, Family::Sqli, "args:q", "/other"));
        assert!(!p.excludes(942100, Family::Xss, "args:q", "/search"));
        assert!(toml::from_str::<Policy>("paranoya = 2").is_err());
    }

    #[test]
    fn validate_refuses_bad_values() {
        let p = Policy {
            paranoia: 9,
            ..Policy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::Paranoia(9)));
        let e = Exclusion {
            rule_id: None,
            family: None,
            target: Some("args:q".into()),
            path_prefix: None,
        };
        let p = Policy {
            exclusions: vec![e],
            ..Policy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::EmptyExclusion(0)));
    }

    #[test]
    fn target_prefix_exclusion() {
        let e = Exclusion {
            rule_id: Some(1),
            family: None,
            target: Some("json:$.profile.*".into()),
            path_prefix: None,
        };
        assert!(e.covers(1, Family::Xss, "json:$.profile.bio", "/"));
        assert!(!e.covers(1, Family::Xss, "json:$.name", "/"));
    }
}
