//! Which long plain tokens the loaded rules can read (`plain_token`'s
//! encoded-token test), decided from the rules at load.
//!
//! A plain token (a word of letters, digits, `_`, `-`; a dotted id or
//! version with a digit) is read by no rule — but a long one may encode
//! an object (a Java stream in hex, `aced0005…`, or in base32), name a
//! command (`invoke-expression`), a table (`msysaccessobjects`) or hide a
//! stream after a dot (`1.aced0005…`), and a rule may be written for just
//! that: a built-in one or an operator's own. A word of at least
//! `ENCODED_OBJECT` bytes that mixes cases is always read (base64 magic
//! is matched anywhere in it). Any other token of that length is read
//! when a loaded rule can match inside it, and only then: each rule that
//! targets a token class is cut down, at load, to what it can match
//! within a run of `ALPHABET` bytes — every byte a token asked here can
//! hold (its branches and class members outside the alphabet dropped: a
//! match inside such a run consumes no other byte), its classes widened
//! to the bytes its chain lowercases into them. Over the token the
//! cut-down rules match exactly where the rules do, so a token a rule can
//! match is read and the 32-hex session id, hash or analytics id no loaded
//! rule can match stays plain.
//!
//! The cut-down rules make one lazy DFA, searched once over the token
//! (unanchored, earliest match): no determinization at load, so a reload
//! stays fast whatever the operator's rules (a pattern whose full DFA
//! would be huge, `[0-9a-f]*1[0-9a-f]{24}`, builds only the states a token
//! visits, within a bounded cache per thread that is cleared and refilled,
//! never given up: linear in the token). If even that cannot be built, a
//! PikeVM answers the same (one warning at load names the rules).

use crate::automaton::{lazy_dfa, parse, CachePool};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, pikevm::PikeVM, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind};
use regex_syntax::hir::{self, Class, ClassBytes, ClassBytesRange, Hir, HirKind};

/// What a rule's cut-down form may consume: every byte of a token that
/// is asked (`plain_token`): word bytes (letters, digits, `_`, `-`) and
/// the dot of dotted ids.
pub(crate) const ALPHABET: &[(u8, u8)] = &[
    (b'-', b'.'),
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'_', b'_'),
    (b'a', b'z'),
];

/// Most a thread's lazy-DFA cache may grow to before it is cleared and
/// refilled.
const CACHE_CAPACITY: usize = 2 << 20;

/// One thing a loaded rule can match, as the engine runs it on a plain
/// token (see `plain_token`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Readable<'r> {
    /// A regex (the rule's pattern), run on the token as it is or, when
    /// `folds`, in lower case.
    Regex { pattern: &'r str, folds: bool },
    /// A phrase, matched anywhere, ASCII case ignored.
    Phrase(&'r str),
    /// A rule whose chain may change such a token in more than case (or
    /// whose pattern does not parse here): it may read any of them.
    Any,
}

/// How a rule's chain treats the case of a token's letters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fold {
    /// The rule sees the token as it is.
    Not,
    /// The rule sees it in lower case (its chain lowercases).
    Lower,
    /// The rule ignores ASCII case (a phrase).
    Both,
}

/// The loaded rules' reading of long plain tokens (see the module
/// comment).
pub(crate) struct EncodedWords {
    /// The cut-down rules' lazy DFA and its caches (one per thread).
    lazy: Option<(DFA, CachePool<Cache>)>,
    /// Answers when the lazy DFA cannot be built (or a search fails).
    pikevm: Option<(PikeVM, CachePool<thompson::pikevm::Cache>)>,
    /// Every token is read (a rule may match any).
    all: bool,
    /// The ids of the rules kept (tests, `RAMPART_WAF_DEBUG`).
    rules: Vec<u32>,
}

impl std::fmt::Debug for EncodedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedWords")
            .field("rules", &self.rules)
            .field("all", &self.all)
            .field("lazy_dfa", &self.lazy.is_some())
            .finish()
    }
}

