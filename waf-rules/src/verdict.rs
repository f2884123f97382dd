//! What the engine decided, and why.

use crate::family::Family;
use std::sync::Arc;

/// One rule that matched one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule_id: u32,
    pub family: Family,
    pub message: Arc<str>,
    /// Where it matched: "args:q", "json:$.user.name", "cookie:sid", "header:user-agent", "path"...
    pub target: String,
    /// The matched text after transforms: capped and escaped, safe to log.
    pub fragment: String,
    /// Score this match added (a rule scores once per request; repeats add 0).
    pub score: u32,
}

/// The decision for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub score: u32,
    /// Would block: score >= policy threshold. Detect-only is the caller's choice.
    pub block: bool,
    pub matches: Vec<RuleMatch>,
    /// Something was not fully inspected (body cut, too many args, too deep JSON...).
    pub truncated: bool,
}

/// Most bytes of a matched fragment kept for logs.
pub(crate) const FRAGMENT_CAP: usize = 80;

/// Escapes a fragment so it is printable ASCII, and caps its length.
pub(crate) fn safe_fragment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(FRAGMENT_CAP) + 8);
    for &b in bytes.iter().take(FRAGMENT_CAP) {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > FRAGMENT_CAP {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_escaped_and_capped() {
        assert_eq!(safe_fragment(b"a\n\"b"), "a\\x0a\\\"b");
        let long = vec![b'x'; 200];
        let f = safe_fragment(&long);
        assert!(f.ends_with("...") && f.len() == FRAGMENT_CAP + 3);
    }
}
