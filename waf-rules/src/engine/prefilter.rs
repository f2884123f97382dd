//! What a pattern needs before it can match: literals one of which every
//! match contains, or bytes one of which it holds. A value with none of
//! them skips the pattern's automaton.

use crate::automaton::parse;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind};

/// What every match of a pattern contains: one of `bytes` (never bytes of
/// plain text) or one of `lits` (matched ASCII-case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Need {
    pub bytes: ByteSet,
    pub lits: Vec<Vec<u8>>,
}

impl Need {
    fn lit(l: &[u8]) -> Option<Need> {
        match l {
            [] => None,
            [b] => Need::byte(*b),
            _ => Some(Need {
                bytes: ByteSet::default(),
                lits: vec![l.to_vec()],
            }),
        }
    }

    fn byte(b: u8) -> Option<Need> {
        if PLAIN_TEXT.contains(b) {
            return None;
        }
        let mut bytes = ByteSet::default();
        bytes.insert(b);
        Some(Need {
            bytes,
            lits: Vec::new(),
        })
    }

    pub(crate) fn union(mut self, o: Need) -> Need {
        self.bytes.union(&o.bytes);
        for l in o.lits {
            if !self.lits.contains(&l) {
                self.lits.push(l);
            }
        }
        self
    }

    /// How often ordinary values are expected to hold one of the atoms.
    fn cost(&self) -> u64 {
        let bytes: u64 = self.bytes.iter().map(byte_cost).sum();
        let lits: u64 = self.lits.iter().map(|l| lit_cost(l)).sum();
        bytes + lits
    }
}

/// Short runs of letters occur inside ordinary words (`at`, `on`, `cat`,
/// `bin`): such a literal gates little, punctuation gates more.
fn lit_cost(l: &[u8]) -> u64 {
    let words = l.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ');
    match (l.len(), words) {
        (0 | 1, _) => 1000,
        (2, true) => 600,
        (2, false) => 20,
        (3, true) => 60,
        (3, false) => 5,
        (4, true) => 15,
        (_, true) => 3,
        (_, false) => 2,
    }
}

fn byte_cost(b: u8) -> u64 {
    match b {
        b'.' | b'-' | b'/' | b':' | b'=' | b'&' | b';' | b'%' | b'+' | b'\'' | b'(' | b')'
        | b'"' | b'#' | b'*' => 150,
        _ => 30,
    }
}

/// What every match of `pattern` must contain, if something useful is.
pub(crate) fn requirement(pattern: &str) -> Option<Need> {
    let hir = parse(pattern)?;
    let best = cheaper(need(&hir), extracted(&hir, ExtractKind::Prefix));
    cheaper(best, extracted(&hir, ExtractKind::Suffix))
}

fn cheaper(a: Option<Need>, b: Option<Need>) -> Option<Need> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.cost() < a.cost() { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn need(h: &Hir) -> Option<Need> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(lit) => lit
            .0
            .iter()
            .filter_map(|&b| Need::byte(b))
            .fold(Need::lit(&lit.0), |best, n| cheaper(best, Some(n))),
        HirKind::Class(c) => class_bytes(c).and_then(|s| {
            (!s.intersects(&PLAIN_TEXT)).then_some(Need {
                bytes: s,
                lits: Vec::new(),
            })
        }),
        HirKind::Repetition(r) if r.min >= 1 => need(&r.sub),
        HirKind::Repetition(_) => None,
        HirKind::Capture(c) => need(&c.sub),
        HirKind::Concat(subs) => {
            let mut best = subs.iter().map(need).fold(None, cheaper);
            // Literals spanning several parts (`etc/` then `passwd|shadow`).
            for i in 0..subs.len().min(4) {
                let tail = Hir::concat(subs[i..].to_vec());
                best = cheaper(best, extracted(&tail, ExtractKind::Prefix));
                let head = Hir::concat(subs[..subs.len() - i].to_vec());
                best = cheaper(best, extracted(&head, ExtractKind::Suffix));
            }
            best
        }
        HirKind::Alternation(subs) => {
            let mut all = Need::default();
            for sub in subs {
                all = all.union(need(sub)?);
            }
            Some(all)
        }
    }
}

