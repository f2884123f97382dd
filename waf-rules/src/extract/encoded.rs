//! Which long words of letters and digits the loaded rules can read
//! (`plain_token`'s encoded-word test), decided from the rules at load.
//!
//! A word (letters, digits, `_`, `-`) is a plain token and no rule reads
//! it — but a long word may encode an object (a Java stream in hex,
//! `aced0005…`), and a rule may be written for just that: a built-in one
//! (7002) or an operator's own (`\bcafebabe`, a pickle `8004…` in hex).
//! A word of at least `ENCODED_OBJECT` bytes that mixes cases is always
//! read (base64 magic is matched anywhere in it). A single-case one is
//! read when a loaded rule can match inside it, and only then: each rule
//! that targets a token class is cut down, at load, to what it can match
//! within a run of `ALPHABET` bytes (its branches and class members
//! outside the alphabet dropped: a match inside such a run consumes no
//! other byte), case-folded when its chain lowercases, and the cut-down
//! rules make one DFA. Over the word, the DFA matches exactly where some
//! cut-down rule does, so it reads a word a rule can match there and
//! leaves plain the 32-hex session id or hash no loaded rule can.

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{self, Class, ClassBytes, ClassBytesRange, Hir, HirKind, Look};

/// What a rule's cut-down form may consume: hex digits in both cases and
/// the two word bytes that are not letters or digits. A match of a rule
/// inside a single-case word that consumes another letter is not
/// looked for (see the module comment: such words are words, as ever).
const ALPHABET: &[(u8, u8)] = &[
    (b'-', b'-'),
    (b'0', b'9'),
    (b'A', b'F'),
    (b'_', b'_'),
    (b'a', b'f'),
];

/// The longest match for which anchored searches at a word's starts are
/// used (see `EncodedWords::at_starts`).
const MAX_AT_START: usize = 64;

/// Size limits of the DFA (a rule set whose cut-down rules need more is
/// read the safe way: every such word read).
const DFA_LIMIT: usize = 4 << 20;

/// One thing a loaded rule can match, as the engine runs it on a
/// single-case word of the alphabet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Readable<'r> {
    /// A regex (the rule's pattern), run on the word as it is or, when
    /// `folds`, in lower case.
    Regex { pattern: &'r str, folds: bool },
    /// A phrase, matched anywhere, ASCII case ignored.
    Phrase(&'r str),
    /// A rule whose chain may change such a word in more than case (or
    /// whose pattern does not parse here): it may read any of them.
    Any,
}

/// The loaded rules' reading of long single-case words (see the module
/// comment).
#[derive(Debug, Clone)]
pub(crate) struct EncodedWords {
    dfa: Option<dense::DFA<Vec<u32>>>,
    /// Every word is read (a rule may match any).
    all: bool,
    /// Every cut-down rule matches only at a word start or boundary
    /// (`^`, `\b`, `\<`…) and at most `MAX_AT_START` bytes: the DFA is run
    /// anchored at the places of a word where one can hold (each run
    /// dies within that many bytes, so a word of many `-` stays linear),
    /// not over every byte. Otherwise one unanchored search.
    at_starts: bool,
    /// The ids of the rules kept (tests, `RAMPART_WAF_DEBUG`).
    rules: Vec<u32>,
}

impl EncodedWords {
    /// The reading of the rules `items` (each with its rule's id); `None`
    /// when none of them can match inside such a word.
    pub(crate) fn build<'r>(
        items: impl IntoIterator<Item = (u32, Readable<'r>)>,
    ) -> Option<EncodedWords> {
        let alphabet = ClassBytes::new(ALPHABET.iter().map(|&(a, b)| ClassBytesRange::new(a, b)));
        let mut hirs = Vec::new();
        let mut rules = Vec::new();
        let mut all = false;
        let mut at_starts = true;
        for (id, item) in items {
            let hir = match item {
                Readable::Any => None,
                Readable::Regex { pattern, folds } => {
                    match parse(pattern).map(|h| cut(&h, &alphabet, folds)) {
                        Some(None) => continue,
                        Some(Some(h)) => Some(h),
                        None => None,
                    }
                }
                Readable::Phrase(p) => match cut(&Hir::literal(p.as_bytes()), &alphabet, true) {
                    None => continue,
                    Some(h) => Some(h),
                },
            };
            rules.push(id);
            let Some(h) = hir else {
                all = true;
                continue;
            };
            let props = h.properties();
            if props.minimum_len() == Some(0) {
                // It matches an empty span: any word.
                all = true;
                continue;
            }
            // Anchored searches from each place stay linear in all only
            // when each reads a bounded stretch (`MAX_AT_START` bytes).
            at_starts &= starts_at_word_start(props.look_set_prefix())
                && props.maximum_len().is_some_and(|m| m <= MAX_AT_START);
            hirs.push(h);
        }
        if rules.is_empty() {
            return None;
        }
        let dfa = if all || hirs.is_empty() {
            None
        } else {
            build_dfa(&hirs)
        };
        Some(EncodedWords {
            all: all || dfa.is_none(),
            dfa,
            at_starts,
            rules,
        })
    }

    /// Whether a loaded rule can match inside `v`, a single-case word
    /// (letters, digits, `_`, `-`) of at least `ENCODED_OBJECT` bytes.
    pub(crate) fn reads(&self, v: &[u8]) -> bool {
        let Some(dfa) = &self.dfa else {
            return self.all;
        };
        let hit = |input: Input<'_>| !matches!(dfa.try_search_fwd(&input.earliest(true)), Ok(None));
        if !self.at_starts {
            return hit(Input::new(v));
        }
        // Where `^` or a word boundary can hold in a word: its start, and
        // at and after each `-` (the one byte of a word that is no word
        // byte). A match that starts elsewhere starts with no such look.
        (0..v.len())
            .filter(|&p| p == 0 || v[p] == b'-' || v[p - 1] == b'-')
            .any(|p| hit(Input::new(v).range(p..).anchored(Anchored::Yes)))
    }

    /// The ids of the rules that can match inside such a word.
    pub(crate) fn rules(&self) -> &[u32] {
        &self.rules
    }
}

fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// Whether every match starts with a look that holds only at the start of
/// the text or at a word boundary.
fn starts_at_word_start(looks: hir::LookSet) -> bool {
    [
        Look::Start,
        Look::StartLF,
        Look::StartCRLF,
        Look::WordAscii,
        Look::WordStartAscii,
        Look::WordStartHalfAscii,
    ]
    .into_iter()
    .any(|l| looks.contains(l))
}

fn build_dfa(hirs: &[Hir]) -> Option<dense::DFA<Vec<u32>>> {
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .which_captures(WhichCaptures::None),
        )
        .build_many_from_hir(hirs)
        .ok()?;
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Both)
                .dfa_size_limit(Some(DFA_LIMIT))
                .determinize_size_limit(Some(DFA_LIMIT)),
        )
        .build_from_nfa(&nfa)
        .ok()
}

