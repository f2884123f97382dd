//! A small SQL tokenizer: enough of SQL's lexical shape (strings, numbers,
//! words, operators, comments) to judge a value, dialect-agnostic.

use std::ops::Range;

use crate::word_index::WordIndex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Quoted string; `closed` false when the value ends inside it.
    Str {
        closed: bool,
    },
    Num,
    /// and, or, xor, &&, ||
    Logic,
    Union,
    /// Statement starters: select, insert, drop, exec...
    Stmt,
    /// where, having, order, group, limit, from, into...
    Clause,
    /// like, rlike, regexp, in, is, between, sounds...
    CmpWord,
    /// null, true, false...
    Literal,
    /// not: transparent between a logic word and its operand.
    Not,
    /// A word directly followed by '('.
    Func,
    Word,
    /// @var, @@version
    Var,
    Op,
    /// = < > <> != <=> and friends
    Cmp,
    LParen,
    RParen,
    Comma,
    Semi,
    /// `--`, `#` or `/* */` comment.
    Comment,
}

impl Kind {
    /// This kind's bit in a mask of the kinds a tokenization produced
    /// (`tokenize`'s answer): the judge rules a reading out by the kinds
    /// it lacks (`sqli::judge`).
    pub(crate) const fn bit(self) -> u32 {
        1 << match self {
            Kind::Str { .. } => 0,
            Kind::Num => 1,
            Kind::Logic => 2,
            Kind::Union => 3,
            Kind::Stmt => 4,
            Kind::Clause => 5,
            Kind::CmpWord => 6,
            Kind::Literal => 7,
            Kind::Not => 8,
            Kind::Func => 9,
            Kind::Word => 10,
            Kind::Var => 11,
            Kind::Op => 12,
            Kind::Cmp => 13,
            Kind::LParen => 14,
            Kind::RParen => 15,
            Kind::Comma => 16,
            Kind::Semi => 17,
            Kind::Comment => 18,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    pub span: Range<usize>,
    /// First byte of the token (tells operators apart).
    pub first: u8,
}

/// Most tokens looked at: injections are short; the rest is not judged.
pub(crate) const MAX_TOKENS: usize = 64;

/// What a backslash inside a string literal is. The database behind the
/// application is unknown, so a value holding a backslash is read both
/// ways: a break-out is an attack if it is one under either reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backslash {
    /// It escapes the next byte (MySQL's and MariaDB's default `sql_mode`,
    /// PostgreSQL's `E'…'`): `'It\'s'` is one string.
    Escapes,
    /// It is a byte like any other (standard SQL: PostgreSQL with
    /// `standard_conforming_strings`, SQL Server, Oracle, SQLite):
    /// `'x\'` ends at its second quote.
    Plain,
}

/// Tokenizes `v` into `out` (emptied first, its allocation reused). With
/// `quote` set, the value is read as if it followed an opening quote of
/// that kind: the first token is the string it closes. `backslash` says
/// what a backslash inside a string is. Returns the kinds of the tokens
/// after that string (of all tokens without `quote`), each as its
/// `Kind::bit`.
pub(crate) fn tokenize(
    v: &[u8],
    quote: Option<u8>,
    backslash: Backslash,
    out: &mut Vec<Token>,
) -> u32 {
    // At most one allocation: a token spans at least one byte, plus the
    // quoted string that may open the value.
    out.clear();
    out.reserve(MAX_TOKENS.min(v.len()) + 1);
    let mut i = 0;
    let mut kinds = 0;
    // Without a `(` no word is a call: `next_is_paren` is not asked after
    // each word (prose is mostly words).
    let parens = v.contains(&b'(');
    if let Some(q) = quote {
        let (end, closed) = string_end(v, 0, q, backslash);
        out.push(Token {
            kind: Kind::Str { closed },
            span: 0..end,
            first: q,
        });
        i = end;
    }
    while i < v.len() && out.len() < MAX_TOKENS {
        let b = v[i];
        let start = i;
        let kind = match b {
            // Blanks: SQL Server also takes the control bytes 0x01-0x0f
            // (sqlmap's space2mssqlblank), MySQL latin1 0xa0.
            b' ' | 0x01..=0x0f | 0xa0 => {
                i += 1;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                let (end, closed) = string_end(v, i + 1, b, backslash);
                i = end;
                if b == b'`' {
                    Kind::Word
                } else {
                    Kind::Str { closed }
                }
            }
            b'0'..=b'9' => {
                i = number_end(v, i);
                if i < v.len()
                    && (v[i].is_ascii_alphabetic() || v[i] == b'_')
                    && !ends_before_word(v, start, i)
                {
                    i = word_end(v, i);
                    Kind::Word
                } else {
                    Kind::Num
                }
            }
            // MySQL's `\N` is NULL, and ends like a number: `\Nunion select`.
            b'\\' if v.get(i + 1) == Some(&b'N') => {
                i += 2;
                Kind::Literal
            }
            // `x'50'`, `b'01'`, `n'abc'`, `e'a\'b'`: a hex, bit, national
            // or (PostgreSQL) escape string literal is one string, its
            // prefix glued to the quote.
            b'x' | b'X' | b'b' | b'B' | b'n' | b'N' | b'e' | b'E'
                if v.get(i + 1) == Some(&b'\'') && starts_token(v, i) =>
            {
                let (end, closed) = string_end(v, i + 2, b'\'', backslash);
                i = end;
                Kind::Str { closed }
            }
            // Oracle's alternative quoting `q'[it's]'`, `nq'{…}'`: the
            // string ends at its delimiter's closing twin and a quote.
            b'q' | b'Q' | b'n' | b'N'
                if matches!(v.get(i + 1), Some(b'\'' | b'q' | b'Q'))
                    && starts_token(v, i)
                    && q_quote_at(v, i).is_some() =>
            {
                let (end, closed) = q_quote_at(v, i).unwrap_or((v.len(), false));
                i = end;
                Kind::Str { closed }
            }
            // PostgreSQL's Unicode string `U&'d\0061t'`.
            b'u' | b'U'
                if v.get(i + 1) == Some(&b'&')
                    && v.get(i + 2) == Some(&b'\'')
                    && starts_token(v, i) =>
            {
                let (end, closed) = string_end(v, i + 3, b'\'', backslash);
                i = end;
                Kind::Str { closed }
            }
            // PostgreSQL's dollar quoting `$$it's$$`, `$tag$…$tag$`, when
            // closed by the same tag (else `$` starts a word, as before).
            b'$' if dollar_quote_end(v, i).is_some() => {
                i = dollar_quote_end(v, i).unwrap_or(v.len());
                Kind::Str { closed: true }
            }
            // SQL Server's bracketed name `[user name]`: one word.
            b'[' if bracket_name_end(v, i).is_some() => {
                i = bracket_name_end(v, i).unwrap_or(i + 1);
                Kind::Word
            }
            b'.' if v.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(v, i + 1);
                Kind::Num
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | 0x80..=0xff => {
                i = word_end(v, i);
                if b == b'_' && matches!(v.get(i), Some(b'\'' | b'"')) {
                    // MySQL's character set introducer: `_utf8mb4'abc'`,
                    // `_binary'…'` is one string.
                    let (end, closed) = string_end(v, i + 1, v[i], backslash);
                    i = end;
                    Kind::Str { closed }
                } else {
                    word_kind(&v[start..i], || parens && next_is_paren(v, i))
                }
            }
            b'@' => {
                i += 1;
                while i < v.len() && v[i] == b'@' {
                    i += 1;
                }
                i = word_end(v, i);
                Kind::Var
            }
            b'#' => {
                i = line_end(v, i);
                Kind::Comment
            }
            b'-' if v.get(i + 1) == Some(&b'-') => {
                i = line_end(v, i);
                Kind::Comment
            }
            b'/' if v.get(i + 1) == Some(&b'*') => {
                if v.get(i + 2) == Some(&b'!') {
                    // MySQL executes /*!...*/: its content is code.
                    i += 3;
                    while i < v.len() && v[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                i = v[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(v.len(), |p| i + 2 + p + 2);
                Kind::Comment
            }
            b'*' if v.get(i + 1) == Some(&b'/') => {
                i += 2;
                continue;
            }
            b'(' | b')' | b',' | b';' => {
                i += 1;
                match b {
                    b'(' => Kind::LParen,
                    b')' => Kind::RParen,
                    b',' => Kind::Comma,
                    _ => Kind::Semi,
                }
            }
            b'|' | b'&' if v.get(i + 1) == Some(&b) => {
                i += 2;
                Kind::Logic
            }
            b'=' | b'<' | b'>' | b'!' => {
                while i < v.len() && matches!(v[i], b'=' | b'<' | b'>' | b'!') && i - start < 3 {
                    i += 1;
                }
                if &v[start..i] == b"!" {
                    // MySQL's `!` is NOT: `1 and !(1=2)`.
                    Kind::Not
                } else {
                    Kind::Cmp
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' | b':' => {
                i += 1;
                Kind::Op
            }
            _ => {
                i += 1;
                Kind::Word
            }
        };
        kinds |= kind.bit();
        out.push(Token {
            kind,
            span: start..i,
            first: b,
        });
    }
    kinds
}

/// End of a string starting at `from` (after its opening quote). A doubled
/// quote escapes, and a backslash when `backslash` says so.
fn string_end(v: &[u8], from: usize, q: u8, backslash: Backslash) -> (usize, bool) {
    let mut i = from;
    while i < v.len() {
        if v[i] == b'\\' && backslash == Backslash::Escapes {
            i += 2;
            continue;
        }
        if v[i] == q {
            if v.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (v.len(), false)
}

/// Whether a token may start at `i`: no word byte glued before it.
fn starts_token(v: &[u8], i: usize) -> bool {
    i == 0 || !WORD_BYTE[usize::from(v[i - 1])]
}

/// Oracle's `q'<d>…<d>'` (or `nq'…'`) at `i`: its end and whether it is
/// closed. The closing delimiter of `[`, `{`, `(`, `<` is its twin, of any
/// other byte (not a blank) the byte itself.
fn q_quote_at(v: &[u8], i: usize) -> Option<(usize, bool)> {
    let q = if matches!(v[i], b'n' | b'N') {
        i + 1
    } else {
        i
    };
    if !matches!(v.get(q), Some(b'q' | b'Q')) || v.get(q + 1) != Some(&b'\'') {
        return None;
    }
    let open = *v.get(q + 2)?;
    let close = match open {
        b'[' => b']',
        b'{' => b'}',
        b'(' => b')',
        b'<' => b'>',
        b' ' | b'\t' | b'\n' | b'\r' | b'\'' => return None,
        d => d,
    };
    let body = q + 3;
    Some(
        v.get(body..)?
            .windows(2)
            .position(|w| w[0] == close && w[1] == b'\'')
            .map_or((v.len(), false), |p| (body + p + 2, true)),
    )
}

/// PostgreSQL's dollar-quoted string opening at `i` (`$$`, or `$tag$` with
/// a tag of a letter or `_` then letters, digits, `_`): its end after the
/// same closing tag, `None` if no tag opens there or none closes it.
/// Called at most once per token start, and a token list holds at most
/// `MAX_TOKENS`: linear in the value.
fn dollar_quote_end(v: &[u8], i: usize) -> Option<usize> {
    let tag_len = v[i + 1..].iter().take(64).position(|&b| b == b'$')?;
    let tag = &v[i + 1..i + 1 + tag_len];
    if tag
        .first()
        .is_some_and(|&f| !(f.is_ascii_alphabetic() || f == b'_'))
        || !tag.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let open = &v[i..i + tag_len + 2];
    let body = i + open.len();
    v[body..]
        .windows(open.len())
        .position(|w| w == open)
        .map(|p| body + p + open.len())
}

/// SQL Server's `[name]` at `i`: a letter, `_`, `@` or `#`, then name bytes
/// or blanks, up to `]` (64 bytes at most); its end after the `]`.
fn bracket_name_end(v: &[u8], i: usize) -> Option<usize> {
    let first = *v.get(i + 1)?;
    if !(first.is_ascii_alphabetic() || matches!(first, b'_' | b'@' | b'#')) {
        return None;
    }
    let len = v[i + 1..].iter().take(64).position(|&b| {
        !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'#' | b'$' | b' '))
    })?;
    (v[i + 1 + len] == b']').then_some(i + len + 2)
}

fn number_end(v: &[u8], mut i: usize) -> usize {
    if v[i] == b'0' && matches!(v.get(i + 1), Some(b'x') | Some(b'X') | Some(b'b')) {
        i += 2;
        while i < v.len() && v[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < v.len() && (v[i].is_ascii_digit() || v[i] == b'.') {
        i += 1;
    }
    if i < v.len()
        && (v[i] == b'e' || v[i] == b'E')
        && v.get(i + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
    {
        i += 2;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// Whether the number `v[start..end]`, followed by letters, ends there as
/// a database's lexer ends it: a decimal or exponent literal always ends
/// before letters (MySQL reads `1e0union`, `1.0union`, `.1union` as a
/// number then `union`); an integer ends before a keyword that continues a
/// query (SQL Server and PostgreSQL before 15 read `1union`, `1or` so),
/// and otherwise is part of a word (`3rd`, `10px`, `0x1f`, `4x4`).
fn ends_before_word(v: &[u8], start: usize, end: usize) -> bool {
    let num = &v[start..end];
    if num.starts_with(b"0x") || num.starts_with(b"0X") || num.starts_with(b"0b") {
        return false;
    }
    if num.iter().any(|&c| matches!(c, b'.' | b'e' | b'E')) {
        return true;
    }
    // A `(` after it makes only a word or a literal a call (`word_kind`).
    let w = &v[end..word_end(v, end)];
    matches!(
        keyword_kind(w),
        Some(Kind::Union | Kind::Logic | Kind::Stmt)
    )
}

fn word_end(v: &[u8], i: usize) -> usize {
    v[i..]
        .iter()
        .position(|&b| !WORD_BYTE[usize::from(b)])
        .map_or(v.len(), |p| i + p)
}

/// Bytes that continue a word: ASCII letters and digits, `_`, `$`, `.`
/// and every non-ASCII byte.
static WORD_BYTE: [bool; 256] = word_bytes();

const fn word_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.' || c >= 0x80;
        b += 1;
    }
    t
}

fn line_end(v: &[u8], i: usize) -> usize {
    v[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(v.len(), |p| i + p)
}

/// Whether `(` follows, past spaces and block comments (`concat/**/(`).
fn next_is_paren(v: &[u8], mut i: usize) -> bool {
    loop {
        while v.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if v.get(i) == Some(&b'/') && v.get(i + 1) == Some(&b'*') {
            match v[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(p) => i += p + 4,
                None => return false,
            }
            continue;
        }
        return v.get(i) == Some(&b'(');
    }
}

/// The kind of word `w`; `called` tells whether `(` follows it
/// (`next_is_paren`), asked only of a word or a literal.
fn word_kind(w: &[u8], called: impl FnOnce() -> bool) -> Kind {
    let kind = keyword_kind(w).unwrap_or(Kind::Word);
    if matches!(kind, Kind::Word | Kind::Literal) && called() {
        return Kind::Func;
    }
    kind
}

/// The SQL keywords and their kinds; every other word is a `Kind::Word`.
const KEYWORDS: &[(&[u8], Kind)] = &[
    (b"and", Kind::Logic),
    (b"or", Kind::Logic),
    (b"xor", Kind::Logic),
    (b"div", Kind::Logic),
    (b"not", Kind::Not),
    (b"union", Kind::Union),
    (b"select", Kind::Stmt),
    (b"insert", Kind::Stmt),
    (b"update", Kind::Stmt),
    (b"delete", Kind::Stmt),
    (b"drop", Kind::Stmt),
    (b"create", Kind::Stmt),
    (b"alter", Kind::Stmt),
    (b"truncate", Kind::Stmt),
    (b"exec", Kind::Stmt),
    (b"execute", Kind::Stmt),
    (b"declare", Kind::Stmt),
    (b"waitfor", Kind::Stmt),
    (b"shutdown", Kind::Stmt),
    (b"call", Kind::Stmt),
    (b"where", Kind::Clause),
    (b"having", Kind::Clause),
    (b"order", Kind::Clause),
    (b"group", Kind::Clause),
    (b"limit", Kind::Clause),
    (b"offset", Kind::Clause),
    (b"procedure", Kind::Clause),
    (b"into", Kind::Clause),
    (b"from", Kind::Clause),
    (b"as", Kind::Clause),
    (b"by", Kind::Clause),
    (b"case", Kind::Clause),
    (b"when", Kind::Clause),
    (b"then", Kind::Clause),
    (b"else", Kind::Clause),
    (b"end", Kind::Clause),
    (b"set", Kind::Clause),
    (b"values", Kind::Clause),
    (b"table", Kind::Clause),
    (b"all", Kind::Clause),
    (b"distinct", Kind::Clause),
    (b"distinctrow", Kind::Clause),
    (b"top", Kind::Clause),
    (b"delay", Kind::Clause),
    (b"like", Kind::CmpWord),
    (b"rlike", Kind::CmpWord),
    (b"regexp", Kind::CmpWord),
    (b"in", Kind::CmpWord),
    (b"is", Kind::CmpWord),
    (b"between", Kind::CmpWord),
    (b"sounds", Kind::CmpWord),
    (b"glob", Kind::CmpWord),
    (b"match", Kind::CmpWord),
    (b"against", Kind::CmpWord),
    (b"collate", Kind::CmpWord),
    (b"escape", Kind::CmpWord),
    (b"null", Kind::Literal),
    (b"true", Kind::Literal),
    (b"false", Kind::Literal),
    (b"current_user", Kind::Literal),
    (b"user", Kind::Literal),
    (b"version", Kind::Literal),
];

/// The longest keyword (`current_user`).
const KEYWORD_MAX: usize = 12;

/// `KEYWORDS` by word length and first letter.
static KEYWORD_INDEX: WordIndex<{ KEYWORD_MAX + 1 }> = WordIndex::new(KEYWORDS);

/// The kind of keyword `w` is (ASCII case ignored), if it is one.
pub(crate) fn keyword_kind(w: &[u8]) -> Option<Kind> {
    KEYWORD_INDEX.find(KEYWORDS, w)
}

/// The keywords of some kinds, looked up as `keyword_kind` looks up all
/// of them: a word is compared only with the keywords of those kinds of
/// its length and first letter (`false`, `true` with none of `Logic`).
pub(crate) struct KeywordsOf(WordIndex<{ KEYWORD_MAX + 1 }>);

impl KeywordsOf {
    /// The keywords whose `Kind::bit` is in `kinds`.
    pub(crate) const fn kinds(kinds: u32) -> KeywordsOf {
        let mut keep = 0u64;
        let mut k = 0;
        while k < KEYWORDS.len() {
            if KEYWORDS[k].1.bit() & kinds != 0 {
                keep |= 1 << k;
            }
            k += 1;
        }
        KeywordsOf(WordIndex::of_entries(KEYWORDS, keep))
    }

    /// Whether `w` is one of these keywords (ASCII case ignored):
    /// exactly when `keyword_kind(w)` is of one of the kinds.
    pub(crate) fn contains(&self, w: &[u8]) -> bool {
        self.0.find(KEYWORDS, w).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind `KEYWORDS` lists for `w` exactly as written (lower case).
    fn listed(w: &[u8]) -> Option<Kind> {
        KEYWORDS
            .iter()
            .find(|(k, _)| *k == w)
            .map(|&(_, kind)| kind)
    }

    /// `KeywordsOf` holds exactly the keywords of its kinds, in any case,
    /// for masks of one kind, several and none.
    #[test]
    fn keywords_of_kinds_are_those_keyword_kind_names() {
        let masks = [
            0,
            Kind::Logic.bit(),
            Kind::Literal.bit(),
            Kind::Stmt.bit() | Kind::Clause.bit() | Kind::CmpWord.bit(),
            u32::MAX,
        ];
        for mask in masks {
            let set = KeywordsOf::kinds(mask);
            for &(kw, kind) in KEYWORDS {
                for w in [kw.to_vec(), kw.to_ascii_uppercase()] {
                    assert_eq!(set.contains(&w), kind.bit() & mask != 0, "{kw:?} {mask:#x}");
                }
            }
            for w in ["", "a", "alice", "ors", "_or"] {
                assert!(!set.contains(w.as_bytes()), "{w}");
            }
        }
    }

    /// Every keyword is found through `KEYWORD_INDEX` in any case, and
    /// only as a whole word: a letter more or less is another word.
    #[test]
    fn keywords_are_whole_words_in_any_case() {
        for &(kw, kind) in KEYWORDS {
            let mut mixed = kw.to_vec();
            mixed[0] = mixed[0].to_ascii_uppercase();
            for w in [kw.to_vec(), kw.to_ascii_uppercase(), mixed] {
                assert_eq!(
                    keyword_kind(&w),
                    Some(kind),
                    "{}",
                    String::from_utf8_lossy(&w)
                );
            }
            for w in [
                [kw, b"x"].concat(),
                [b"x", kw].concat(),
                [kw, b"_"].concat(),
                kw[..kw.len() - 1].to_vec(),
                kw[1..].to_vec(),
            ] {
                assert_eq!(
                    keyword_kind(&w),
                    listed(&w),
                    "{}",
                    String::from_utf8_lossy(&w)
                );
            }
        }
        for w in [
            "",
            "a",
            "alice",
            "https",
            "colour",
            "_or",
            "1or",
            "or1",
            "éor",
            "current_users",
        ] {
            assert_eq!(keyword_kind(w.as_bytes()), None, "{w}");
        }
    }
}