/// Literals one of which every match starts (or ends) with.
fn extracted(h: &Hir, kind: ExtractKind) -> Option<Need> {
    let mut ex = Extractor::new();
    ex.kind(kind.clone()).limit_total(256).limit_class(8);
    let mut seq = ex.extract(h);
    match kind {
        ExtractKind::Suffix => seq.optimize_for_suffix_by_preference(),
        _ => seq.optimize_for_prefix_by_preference(),
    }
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    let mut all = Need::default();
    for l in lits {
        all = all.union(Need::lit(l.as_bytes())?);
    }
    Some(all)
}

fn class_bytes(c: &Class) -> Option<ByteSet> {
    let mut s = ByteSet::default();
    match c {
        Class::Bytes(c) => {
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    s.insert(b);
                }
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                if u32::from(r.end()) > 0x7f {
                    // Non-ASCII code points: any lead byte may start them.
                    for b in 0xc0..=0xff {
                        s.insert(b);
                    }
                }
                for b in u32::from(r.start())..=u32::from(r.end()).min(0x7f) {
                    s.insert(b as u8);
                }
            }
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a value holding `v` would open the pattern's gate.
    fn opens(n: &Need, v: &[u8]) -> bool {
        n.bytes.intersects(&ByteSet::of(v))
            || n.lits
                .iter()
                .any(|l| v.windows(l.len()).any(|w| w.eq_ignore_ascii_case(l)))
    }

    fn lits(p: &str) -> Vec<Vec<u8>> {
        requirement(p).unwrap().lits
    }

    #[test]
    fn finds_literals_anywhere_in_the_pattern() {
        let l = lits(r"(?:union|select)\s+\w");
        assert!(l.iter().any(|x| x == b"union") && l.iter().any(|x| x.starts_with(b"sel")));
        assert!(requirement(r"\w+=\d").is_some_and(|n| n.bytes.contains(b'=')));
        assert!(requirement(r"\w+\d").is_none());
        assert!(lits(r"\d+etc/passwd").iter().any(|x| x == b"etc/passwd"));
        // Inner literals behind an optional or class prefix.
        let n = requirement(r"(?:^|[;&|(]\s*)(?:iex|iwr|saps)\s+[-(\w]").unwrap();
        assert!(n.lits.iter().any(|x| x == b"saps"), "{n:?}");
    }

    /// The gate bits aho-corasick's own DFA walk sets (the walk the scan
    /// replaced): after each byte, every pattern of a match state.
    fn dfa_bits(
        dfa: &aho_corasick::dfa::DFA,
        owners: &[usize],
        v: &[u8],
        words: usize,
    ) -> Vec<u64> {
        use aho_corasick::automaton::Automaton;
        let mut bits = vec![0u64; words];
        let mut sid = dfa.start_state(aho_corasick::Anchored::No).unwrap();
        for &b in v {
            sid = dfa.next_state(aho_corasick::Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                for i in 0..dfa.match_len(sid) {
                    let g = owners[dfa.match_pattern(sid, i).as_usize()];
                    bits[g / 64] |= 1 << (g % 64);
                }
            }
        }
        bits
    }

    /// The scan's walk sets the bits aho-corasick's DFA walk sets, and
    /// `hit` answers each bit as `hits` does: seeded literal sets (the SQL
    /// keywords and random literals over letters of both cases, digits,
    /// punctuation and non-ASCII, several sharing a bit, prefixes of one
    /// another) and seeded values over the same bytes.
    #[test]
    fn scan_agrees_with_the_dfa() {
        let alphabet = b"aAbBcCeEoOrRsS01 '<>/.-_%\x00\xc3\xa9\xff";
        let mut x = 0x5ca1_ab1e_0000_0007u64;
        let mut pick = |n: usize| crate::test_support::xorshift(&mut x) as usize % n;
        let (mut hits, mut values) = (0usize, 0usize);
        for round in 0..6 {
            let mut lits: Vec<Vec<u8>> = Vec::new();
            let mut owners = Vec::new();
            if round == 0 {
                for k in crate::detect::sqli::KEYWORDS {
                    lits.push(k.as_bytes().to_vec());
                    owners.push(lits.len() % 70);
                }
            }
            for _ in 0..40 + pick(200) {
                let len = 1 + pick(5);
                lits.push((0..len).map(|_| alphabet[pick(alphabet.len())]).collect());
                owners.push(pick(130));
            }
            let words = 3;
            let dfa = aho_corasick::dfa::DFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(aho_corasick::MatchKind::Standard)
                .prefilter(false)
                .build(&lits)
                .unwrap();
            let scan = LiteralScan::new(&lits, &owners).unwrap();
            for _ in 0..3000 {
                let v: Vec<u8> = (0..pick(40))
                    .map(|_| alphabet[pick(alphabet.len())])
                    .collect();
                let want = dfa_bits(&dfa, &owners, &v, words);
                let mut got = vec![0u64; words];
                scan.hits(&v, &mut got);
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&v));
                if values % 8 == 0 {
                    for bit in 0..words * 64 {
                        let set = want[bit / 64] & (1 << (bit % 64)) != 0;
                        assert_eq!(scan.hit(&v, bit), set);
                    }
                }
                hits += want.iter().map(|w| w.count_ones() as usize).sum::<usize>();
                values += 1;
            }
        }
        assert!(hits > values, "{hits} hits in {values} values");
    }

    #[test]
    fn needs_never_use_plain_text_bytes() {
        assert!(requirement(r"a?").is_none());
        assert!(requirement(r"[a-z_]+").is_none());
        let n = requirement(r"(?:^|[\s=])\.{2,}[\\/]").unwrap();
        assert!(opens(&n, b"a=../b") && !opens(&n, b"plain words, and more"));
        assert!(!n.bytes.intersects(&PLAIN_TEXT));
        let alt = requirement(r"<\?php|\{php\}").unwrap();
        assert!(opens(&alt, b"<?PHP") && opens(&alt, b"{php}") && !opens(&alt, b"php"));
    }
}