/// `h` cut down to what it can match within a run of `alphabet` bytes
/// (case-folded first when `folds`): the same matches there, `None` when
/// it has none. Looks are kept as they are (they read the bytes around,
/// which the search still sees).
fn cut(h: &Hir, alphabet: &ClassBytes, folds: bool) -> Option<Hir> {
    let class = |mut c: ClassBytes| {
        if folds {
            c.case_fold_simple();
        }
        c.intersect(alphabet);
        (!c.ranges().is_empty()).then(|| Hir::class(Class::Bytes(c)))
    };
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(h.clone()),
        HirKind::Literal(hir::Literal(bytes)) => {
            let mut parts = Vec::with_capacity(bytes.len());
            for &b in bytes.iter() {
                parts.push(class(ClassBytes::new([ClassBytesRange::new(b, b)]))?);
            }
            Some(Hir::concat(parts))
        }
        HirKind::Class(Class::Bytes(c)) => class(c.clone()),
        // Not made by this syntax (Unicode off); read as any byte of the
        // alphabet, which keeps every match.
        HirKind::Class(Class::Unicode(c)) => match c.to_byte_class() {
            Some(b) => class(b),
            None => class(alphabet.clone()),
        },
        HirKind::Repetition(r) => match cut(&r.sub, alphabet, folds) {
            Some(sub) => Some(Hir::repetition(hir::Repetition {
                sub: Box::new(sub),
                ..r.clone()
            })),
            None if r.min == 0 => Some(Hir::empty()),
            None => None,
        },
        HirKind::Capture(c) => cut(&c.sub, alphabet, folds),
        HirKind::Concat(parts) => {
            let parts = parts.iter().map(|p| cut(p, alphabet, folds));
            Some(Hir::concat(parts.collect::<Option<Vec<_>>>()?))
        }
        HirKind::Alternation(alts) => {
            let alts: Vec<Hir> = alts
                .iter()
                .filter_map(|a| cut(a, alphabet, folds))
                .collect();
            (!alts.is_empty()).then(|| Hir::alternation(alts))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(pattern: &str) -> (u32, Readable<'_>) {
        (
            1,
            Readable::Regex {
                pattern,
                folds: false,
            },
        )
    }

    /// A rule of bounded length at a word start is searched from the
    /// word's starts; an unbounded one or one that may start anywhere by
    /// one search over the word (linear either way); what no byte of the
    /// alphabet can match reads nothing; what matches an empty span or
    /// does not parse reads every word.
    #[test]
    fn how_a_word_is_searched_follows_the_rules() {
        let build = |p: &[&str]| EncodedWords::build(p.iter().map(|p| regex(p)));
        let w = build(&[r"\b(?i:aced0005)7[0-9a-e]"]).unwrap();
        assert!(w.at_starts && !w.all);
        assert!(w.reads(b"0-aced00057372aa") && !w.reads(b"0aced00057372aaa"));
        let w = build(&[r"\b(?i:aced0005)7[0-9a-e]", r"\b[0-9a-f-]*cafebabe"]).unwrap();
        assert!(!w.at_starts && !w.all);
        let long = format!("{}cafebabe", "a-".repeat(5000));
        assert!(w.reads(long.as_bytes()) && !w.reads("a-".repeat(5000).as_bytes()));
        assert!(!build(&[r"deadbeef"]).unwrap().at_starts);
        assert!(build(&[r"java\.lang", r"\bxyz"]).is_none());
        assert!(build(&[r"(?:rO0AB)?"]).unwrap().all);
        assert!(build(&[r"(unclosed"]).unwrap().all);
        let any = EncodedWords::build([(1, Readable::Any)]).unwrap();
        assert!(any.all && any.reads(b"0123456789abcdef"));
    }
}
