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

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::Rce => "rce",
            Family::Lfi => "lfi",
            Family::Rfi => "rfi",
            Family::Php => "php",
            Family::Java => "java",
            Family::Ssrf => "ssrf",
            Family::Ssti => "ssti",
            Family::Nosql => "nosql",
            Family::Xxe => "xxe",
            Family::Crlf => "crlf",
            Family::Ldap => "ldap",
            Family::Redirect => "redirect",
            Family::Scanner => "scanner",
            Family::Protocol => "protocol",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