/// The shared literal scan: one automaton over every gate, phrase,
/// anchor and trigger literal (ASCII case ignored), walked once per
/// distinct value to learn which gate bits' literals it holds.
///
/// Built from aho-corasick's DFA for those literals, as that DFA's own
/// states and transitions copied into one table: the state after each
/// byte, and the literals each state reports, are the DFA's, so every
/// walk sets the bits the DFA's walk set (`scan_agrees_with_the_dfa`).
/// The table only makes the walk cheaper: bytes every state treats alike
/// share a column (`classes`), and the states that report a literal are
/// numbered last, so a step is a table read and one comparison.
#[derive(Debug)]
pub(crate) struct LiteralScan {
    /// Byte -> column of `trans`.
    classes: [u8; 256],
    /// Columns per state.
    stride: usize,
    /// Per state and column: the next state, as its row's offset.
    trans: Vec<u32>,
    /// The unanchored start state's row offset.
    start: usize,
    /// Row offset of the first state that reports a literal: every state
    /// from there on does, and no state before it.
    first_match: usize,
    /// Per reporting state (in row order from `first_match`): its
    /// literals' gate bits, as (word, mask) pairs.
    reports: Vec<Box<[(usize, u64)]>>,
    /// Literals in the scan.
    literals: usize,
}