impl EncodedWords {
    /// The reading of the rules `items` (each with its rule's id); `None`
    /// when none of them can match inside such a token.
    pub(crate) fn build<'r>(
        items: impl IntoIterator<Item = (u32, Readable<'r>)>,
    ) -> Option<EncodedWords> {
        let alphabet = ClassBytes::new(ALPHABET.iter().map(|&(a, b)| ClassBytesRange::new(a, b)));
        // Each kept rule's cut-down form.
        let mut hirs: Vec<Hir> = Vec::new();
        let mut rules = Vec::new();
        let mut all = false;
        for (id, item) in items {
            let hir = match item {
                Readable::Any => None,
                Readable::Regex { pattern, folds } => {
                    let fold = if folds { Fold::Lower } else { Fold::Not };
                    match parse(pattern).map(|h| cut(&h, &alphabet, fold)) {
                        Some(None) => continue,
                        Some(Some(h)) => Some(h),
                        None => None,
                    }
                }
                Readable::Phrase(p) => {
                    match cut(&Hir::literal(p.as_bytes()), &alphabet, Fold::Both) {
                        None => continue,
                        Some(h) => Some(h),
                    }
                }
            };
            if !rules.contains(&id) {
                rules.push(id);
            }
            let Some(h) = hir else {
                all = true;
                continue;
            };
            if h.properties().minimum_len() == Some(0) {
                // It matches an empty span: any token.
                all = true;
                continue;
            }
            hirs.push(h);
        }
        if rules.is_empty() {
            return None;
        }
        let mut words = EncodedWords {
            lazy: None,
            pikevm: None,
            all,
            rules,
        };
        if all {
            return Some(words);
        }
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .which_captures(WhichCaptures::None),
            )
            .build_many_from_hir(&hirs);
        let Ok(nfa) = nfa else {
            // Too large an NFA: the safe way, every such token read.
            eprintln!(
                "rampart-waf: warning: rules {:?}: no automaton could be built to tell which long \
                 plain tokens they can match; every such token is read by all rules",
                words.rules
            );
            words.all = true;
            return Some(words);
        };
        words.lazy = lazy_dfa(&nfa, MatchKind::LeftmostFirst, CACHE_CAPACITY);
        if words.lazy.is_none() {
            eprintln!(
                "rampart-waf: warning: rules {:?}: their lazy DFA needs a cache over {} KiB; long \
                 plain tokens are searched for them by a slower PikeVM",
                words.rules,
                CACHE_CAPACITY >> 10
            );
        }
        words.pikevm = PikeVM::new_from_nfa(nfa).ok().map(|vm| {
            let v = vm.clone();
            let pool: CachePool<_> = Pool::new(Box::new(move || v.create_cache()));
            (vm, pool)
        });
        words.all = words.lazy.is_none() && words.pikevm.is_none();
        Some(words)
    }

    /// Whether a loaded rule can match inside `v`, a plain token (see
    /// `plain_token`: a single-case word, a dotted id with a digit, a
    /// number of digits, dots and dashes) of at least `ENCODED_OBJECT`
    /// bytes.
    pub(crate) fn reads(&self, v: &[u8]) -> bool {
        if self.all {
            return true;
        }
        let input = Input::new(v).earliest(true);
        if let Some((dfa, pool)) = &self.lazy {
            if let Ok(m) = dfa.try_search_fwd(&mut pool.get(), &input) {
                return m.is_some();
            }
        }
        match &self.pikevm {
            Some((vm, pool)) => vm.search_slots(&mut pool.get(), &input, &mut []).is_some(),
            None => true,
        }
    }

    /// The ids of the rules that can match inside such a token.
    pub(crate) fn rules(&self) -> &[u32] {
        &self.rules
    }
}

/// `h` cut down to what it can match within a run of `alphabet` bytes,
/// as a rule that treats case as `fold` says sees it: the same matches
/// there, `None` when it has none. Looks are kept as they are (they read
/// the bytes around, which the search still sees; a word boundary does
/// not depend on case).
fn cut(h: &Hir, alphabet: &ClassBytes, fold: Fold) -> Option<Hir> {
    let class = |c: ClassBytes| {
        let mut c = folded(c, fold);
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
        HirKind::Repetition(r) => match cut(&r.sub, alphabet, fold) {
            Some(sub) => Some(Hir::repetition(hir::Repetition {
                sub: Box::new(sub),
                ..r.clone()
            })),
            None if r.min == 0 => Some(Hir::empty()),
            None => None,
        },
        HirKind::Capture(c) => cut(&c.sub, alphabet, fold),
        HirKind::Concat(parts) => {
            let parts = parts.iter().map(|p| cut(p, alphabet, fold));
            Some(Hir::concat(parts.collect::<Option<Vec<_>>>()?))
        }
        HirKind::Alternation(alts) => {
            let alts: Vec<Hir> = alts.iter().filter_map(|a| cut(a, alphabet, fold)).collect();
            (!alts.is_empty()).then(|| Hir::alternation(alts))
        }
    }
}

