//! Attack families: one rule file each.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The attack family a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Family {
    Sqli,
    Xss,
    Rce,
    Lfi,
    Rfi,
    Php,
    Java,
    Ssrf,
    Ssti,
    Nosql,
    Xxe,
    Crlf,
    Ldap,
    Redirect,
    Scanner,
    Protocol,
}

impl Family {
    pub const ALL: [Family; 16] = [
        Family::Sqli,
        Family::Xss,
        Family::Rce,
        Family::Lfi,
        Family::Rfi,
        Family::Php,
        Family::Java,
        Family::Ssrf,
        Family::Ssti,
        Family::Nosql,
        Family::Xxe,
        Family::Crlf,
        Family::Ldap,
        Family::Redirect,
        Family::Scanner,
        Family::Protocol,
    ];

    /// The family's name in rule files, policies and verdicts (serde's
    /// lowercase name; `names_are_serde_names` holds them equal).
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }
}

/// Names in declaration order (`Family as usize` indexes it).
const NAMES: [&str; Family::ALL.len()] = [
    "sqli", "xss", "rce", "lfi", "rfi", "php", "java", "ssrf", "ssti", "nosql", "xxe", "crlf",
    "ldap", "redirect", "scanner", "protocol",
];

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Family;

    #[test]
    fn names_are_serde_names() {
        #[derive(serde::Deserialize)]
        struct One {
            family: Family,
        }
        for (k, f) in Family::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, k, "ALL is in declaration order");
            let parsed: One = toml::from_str(&format!("family = \"{}\"", f.as_str())).unwrap();
            assert_eq!(parsed.family, f);
            assert_eq!(f.as_str(), format!("{f:?}").to_lowercase());
        }
    }
}
