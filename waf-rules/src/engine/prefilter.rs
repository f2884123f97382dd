//! Required-literal extraction: a regex whose every match starts (or ends)
//! with one of a few literals can be skipped when none of them occurs.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Shorter literals occur everywhere and would not skip anything.
const MIN_LITERAL: usize = 3;

/// Literals one of which every match must contain, if a useful set exists.
pub(crate) fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let mut best: Option<Vec<Vec<u8>>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind).limit_total(256).limit_class(8);
        let mut seq = ex.extract(&hir);
        seq.optimize_for_prefix_by_preference();
        let Some(lits) = seq.literals() else { continue };
        if lits.is_empty() {
            continue;
        }
        let min = lits.iter().map(|l| l.len()).min().unwrap_or(0);
        if min < MIN_LITERAL {
            continue;
        }
        let set: Vec<Vec<u8>> = lits.iter().map(|l| l.as_bytes().to_vec()).collect();
        let better = best
            .as_ref()
            .is_none_or(|b| min > b.iter().map(Vec::len).min().unwrap_or(0));
        if better {
            best = Some(set);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_prefix_or_suffix_literals() {
        let l = required_literals(r"(?:union|select)\s+\w").unwrap();
        assert!(l.iter().any(|x| x == b"union") && l.iter().any(|x| x.starts_with(b"sel")));
        assert!(required_literals(r"\w+=\d").is_none());
        assert_eq!(
            required_literals(r"\d+etc/passwd").unwrap(),
            vec![b"etc/passwd".to_vec()]
        );
    }
}