impl LiteralScan {
    /// The scan of `lits`, each reported under gate bit `owners[i]`.
    pub(crate) fn new(lits: &[Vec<u8>], owners: &[usize]) -> Result<LiteralScan, String> {
        use aho_corasick::automaton::Automaton;
        use aho_corasick::{Anchored, MatchKind};
        let dfa = aho_corasick::dfa::DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(lits)
            .map_err(|e| e.to_string())?;
        let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
        // Every state the walk can reach, and its 256 transitions (as
        // indexes into `states`). The DFA's state ids are offsets into its
        // own table, so they index a table of their own here.
        const NEW: u32 = u32::MAX;
        let mut states = vec![start];
        let mut index = vec![NEW; dfa.memory_usage() / 4 + 1];
        let mut next: Vec<u32> = Vec::new();
        let mut k = 0;
        while k < states.len() {
            let s = states[k];
            if s.as_usize() >= index.len() {
                index.resize(s.as_usize() + 1, NEW);
            }
            index[s.as_usize()] = k as u32;
            for b in 0..=255u8 {
                let t = dfa.next_state(Anchored::No, s, b);
                if t.as_usize() >= index.len() {
                    index.resize(t.as_usize() + 1, NEW);
                }
                if index[t.as_usize()] == NEW {
                    index[t.as_usize()] = states.len() as u32;
                    states.push(t);
                }
                next.push(index[t.as_usize()]);
            }
            k += 1;
        }
        let n = states.len();
        // Bytes whose transitions agree in every state share a column:
        // grouped by a hash of the column, each checked against its
        // group's first byte.
        let mut hash = [0u64; 256];
        for row in next.chunks_exact(256) {
            for (h, &t) in hash.iter_mut().zip(row) {
                *h = (*h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let same = |a: usize, b: usize| (0..n).all(|s| next[s * 256 + a] == next[s * 256 + b]);
        let mut reps: Vec<usize> = Vec::new();
        let mut classes = [0u8; 256];
        for b in 0..256 {
            let class = match reps.iter().position(|&r| hash[r] == hash[b] && same(r, b)) {
                Some(c) => c,
                None => {
                    reps.push(b);
                    reps.len() - 1
                }
            };
            classes[b] = u8::try_from(class).map_err(|e| e.to_string())?;
        }
        let stride = reps.len();
        // Rows: states that report nothing first, then those that do.
        let reports_of = |s: usize| dfa.is_match(states[s]);
        let order: Vec<usize> = (0..n)
            .filter(|&s| !reports_of(s))
            .chain((0..n).filter(|&s| reports_of(s)))
            .collect();
        let mut row = vec![0usize; n];
        for (r, &s) in order.iter().enumerate() {
            row[s] = r * stride;
        }
        let offset = |r: usize| u32::try_from(r).map_err(|e| e.to_string());
        let mut trans = Vec::with_capacity(n * stride);
        for &s in &order {
            for &b in &reps {
                trans.push(offset(row[next[s * 256 + b] as usize])?);
            }
        }
        let first_match = order.iter().take_while(|&&s| !reports_of(s)).count() * stride;
        let reports = order
            .iter()
            .filter(|&&s| reports_of(s))
            .map(|&s| {
                let mut words: Vec<(usize, u64)> = Vec::new();
                for i in 0..dfa.match_len(states[s]) {
                    let bit = owners[dfa.match_pattern(states[s], i).as_usize()];
                    match words.iter_mut().find(|w| w.0 == bit / 64) {
                        Some(w) => w.1 |= 1 << (bit % 64),
                        None => words.push((bit / 64, 1 << (bit % 64))),
                    }
                }
                words.into_boxed_slice()
            })
            .collect();
        Ok(LiteralScan {
            classes,
            stride,
            trans,
            start: row[0],
            first_match,
            reports,
            literals: lits.len(),
        })
    }

    /// Sets in `bits` the gate bit of every literal that occurs in
    /// `value` (overlapping ones too).
    pub(crate) fn hits(&self, value: &[u8], bits: &mut [u64]) {
        // The table in locals: the loop reads nothing else.
        let (trans, classes, first) = (&self.trans[..], &self.classes, self.first_match);
        let mut s = self.start;
        let mut step = |b: u8| {
            s = trans[s + usize::from(classes[usize::from(b)])] as usize;
            if s >= first {
                self.report(s, bits);
            }
        };
        // Four bytes a turn: the loop's own bookkeeping is a good part of
        // a step's few instructions.
        let mut quads = value.chunks_exact(4);
        for q in &mut quads {
            step(q[0]);
            step(q[1]);
            step(q[2]);
            step(q[3]);
        }
        quads.remainder().iter().for_each(|&b| step(b));
    }

    /// Sets the gate bits of the literals state `s` reports.
    #[inline(never)]
    fn report(&self, s: usize, bits: &mut [u64]) {
        for &(w, m) in self.reports[(s - self.first_match) / self.stride].iter() {
            bits[w] |= m;
        }
    }

    /// Whether a literal of gate `bit` occurs in `value`: the walk of
    /// `hits`, stopping at the first such literal.
    pub(crate) fn hit(&self, value: &[u8], bit: usize) -> bool {
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let (trans, classes, first) = (&self.trans[..], &self.classes, self.first_match);
        let mut s = self.start;
        for &b in value {
            s = trans[s + usize::from(classes[usize::from(b)])] as usize;
            if s >= first
                && self.reports[(s - self.first_match) / self.stride]
                    .iter()
                    .any(|&(w, m)| w == word && m & mask != 0)
            {
                return true;
            }
        }
        false
    }

    /// Literals in the scan.
    pub(crate) fn literals(&self) -> usize {
        self.literals
    }

    /// Heap bytes of the table.
    pub(crate) fn memory_usage(&self) -> usize {
        self.trans.capacity() * 4
            + self.reports.capacity() * std::mem::size_of::<Box<[(usize, u64)]>>()
            + self.reports.iter().map(|r| r.len() * 16).sum::<usize>()
    }
}

/// Bytes of ordinary text: letters, digits, space and light punctuation
/// (not `.`, which paths and file names need).
pub(crate) const PLAIN_TEXT: ByteSet = plain_text_set();

const fn plain_text_set() -> ByteSet {
    let mut s = [0u64; 4];
    let mut b = 0u8;
    while b < 128 {
        if b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b',' | b'@' | b'!' | b'?') {
            s[(b >> 6) as usize] |= 1 << (b & 63);
        }
        b += 1;
    }
    ByteSet(s)
}

/// Upper-case and lower-case ASCII letters.
pub(crate) const UPPER: ByteSet = range_set(b'A', b'Z');
pub(crate) const LOWER: ByteSet = range_set(b'a', b'z');

const fn range_set(first: u8, last: u8) -> ByteSet {
    let mut s = [0u64; 4];
    let mut b = first;
    while b <= last {
        s[(b >> 6) as usize] |= 1 << (b & 63);
        b += 1;
    }
    ByteSet(s)
}

/// A mask over the literal scan's gate bits, kept as its nonzero words:
/// a skip or a class names a few bits of a few hundred, so testing it
/// against a value's literal hits reads those words only, not every word
/// (the same answer: a word without a bit of the mask can never hit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BitMask(Vec<(usize, u64)>);

impl BitMask {
    /// The mask of these words (word `i` holds bits `64 i ..`).
    pub(crate) fn from_words(words: &[u64]) -> BitMask {
        BitMask(
            (words.iter().enumerate())
                .filter(|&(_, &m)| m != 0)
                .map(|(i, &m)| (i, m))
                .collect(),
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every bit of `self` and of `o`.
    pub(crate) fn union(&self, o: &BitMask) -> BitMask {
        let len = (self.0.iter().chain(&o.0))
            .map(|&(i, _)| i + 1)
            .max()
            .unwrap_or(0);
        let mut words = vec![0u64; len];
        for &(i, m) in self.0.iter().chain(&o.0) {
            words[i] |= m;
        }
        BitMask::from_words(&words)
    }

    /// Whether `bits` (a value's hits, word by word) holds a bit of the mask.
    pub(crate) fn hits(&self, bits: &[u64]) -> bool {
        self.0
            .iter()
            .any(|&(i, m)| bits.get(i).is_some_and(|b| b & m != 0))
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

    pub(crate) fn intersects(&self, o: &ByteSet) -> bool {
        (0..4).any(|i| self.0[i] & o.0[i] != 0)
    }

    /// The bytes in the set, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..4usize).flat_map(move |w| {
            let mut bits = self.0[w];
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w as u32 * 64 + b) as u8
                })
            })
        })
    }

    /// Every byte of `self` is in `o`.
    pub(crate) fn is_subset(&self, o: &ByteSet) -> bool {
        (0..4).all(|i| self.0[i] & !o.0[i] == 0)
    }

    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    pub(crate) fn of(v: &[u8]) -> ByteSet {
        let mut s = ByteSet::default();
        // Four bytes per turn: the loop's own bookkeeping is a third of
        // the work per byte.
        let mut quads = v.chunks_exact(4);
        for q in &mut quads {
            for &b in q {
                s.insert(b);
            }
        }
        for &b in quads.remainder() {
            s.insert(b);
        }
        s
    }
}