/// The bytes of a token that the rule's class `c` matches once the rule
/// has treated its case: `c` itself; with `Fold::Lower` the bytes whose
/// lower case is in `c` (an `A` in a lowercasing rule's class matches
/// nothing); with `Fold::Both` both cases of its letters.
fn folded(mut c: ClassBytes, fold: Fold) -> ClassBytes {
    match fold {
        Fold::Not => c,
        Fold::Both => {
            c.case_fold_simple();
            c
        }
        Fold::Lower => {
            let upper = ClassBytes::new([ClassBytesRange::new(b'A', b'Z')]);
            let mut lower = c.clone();
            lower.intersect(&ClassBytes::new([ClassBytesRange::new(b'a', b'z')]));
            let raised = ClassBytes::new(
                lower
                    .ranges()
                    .iter()
                    .map(|r| ClassBytesRange::new(r.start() - 32, r.end() - 32)),
            );
            c.difference(&upper);
            c.union(&raised);
            c
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

    /// A token is read where a rule can match in it — at a word start
    /// after a `-` or `.`, with letters beyond a–f, anywhere — and not
    /// elsewhere; what no byte of the alphabet can match reads nothing;
    /// what matches an empty span or does not parse reads every token.
    #[test]
    fn what_a_token_reads_follows_the_rules() {
        let build = |p: &[&str]| EncodedWords::build(p.iter().map(|p| regex(p)));
        let w = build(&[r"\b(?i:aced0005)7[0-9a-e]"]).unwrap();
        assert!(w.lazy.is_some() && !w.all);
        assert!(w.reads(b"0-aced00057372aa") && !w.reads(b"0aced00057372aaa"));
        assert!(w.reads(b"1.aced00057372aa") && w.reads(b"v1.ACED00057372a"));
        let w = build(&[r"\b(?i:aced0005)7[0-9a-e]", r"\b[0-9a-f-]*cafebabe"]).unwrap();
        let long = format!("{}cafebabe", "a-".repeat(5000));
        assert!(w.reads(long.as_bytes()) && !w.reads("a-".repeat(5000).as_bytes()));
        let w = build(&[r"deadbeef"]).unwrap();
        assert!(w.reads(b"0000deadbeef0000") && !w.reads(b"0000deadbee00000"));
        // Letters beyond a–f, in either case as the word comes.
        let w = build(&[r"\binvoke-expression\b", r"\bVTWQAB"]).unwrap();
        assert!(w.reads(b"invoke-expression") && w.reads(b"VTWQABLTOIABU2TBOZQS"));
        assert!(!w.reads(b"INVOKE-EXPRESSION") && !w.reads(b"vtwqabltoiabu2tboz"));
        assert!(build(&[r"java\.lang/", r"\bxyz;"]).is_none());
        assert!(build(&[r"(?:rO0AB)?"]).unwrap().all);
        assert!(build(&[r"(unclosed"]).unwrap().all);
        let any = EncodedWords::build([(1, Readable::Any)]).unwrap();
        assert!(any.all && any.reads(b"0123456789abcdef"));
    }

    /// A lowercasing rule reads a token whose lower case it matches: an
    /// upper-case letter in its pattern matches nothing, either case of
    /// a lower-case one matches; a phrase ignores case both ways.
    #[test]
    fn a_lowercasing_rule_is_cut_for_the_lower_case_token() {
        let lower = |p| {
            EncodedWords::build([(
                1,
                Readable::Regex {
                    pattern: p,
                    folds: true,
                },
            )])
        };
        let w = lower(r"\bjavaserialized").unwrap();
        assert!(w.reads(b"JAVASERIALIZEDOBJECTXX") && w.reads(b"javaserializedobjectxx"));
        assert!(lower(r"\bJAVASERIALIZED").is_none());
        let w = EncodedWords::build([(1, Readable::Phrase("MsysAccess"))]).unwrap();
        assert!(w.reads(b"xmsysaccessobjects") && w.reads(b"XMSYSACCESSOBJECTS"));
    }

    /// A rule whose full DFA would be huge (each of 2^25 suffixes a
    /// state) is read exactly by the lazy DFA, which builds only the
    /// states a token visits (nothing of it at load), with a rule that
    /// needs a word start beside it.
    #[test]
    fn a_rule_with_a_huge_dfa_is_read_exactly() {
        let items = [
            (
                90300,
                Readable::Regex {
                    pattern: r"[0-9a-f]*1[0-9a-f]{24}",
                    folds: false,
                },
            ),
            (
                7002,
                Readable::Regex {
                    pattern: r"\b(?i:aced0005)7[0-9a-e]",
                    folds: false,
                },
            ),
        ];
        let w = EncodedWords::build(items).unwrap();
        assert!(!w.all && w.lazy.is_some());
        assert!(!w.reads(b"0000000000000000") && !w.reads(b"1000000000000000"));
        assert!(w.reads(b"100000000000000000000000000") && w.reads(b"aced00057000000000"));
        // Many visited states (random hex, new suffixes at every byte):
        // the cache is cleared and refilled, the answer still exact.
        let mut x = 0x1234_5678_9abc_def1u64;
        let hex: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"023456789abcdef"[(x % 15) as usize]
            })
            .collect();
        assert!(!w.reads(&hex));
        let mut one = hex.clone();
        one[100_000] = b'1';
        assert!(w.reads(&one));
    }
}
