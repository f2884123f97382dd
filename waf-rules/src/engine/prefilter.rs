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

/// A set of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ByteSet(pub [u64; 4]);

impl ByteSet {
    pub(crate) fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    pub(crate) fn union(&mut self, o: &ByteSet) {
        for i in 0..4 {
            self.0[i] |= o.0[i];
        }
    }

    pub(crate) fn is_subset(&self, o: &ByteSet) -> bool {
        (0..4).all(|i| self.0[i] & !o.0[i] == 0)
    }

    pub(crate) fn intersects(&self, o: &ByteSet) -> bool {
        (0..4).any(|i| self.0[i] & o.0[i] != 0)
    }

    /// Bytes of ordinary text: letters, digits, space and light punctuation
    /// (not `.`, which paths and file names need).
    pub(crate) fn plain_text() -> ByteSet {
        let mut s = ByteSet::default();
        for b in 0u8..=127 {
            if b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b',' | b'@' | b'!' | b'?') {
                s.insert(b);
            }
        }
        s
    }

    pub(crate) fn of(v: &[u8]) -> ByteSet {
        let mut s = ByteSet::default();
        for &b in v {
            s.insert(b);
        }
        s
    }

    /// How often a set is expected to hit in ordinary text: letters,
    /// digits and spaces are everywhere, punctuation is rarer.
    fn cost(&self) -> u32 {
        let bytes: u32 = (0u8..=255)
            .filter(|&b| self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0)
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b' ' {
                    8
                } else {
                    1
                }
            })
            .sum();
        // A set plain text can satisfy gates nothing: prefer any other.
        if self.intersects(&ByteSet::plain_text()) {
            bytes + 1000
        } else {
            bytes
        }
    }
}

/// Bytes one of which every match of `pattern` must contain, when such a
/// set can be read off its syntax tree. A value with none of them cannot
/// match, so the always-run patterns of a group can be skipped.
pub(crate) fn needed_bytes(pattern: &str) -> Option<ByteSet> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    need(&hir)
}

fn need(h: &regex_syntax::hir::Hir) -> Option<ByteSet> {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(lit) => lit
            .0
            .iter()
            .map(|&b| {
                let mut s = ByteSet::default();
                s.insert(b);
                s
            })
            .min_by_key(ByteSet::cost),
        HirKind::Class(Class::Bytes(c)) => {
            let mut s = ByteSet::default();
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    s.insert(b);
                }
            }
            Some(s)
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut s = ByteSet::default();
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()).min(0x7f));
                if u32::from(r.end()) > 0x7f {
                    // Non-ASCII code points: any lead byte may start them.
                    for b in 0xc0..=0xff {
                        s.insert(b);
                    }
                }
                for b in lo..=hi {
                    s.insert(b as u8);
                }
            }
            Some(s)
        }
        HirKind::Repetition(r) if r.min >= 1 => need(&r.sub),
        HirKind::Repetition(_) => None,
        HirKind::Capture(c) => need(&c.sub),
        HirKind::Concat(subs) => subs.iter().filter_map(need).min_by_key(ByteSet::cost),
        HirKind::Alternation(subs) => {
            let mut s = ByteSet::default();
            for sub in subs {
                s.union(&need(sub)?);
            }
            Some(s)
        }
    }
}

#[cfg(test)]
mod need_tests {
    use super::*;

    #[test]
    fn needed_bytes_pick_rare_punctuation() {
        let s = needed_bytes(r"(?:^|[\s=])\.{2,}[\\/]").unwrap();
        assert!(s.intersects(&ByteSet::of(b"../")));
        assert!(!s.intersects(&ByteSet::of(b"plain words, and more")));
        assert!(needed_bytes(r"a?").is_none());
        let alt = needed_bytes(r"<\?php|\{php\}").unwrap();
        assert!(alt.intersects(&ByteSet::of(b"<")) && alt.intersects(&ByteSet::of(b"{")));
    }
}
