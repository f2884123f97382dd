//! SQL injection by shape: read the value as if it were pasted into a query
//! after a single quote, after a double quote, and bare (number context).
//! Injection is a value that *leaves* its context (closes the string, ends
//! the number) and then continues as SQL: a logic operator with an operand
//! and comparison, a comment, UNION SELECT, a stacked statement...
//! Plain text that merely contains SQL words does not have that shape.

use super::sqli_tokens::{tokenize, Backslash, KeywordsOf, Kind, Token};
use super::{mark_bytes, Triggers};
use std::cell::Cell;
use std::ops::Range;

/// Whether `v` reads as SQL injection (fuzzing / tooling entry point).
pub fn is_sqli(v: &[u8]) -> bool {
    detect(v).is_some()
}

/// `detect` on a value with its backslashes as sent: rule 1001 reads a
/// value after `js_decode`, which takes `It\'s` for `It's` and so loses
/// the MySQL reading (`It\'s me' or 1=1--` closes its string at `me'`).
/// Only a value with a backslash right before a quote is read.
pub(crate) fn detect_backslashed(v: &[u8]) -> Option<Range<usize>> {
    v.windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'\'' | b'"'))
        .then(|| detect(v))
        .flatten()
}

/// `detect_backslashed` reads only a value holding a backslash.
pub(crate) const BACKSLASH_TRIGGERS: Triggers = Triggers::new(b"\\");

pub(crate) fn detect(v: &[u8]) -> Option<Range<usize>> {
    detect_with(v, || keywords().as_ref().is_some_and(|ac| ac.is_match(v)))
}

/// `detect`, told by `has_keyword` whether `v` holds one of `KEYWORDS`
/// (ASCII case ignored): the engine answers from its shared literal scan
/// (`Detector::anchors`), asked only for a value without SQL punctuation.
pub(crate) fn detect_with(v: &[u8], has_keyword: impl FnOnce() -> bool) -> Option<Range<usize>> {
    // One pass over the bytes answers every "does it contain" question below.
    let seen = v
        .iter()
        .fold(0u8, |acc, &b| acc | BYTE_CLASS[usize::from(b)]);
    if !could_be_sql(v, seen) {
        return None;
    }
    // Without SQL punctuation, only keyword shapes remain (`union select`,
    // `order by 3`, `1 like 1`): skip text that has none of those words.
    let punctuated = seen & PUNCT != 0;
    if !punctuated && !has_keyword() {
        return None;
    }
    // `judge`'s first test (no reading can shape: `may_be_shaped`), made
    // before the thread's token lists are taken out for it: most values
    // that reach here (`alice@example.com`, `Alice O'Neil`,
    // `/catalog/shoes`) end on it.
    if !may_be_shaped(v, seen) {
        return None;
    }
    let mut bufs = TOKENS.with(Cell::take);
    let found = judge(v, seen, &mut bufs);
    TOKENS.with(|t| t.set(bufs));
    found
}

/// Token lists reused by every call on this thread: the tokenization and
/// its meaningful tokens (a tokenization holds at most `MAX_TOKENS + 1`
/// tokens, so neither grows large).
#[derive(Default)]
struct Buffers {
    toks: Vec<Token>,
    meaningful: Vec<Token>,
}

thread_local! {
    static TOKENS: Cell<Buffers> = const {
        Cell::new(Buffers {
            toks: Vec::new(),
            meaningful: Vec::new(),
        })
    };
}

/// Kinds (`Kind::bit`) one of which every verdict of `after_breakout` and
/// `bare` needs in the reading it judges. Read off their paths: each `Some`
/// there is reached through a token of one of these kinds (a logic word,
/// UNION, a statement, a clause, a comparison word, a comment, `;`, a
/// function call, NOT), except through a comparison after `(`:
/// `func_tautology` and `paren_tautology` (`',1(1=1`, `(1=1)`), which need
/// both `Kind::Cmp` and `Kind::LParen`. `literal_tautology` and
/// `literal_inequality` need a comparison (`Kind::Cmp` or `Kind::CmpWord`).
/// So a reading whose kinds hold none of `SHAPING`, and not `Kind::Cmp`
/// with `Kind::LParen`, yields no verdict, and one with no `SHAPING` kind
/// but a `Kind::Cmp` only through the two literal checks (test
/// `readings_ruled_out_by_their_kinds_yield_nothing`).
const SHAPING: u32 = Kind::Logic.bit()
    | Kind::Union.bit()
    | Kind::Stmt.bit()
    | Kind::Clause.bit()
    | Kind::CmpWord.bit()
    | Kind::Comment.bit()
    | Kind::Semi.bit()
    | Kind::Func.bit()
    | Kind::Not.bit();
const CMP_IN_PARENS: u32 = Kind::Cmp.bit() | Kind::LParen.bit();
/// The keywords of a `SHAPING` kind (`shaping_word`).
static SHAPING_WORDS: KeywordsOf = KeywordsOf::kinds(SHAPING);

/// Whether a reading of these kinds may hold a shape `after_breakout` or
/// `bare` reports (`SHAPING`).
fn may_shape(kinds: u32) -> bool {
    kinds & SHAPING != 0 || kinds & CMP_IN_PARENS == CMP_IN_PARENS
}

/// Reads `v` after each quote it contains, then bare. A reading whose
/// token kinds cannot make a verdict is not judged (`SHAPING`).
fn judge(v: &[u8], seen: u8, bufs: &mut Buffers) -> Option<Range<usize>> {
    judge_with(v, seen, bufs, true)
}

/// `judge`; with `prune` false every reading is judged in full (the tests
/// hold the two to the same answers). A value holding a backslash is read
/// with it escaping the next byte (MySQL) and as a plain byte (standard
/// SQL): `It\'s me' or 1=1--` breaks out under the first, `x\' or 1=1--`
/// under the second.
fn judge_with(v: &[u8], seen: u8, bufs: &mut Buffers, prune: bool) -> Option<Range<usize>> {
    // No reading can shape, and nothing needs tokenizing (`may_be_shaped`).
    if prune && !may_be_shaped(v, seen) {
        return None;
    }
    judge_reading(v, seen, bufs, prune, Backslash::Escapes).or_else(|| {
        (seen & BACKSLASH != 0)
            .then(|| judge_reading(v, seen, bufs, prune, Backslash::Plain))
            .flatten()
    })
}

/// `judge_with` under one reading of a backslash.
fn judge_reading(
    v: &[u8],
    seen: u8,
    bufs: &mut Buffers,
    prune: bool,
    backslash: Backslash,
) -> Option<Range<usize>> {
    let Buffers {
        toks,
        meaningful: buf,
    } = bufs;
    let judged = |kinds: u32| !prune || may_shape(kinds);
    for (quote, class) in [(b'\'', SQUOTE), (b'"', DQUOTE)] {
        if seen & class != 0 {
            let kinds = tokenize(v, Some(quote), backslash, toks);
            if let Some(Token {
                kind: Kind::Str { closed: true },
                ..
            }) = toks.first()
            {
                if judged(kinds) {
                    let rest = meaningful(&toks[1..], kinds, buf);
                    if let Some(r) = after_breakout(v, rest) {
                        return Some(r);
                    }
                }
            }
        }
    }
    let kinds = tokenize(v, None, backslash, toks);
    // A reading not judged can hold only a literal check's shape, and only
    // with a comparison among its kinds (`SHAPING`); a comment is `SHAPING`,
    // so its meaningful tokens are all of them, not copied.
    if !judged(kinds) && kinds & Kind::Cmp.bit() == 0 {
        return None;
    }
    let all = meaningful(toks, kinds, buf);
    if judged(kinds) {
        if let Some(r) = bare(v, all) {
            return Some(r);
        }
    }
    literal_tautology(v, toks).or_else(|| literal_inequality(v, all))
}

/// Whether any reading of `v` may hold a token of a `SHAPING` kind or a
/// comparison: a `SHAPING_BYTE`, a `shaping_pair` or a `shaping_word`.
/// Without all three no reading is judged (`SHAPING_BYTE` says why), so
/// `judge` answers `None` for it unread.
fn may_be_shaped(v: &[u8], seen: u8) -> bool {
    seen & SHAPING_BYTE != 0 || (seen & PAIRED != 0 && shaping_pair(v)) || shaping_word(v)
}

/// Whether `v` holds `--`, `/*`, `||` or `&&`: the only places where a
/// `-`, `/`, `|` or `&` (`PAIRED`) starts a token of a `SHAPING` kind
/// (the tokenizer reads `--` and `/*` as a comment — `/*!` as code, its
/// content tokenized —, `||` and `&&` as logic). A lone one is an
/// operator (`Kind::Op`: not `SHAPING`, not a comparison), part of a
/// number (`1e-5`) or of a string's prefix (`U&'…'`), and, a byte that
/// continues no word, ends the word before it: keywords stay whole runs
/// of letters (`shaping_word`). One look at each pair of bytes.
fn shaping_pair(v: &[u8]) -> bool {
    v.windows(2).any(|w| match w[0] {
        b'-' | b'|' | b'&' => w[1] == w[0],
        b'/' => w[1] == b'*',
        _ => false,
    })
}

/// Whether a maximal run of ASCII letters in `v` is a keyword of a
/// `SHAPING` kind (`union`, `or`, `like`, `not`…; not a literal such as
/// `false`). Also asked by extraction of a JSON cookie (`extract::SqlWords`).
/// The runs are found by index (a `split` with a closure per byte cost
/// more); a run of one letter is no keyword. (Eight bytes a step, by a
/// word's letter bits, cost more still on short values: the work is per
/// run, not per byte.)
pub(crate) fn shaping_word(v: &[u8]) -> bool {
    let letter = |b: u8| (b | 0x20).wrapping_sub(b'a') < 26;
    let (n, mut i) = (v.len(), 0);
    while i < n {
        if !letter(v[i]) {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < n && letter(v[i]) {
            i += 1;
        }
        if i - start > 1 && SHAPING_WORDS.contains(&v[start..i]) {
            return true;
        }
    }
    false
}

/// Byte classes for the one-pass scan in `detect`.
const SPACED: u8 = 1;
const PUNCT: u8 = 2;
const SQUOTE: u8 = 4;
const DQUOTE: u8 = 8;
/// Bytes without which no token of a `SHAPING` kind and no comparison can
/// be read but from a keyword or a `shaping_pair` (`--`, `/*`, `||`,
/// `&&`, of the `PAIRED` bytes): `;` (a statement), `#` (a comment), `!`
/// `=` `<` `>` (a comparison, NOT), `(` (a call, a parenthesis), and `\`
/// (MySQL's `\N`, a token that can end inside a run of letters:
/// `\Nunion`). Without any of them and without a pair every token is a
/// string, number, word, variable, `)`, `,`, an operator of `+-*/%^~:|&`
/// or a keyword, and every keyword token is a whole run of ASCII letters
/// (a word ends before a byte that is not a letter, digit, `_`, `$`, `.`
/// or non-ASCII, and starts after a non-letter): so a value with none of
/// these bytes, no pair and no `shaping_word` has no reading `may_shape`
/// allows, and no comparison for the literal checks (`may_be_shaped`).
const SHAPING_BYTE: u8 = 16;
/// `-`, `/`, `|`, `&`: shaping only as a `shaping_pair`.
const PAIRED: u8 = 64;
/// A backslash: the value is read a second time, the backslash a plain byte.
const BACKSLASH: u8 = 32;
static BYTE_CLASS: [u8; 256] = byte_classes();

/// Punctuation or a blank between words (`could_be_sql`): without one
/// of them a value is one bare word, never an injection. The blanks are
/// the tokenizer's: SQL Server's control bytes 0x01-0x0f, MySQL's 0xa0.
pub(crate) const TRIGGERS: Triggers = Triggers::new(SPACED_BYTES);
const SPACED_BYTES: &[u8] =
    b" '\"()=<>;-#/|&\t\n`@,\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0d\x0e\x0f\xa0";

const fn byte_classes() -> [u8; 256] {
    // SQL punctuation (`detect`).
    const PUNCT_BYTES: &[u8] = b"'\"()=<>;#-/*|&@`";
    let t = mark_bytes([0u8; 256], SPACED_BYTES, SPACED);
    let t = mark_bytes(t, PUNCT_BYTES, PUNCT);
    let t = mark_bytes(t, b"'", SQUOTE);
    let t = mark_bytes(t, b";#!=<>(\\", SHAPING_BYTE);
    let t = mark_bytes(t, b"-/|&", PAIRED);
    let t = mark_bytes(t, b"\\", BACKSLASH);
    mark_bytes(t, b"\"", DQUOTE)
}

/// `11!=1`, `1 is not 2`, `'1' not regexp '2'`: a whole value that only
/// compares two different literals as unequal, a condition forced true.
fn literal_inequality(v: &[u8], t: &[Token]) -> Option<Range<usize>> {
    let lit = |t: &Token| matches!(t.kind, Kind::Num | Kind::Str { closed: true });
    let text = |t: &Token| &v[t.span.clone()];
    let (first, last) = (t.first()?, t.last()?);
    // The last string may be left open for the query's own closing quote.
    let last_ok = lit(last) || last.kind == (Kind::Str { closed: false });
    if t.len() < 3 || t.len() > 4 || !lit(first) || !last_ok {
        return None;
    }
    let ops = &t[1..t.len() - 1];
    let unequal = match ops {
        [op] => op.kind == Kind::Cmp && matches!(text(op), b"!=" | b"<>"),
        [a, b] => match (a.kind, b.kind) {
            (Kind::CmpWord, Kind::Not) => text(a).eq_ignore_ascii_case(b"is"),
            (Kind::Not, Kind::CmpWord) => true,
            _ => false,
        },
        _ => false,
    };
    (unequal && !text(first).eq_ignore_ascii_case(text(last)))
        .then_some(first.span.start..last.span.end)
}

/// `'-email--`, `' sounds like rowid--`: an operator expression right
/// after the break-out, then a comment that cuts off the rest of the query.
fn operator_then_comment(v: &[u8], t: &[Token]) -> bool {
    let n = t.len();
    (3..=6).contains(&n)
        && (matches!(t[0].kind, Kind::Cmp | Kind::CmpWord)
            || t[0].kind == Kind::Op && matches!(t[0].first, b'-' | b'+' | b'*' | b'/' | b'|'))
        && t[n - 1].kind == Kind::Comment
        && v[t[n - 1].span.clone()].starts_with(b"--")
        && t[1..n - 1].iter().all(|x| {
            matches!(
                x.kind,
                Kind::Word
                    | Kind::Num
                    | Kind::Str { closed: true }
                    | Kind::Literal
                    | Kind::CmpWord
                    | Kind::Op
                    | Kind::Cmp
            )
        })
}

/// `1=1`, `'a'='a'`, `42 like 42`: a comparison of a literal with itself
/// is a condition forced true; nothing else writes one.
fn literal_tautology(v: &[u8], toks: &[Token]) -> Option<Range<usize>> {
    let lit = |t: &Token| matches!(t.kind, Kind::Num | Kind::Str { closed: true });
    toks.windows(3).find_map(|w| {
        // The kinds first: the texts are compared only for `lit cmp lit`.
        let cmp = || {
            w[1].kind == Kind::Cmp
                && &v[w[1].span.clone()] != b"!="
                && &v[w[1].span.clone()] != b"<>"
                || w[1].kind == Kind::CmpWord
        };
        let same = || v[w[0].span.clone()].eq_ignore_ascii_case(&v[w[2].span.clone()]);
        (lit(&w[0]) && lit(&w[2]) && cmp() && same()).then(|| w[0].span.start..w[2].span.end)
    })
}

/// SQL words that can shape an injection without any punctuation.
pub(crate) const KEYWORDS: &[&str] = &[
    "union",
    "select",
    "insert",
    "update",
    "delete",
    "drop",
    "order",
    "group",
    "having",
    "where",
    "like",
    "waitfor",
    "exec",
    "declare",
    "shutdown",
    "truncate",
    "alter",
    "create",
    "call",
    "sleep",
    "benchmark",
    "between",
    "regexp",
    "limit",
    "procedure",
    "into",
    "true",
    "false",
    "null",
    "is not",
];

/// `KEYWORDS` in one automaton, for callers without the engine's scan.
fn keywords() -> &'static Option<aho_corasick::AhoCorasick> {
    static AC: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> = std::sync::OnceLock::new();
    AC.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(KEYWORDS)
            .ok()
    })
}

/// Cheap precheck: SQL needs punctuation or a space between words.
fn could_be_sql(v: &[u8], seen: u8) -> bool {
    v.len() >= 2 && seen & SPACED != 0
}

/// Tokens that carry meaning: block comments between tokens are spacing
/// (`union/**/select`); a comment that ends the value is kept (`admin'--`).
/// Without a comment among `kinds` (the tokens' own), that is all of them,
/// as they are; else they are copied into `buf`.
fn meaningful<'t>(toks: &'t [Token], kinds: u32, buf: &'t mut Vec<Token>) -> &'t [Token] {
    if kinds & Kind::Comment.bit() == 0 {
        return toks;
    }
    let n = toks.len();
    buf.clear();
    buf.extend(
        toks.iter()
            .enumerate()
            .filter(|&(i, t)| t.kind != Kind::Comment || i + 1 == n)
            .map(|(_, t)| t.clone()),
    );
    buf
}

fn span(toks: &[Token], from: usize, to: usize) -> Range<usize> {
    let s = toks.get(from).map_or(0, |t| t.span.start);
    let e = toks
        .get(to.min(toks.len()).saturating_sub(1))
        .map_or(s, |t| t.span.end);
    s..e.max(s)
}

/// The value closed a string; `rest` is what follows the closing quote.
fn after_breakout(v: &[u8], t: &[Token]) -> Option<Range<usize>> {
    // Skip closing parens: `') or ('a'='a`.
    let mut k = 0;
    while t.get(k).is_some_and(|x| x.kind == Kind::RParen) {
        k += 1;
    }
    let first = t.get(k)?;
    match first.kind {
        // 1',(select ...) / 1',iif(1=1,1,1/0) / 1',(case when ...)
        Kind::Comma if comma_expression(&t[k + 1..]) => return Some(span(t, k, t.len())),
        // admin'-- / admin'#, but not `color="#ff0000"`: a hex color right after an
        // attribute's quote, then the attribute's closing quote, is markup.
        Kind::Comment if !hex_color_attribute(&v[first.span.clone()]) => {
            return Some(span(t, 0, k + 1))
        }
        // ' union table users-- (MySQL 8's TABLE statement)
        Kind::Union if union_table(v, &t[k + 1..]) => return Some(span(t, k, t.len())),
        // '; drop table x  / ' union select
        Kind::Semi | Kind::Union => {}
        // ' or 1=1 / ' and sleep(5) / ' or true--
        Kind::Logic if logic_operand_ends(v, &t[k + 1..]) => return Some(span(t, k, t.len())),
        // '+(select ...) / '||(select / ' = '1
        Kind::Op | Kind::Cmp if op_continues(v, &t[k + 1..]) => return Some(span(t, k, t.len())),
        // ' where 1=1 / ' order by 3-- / ' having 1=1
        Kind::Clause if clause_continues(&t[k..]) => return Some(span(t, k, t.len())),
        // ' like 'a / ' in (select / ' rlike (select
        Kind::CmpWord if cmp_word_continues(&t[k + 1..]) => return Some(span(t, k, t.len())),
        _ => {}
    }
    if operator_then_comment(v, &t[k..]) {
        return Some(span(t, k, t.len()));
    }
    strong_anywhere(v, &t[k..])
}

/// Whether token `x` is the keyword `word` (lower case), in any case.
fn is_keyword(v: &[u8], x: &Token, word: &[u8]) -> bool {
    v[x.span.clone()].eq_ignore_ascii_case(word)
}

/// After UNION (and one ALL / DISTINCT), MySQL 8's `VALUES` statement as a
/// row of SQL: `VALUES ROW(1,2)`, or `VALUES (` opening a value — a number,
/// string, literal, variable or nested parenthesis (`values (1)`,
/// `values ('a')`). Prose has words there: `Union values (democracy, …)`.
fn union_values(v: &[u8], t: &[Token]) -> bool {
    let t = skip_set_quantifier(v, t);
    let k = |i: usize| t.get(i).map(|x| x.kind);
    t.first()
        .is_some_and(|x| x.kind == Kind::Clause && is_keyword(v, x, b"values"))
        && match k(1) {
            Some(Kind::Func) => true,
            Some(Kind::LParen) => matches!(
                k(2),
                Some(Kind::Num | Kind::Str { .. } | Kind::Literal | Kind::Var | Kind::LParen)
            ),
            _ => false,
        }
}

/// `t` past one leading `ALL` / `DISTINCT` (`union all values row(1,2)`).
fn skip_set_quantifier<'a>(v: &[u8], t: &'a [Token]) -> &'a [Token] {
    match t.first() {
        Some(x)
            if x.kind == Kind::Clause
                && (is_keyword(v, x, b"all") || is_keyword(v, x, b"distinct")) =>
        {
            &t[1..]
        }
        _ => t,
    }
}

/// After a break-out and UNION, MySQL 8's `TABLE name` statement, then
/// what cuts the rest of the query off or continues it as SQL: a comment,
/// `;`, or a clause of SQL shape (`' union table users--`, `… order by 1`,
/// `… where 1=1`). Prose goes on with words: `Workers' Union table tennis
/// league`, `Students' union table bookings where members sign up`.
fn union_table(v: &[u8], t: &[Token]) -> bool {
    let t = skip_set_quantifier(v, t);
    t.first()
        .is_some_and(|x| x.kind == Kind::Clause && is_keyword(v, x, b"table"))
        && t.get(1).is_some_and(|x| x.kind == Kind::Word)
        && match t.get(2).map(|x| x.kind) {
            Some(Kind::Comment | Kind::Semi) => true,
            Some(Kind::Clause) => clause_continues(&t[2..]),
            _ => false,
        }
}

/// `#fff"`, `#ff0000'`: a `#` comment that is really a 3-8 digit hex color closed by a quote.
fn hex_color_attribute(comment: &[u8]) -> bool {
    let Some(rest) = comment.strip_prefix(b"#") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    (3..=8).contains(&digits) && matches!(rest.get(digits), Some(b'"' | b'\''))
}

/// `7||1733913600||1733910000||8e4b…` (a WooCommerce session), `1|2|3`,
/// `4&&5`: numbers and ids joined only by `||` / `&&`, the separators
/// of structured data. In SQL, `||` is also string concatenation; with no
/// comparison, call, comment, statement or clause anywhere after it the
/// chain forces nothing (`1 || 1=1`, `1||sleep(5)`, `1 && 1--` still do).
fn symbol_chain(v: &[u8], t: &[Token], logic: usize) -> bool {
    matches!(v[t[logic].span.clone()].first(), Some(b'|' | b'&'))
        && t[logic..].iter().all(|x| match x.kind {
            Kind::Logic => matches!(v[x.span.clone()].first(), Some(b'|' | b'&')),
            Kind::Num | Kind::Word | Kind::Var => true,
            _ => false,
        })
}

/// Shape of a bare value: number context (`1 or 1=1`) or standalone SQL.
fn bare(v: &[u8], all: &[Token]) -> Option<Range<usize>> {
    // `-1 or 1=1`: a signed number is a number.
    let signed = all.len() > 1
        && all[0].kind == Kind::Op
        && matches!(all[0].first, b'-' | b'+')
        && all[1].kind == Kind::Num;
    // `/create table x`, `*/drop table x`: a statement behind the end of a
    // comment or a path-like slash reads the same as a bare one.
    let slashed = all.len() > 2
        && all[0].kind == Kind::Op
        && matches!(all[0].first, b'/' | b'*')
        && all[1].kind == Kind::Stmt;
    let t = if signed || slashed { &all[1..] } else { all };
    let first = t.first()?;
    match first.kind {
        Kind::Num | Kind::Var => {
            let mut k = 1;
            while t.get(k).is_some_and(|x| x.kind == Kind::RParen) {
                k += 1;
            }
            if let Some(n) = t.get(k) {
                match n.kind {
                    // `1,(select ...)` / `1,iif(1=2,1,1/0)`
                    Kind::Comma if comma_expression(&t[k + 1..]) => {
                        return Some(span(t, 0, t.len()))
                    }
                    Kind::Logic if logic_operand_ends(v, &t[k + 1..]) && !symbol_chain(v, t, k) => {
                        return Some(span(t, 0, t.len()))
                    }
                    Kind::Comment if k > 1 => return Some(span(t, 0, t.len())),
                    Kind::Clause if clause_continues(&t[k..]) => return Some(span(t, 0, t.len())),
                    Kind::CmpWord if matches!(t.get(k + 1).map(|x| x.kind), Some(Kind::LParen)) => {
                        return Some(span(t, 0, t.len()))
                    }
                    _ => {}
                }
            }
        }
        Kind::Logic if first.first.is_ascii_alphabetic() && logic_operand_ends(v, &t[1..]) => {
            return Some(span(t, 0, t.len()))
        }
        Kind::Stmt if statement_shape(v, t) => return Some(span(t, 0, t.len())),
        // ` ORDER BY 6--`, ` HAVING 1=1`: a clause appended to the query.
        Kind::Clause if appended_clause(t) => return Some(span(t, 0, t.len())),
        // `(8266=8266)*9900`, `(select (case when ...`
        Kind::LParen
            if paren_tautology(t)
                || t.get(1).is_some_and(|x| x.kind == Kind::Stmt)
                    && statement_shape(v, &t[1..]) =>
        {
            return Some(span(t, 0, t.len()))
        }
        Kind::Func if func_tautology(t) => return Some(span(t, 0, t.len())),
        Kind::RParen => {
            let mut k = 0;
            while t
                .get(k)
                .is_some_and(|x| matches!(x.kind, Kind::RParen | Kind::Comma | Kind::Literal))
            {
                k += 1;
            }
            if let Some(r) = strong_anywhere(v, &t[k..]) {
                return Some(r);
            }
        }
        _ => {}
    }
    strong_anywhere(v, t)
}

/// An operand: string, number, literal, variable, word, or a function /
/// parenthesised expression. Returns the index after it.
fn operand_at(t: &[Token]) -> Option<usize> {
    let mut k = 0;
    while t.get(k).is_some_and(|x| {
        x.kind == Kind::Not
            || (x.kind == Kind::Op
                && matches!(x.first, b'-' | b'+')
                && matches!(t.get(k + 1).map(|y| y.kind), Some(Kind::Num)))
    }) {
        k += 1;
    }
    match t.get(k)?.kind {
        Kind::Str { .. } | Kind::Num | Kind::Literal | Kind::Var | Kind::Word => Some(k + 1),
        Kind::Func | Kind::LParen => Some(k + 1),
        _ => None,
    }
}

/// After a logic word: `1=1`, `'a'='a'`, `sleep(5)`, `(select`, `true--`, `1#`.
fn logic_operand_ends(v: &[u8], t: &[Token]) -> bool {
    let Some(k) = operand_at(t) else { return false };
    let op = &t[k - 1];
    match op.kind {
        Kind::Func => return true,
        Kind::LParen => {
            return matches!(
                t.get(k).map(|x| x.kind),
                Some(Kind::Stmt)
                    | Some(Kind::Num)
                    | Some(Kind::Str { .. })
                    | Some(Kind::Func)
                    | Some(Kind::LParen)
            )
        }
        _ => {}
    }
    let bare_word = op.kind == Kind::Word;
    match t.get(k).map(|x| x.kind) {
        Some(Kind::Cmp) | Some(Kind::CmpWord) => operand_at(&t[k + 1..]).is_some(),
        // `2 not between 0 and 1`, `1 not in (2)`: the negated comparison word.
        Some(Kind::Not) if t.get(k + 1).is_some_and(|x| x.kind == Kind::CmpWord) => {
            operand_at(&t[k + 2..]).is_some()
        }
        Some(Kind::Op) => op.kind == Kind::Num && t.get(k + 1).is_some_and(|x| x.kind == Kind::Num),
        Some(Kind::Comment) | Some(Kind::Semi) => !bare_word,
        // `' and 'a' or 'b'='b`: a chain of conditions, each operand ending
        // as one; `difference between 'and' and 'or'? 'and' binds tighter`
        // chains quoted words to text.
        Some(Kind::Logic) => !bare_word && logic_operand_ends(v, &t[k + 1..]),
        // `or 1 group by ...` / `and 1 order by 1`
        Some(Kind::Clause) => !bare_word && clause_continues(&t[k..]),
        // `' or '1`, `' or true`: an operand the query's own closing quote
        // ends. A string holding a blank is text (`python 'or' operator`:
        // `' operator` forces nothing).
        None => {
            op.kind == Kind::Literal
                || op.kind == (Kind::Str { closed: false })
                    && !v[op.span.clone()]
                        .iter()
                        .any(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        }
        _ => false,
    }
}

/// After an operator directly behind the break-out: `+(select`, `||(select`, `='1' or`.
fn op_continues(v: &[u8], t: &[Token]) -> bool {
    match t.first().map(|x| x.kind) {
        Some(Kind::LParen) => matches!(
            t.get(1).map(|x| x.kind),
            Some(Kind::Stmt) | Some(Kind::Func)
        ),
        Some(Kind::Func) => true,
        Some(Kind::Str { .. }) | Some(Kind::Num) => {
            matches!(
                t.get(1).map(|x| x.kind),
                Some(Kind::Logic) | Some(Kind::Comment) | Some(Kind::Semi)
            ) && t.len() > 2
                || strong_anywhere(v, t).is_some()
        }
        _ => false,
    }
}

/// After `like` / `in` / `rlike`: `(select`, `('a')`, `'a' or`, `1--`.
fn cmp_word_continues(t: &[Token]) -> bool {
    let k = |i: usize| t.get(i).map(|x| x.kind);
    match k(0) {
        Some(Kind::LParen) => matches!(
            k(1),
            Some(Kind::Stmt) | Some(Kind::Num) | Some(Kind::Str { closed: true })
        ),
        Some(Kind::Str { closed: true }) | Some(Kind::Num) | Some(Kind::Literal) => {
            matches!(
                k(1),
                Some(Kind::Logic) | Some(Kind::Comment) | Some(Kind::Semi)
            )
        }
        _ => false,
    }
}

/// `where 1=1`, `order by 1`, `group by x having`, `limit 1,1`, `into outfile`.
fn clause_continues(t: &[Token]) -> bool {
    let word = |i: usize| t.get(i).map(|x| x.kind);
    // `as alias where ...`
    if word(1) == Some(Kind::Word) && word(2) == Some(Kind::Clause) {
        return clause_continues(&t[2..]);
    }
    match word(1) {
        Some(Kind::Clause) => true, // order by / group by
        Some(Kind::Num) => matches!(
            word(2),
            Some(Kind::Cmp) | Some(Kind::Comment) | Some(Kind::Comma) | None
        ),
        Some(Kind::Str { .. }) | Some(Kind::Word) | Some(Kind::Literal) | Some(Kind::Func) => {
            matches!(word(2), Some(Kind::Cmp) | Some(Kind::CmpWord))
        }
        _ => false,
    }
}

/// A statement keyword that actually looks like a statement.
fn statement_shape(v: &[u8], t: &[Token]) -> bool {
    statement_from(v, t, 1)
}

/// `statement_shape` with the statement's list (what follows the keyword)
/// starting at token `s`: past a set quantifier, `select all …` is judged
/// as `select …`.
fn statement_from(v: &[u8], t: &[Token], s: usize) -> bool {
    // The first 24 tokens' kinds, read in place (no list allocated).
    let kinds = &t[..t.len().min(24)];
    let has = |k: Kind| kinds.iter().any(|x| x.kind == k);
    let text_has_from = t.iter().skip(s).any(|x| x.kind == Kind::Clause);
    let k = |i: usize| kinds.get(i).map(|x| x.kind);
    match t.first().map(|x| x.kind) {
        Some(Kind::Stmt) => {
            // select * from / select count(*) from / select @@version / drop table / waitfor delay
            let second = k(s);
            if second == Some(Kind::Clause) {
                let w = &t[s];
                // `select all …`, `select distinct …`: a set quantifier, then
                // the list (`Select all that apply (or none)` has no list of
                // SQL's shape after it).
                if s == 1
                    && (is_keyword(v, w, b"all")
                        || is_keyword(v, w, b"distinct")
                        || is_keyword(v, w, b"distinctrow"))
                {
                    return statement_from(v, t, 2);
                }
                // `select from users--` (PostgreSQL's empty list): a table,
                // then what ends a statement; `Select from the list below`
                // goes on with words.
                if is_keyword(v, w, b"from") {
                    return k(s + 1) == Some(Kind::Word)
                        && matches!(
                            k(s + 2),
                            None | Some(
                                Kind::Clause
                                    | Kind::Comment
                                    | Kind::Semi
                                    | Kind::RParen
                                    | Kind::Comma
                            )
                        );
                }
                return kinds.len() >= s + 2;
            }
            matches!(
                second,
                Some(Kind::Func) | Some(Kind::Var) | Some(Kind::LParen)
            ) || (matches!(second, Some(Kind::Op)) && text_has_from)
                || (matches!(
                    second,
                    Some(Kind::Num) | Some(Kind::Str { .. }) | Some(Kind::Literal)
                ) && (has(Kind::Comma)
                    || text_has_from
                    || has(Kind::Comment)
                    || kinds.len() == s + 1))
                || (matches!(second, Some(Kind::Word))
                    && (has(Kind::Comment) || (has(Kind::Func) && text_has_from)))
        }
        _ => false,
    }
}

/// `order by 3`, `group by 2--`, `having 1=1`, `where 1=1`.
fn appended_clause(t: &[Token]) -> bool {
    let k = |i: usize| t.get(i).map(|x| x.kind);
    let by = t.len() >= 3 && k(1) == Some(Kind::Clause) && k(2) == Some(Kind::Num);
    let cond = matches!(k(1), Some(Kind::Num) | Some(Kind::Str { closed: true }))
        && k(2) == Some(Kind::Cmp);
    by && matches!(k(3), None | Some(Kind::Comment) | Some(Kind::Comma))
        || cond && operand_at(&t[3..]).is_some()
}

/// After a comma that ends a value: a subquery, a CASE or a function
/// around a tautology.
fn comma_expression(t: &[Token]) -> bool {
    let k = |i: usize| t.get(i).map(|x| x.kind);
    (k(0) == Some(Kind::LParen) && matches!(k(1), Some(Kind::Stmt) | Some(Kind::Clause)))
        || func_tautology(t)
}

/// `(1=1)`: a parenthesised comparison of two literals.
fn paren_tautology(t: &[Token]) -> bool {
    let k = |i: usize| t.get(i).map(|x| x.kind);
    k(0) == Some(Kind::LParen)
        && matches!(k(1), Some(Kind::Num) | Some(Kind::Str { closed: true }))
        && k(2) == Some(Kind::Cmp)
        && matches!(k(3), Some(Kind::Num) | Some(Kind::Str { closed: true }))
        && k(4) == Some(Kind::RParen)
}

/// `make_set(2672=2672,5440)`, `elt(1=1,..)`: a function around a tautology.
fn func_tautology(t: &[Token]) -> bool {
    let k = |i: usize| t.get(i).map(|x| x.kind);
    k(1) == Some(Kind::LParen)
        && matches!(k(2), Some(Kind::Num) | Some(Kind::Str { .. }))
        && k(3) == Some(Kind::Cmp)
        && matches!(k(4), Some(Kind::Num) | Some(Kind::Str { .. }))
}

/// Signals strong enough anywhere once the context is left: UNION SELECT,
/// a stacked statement, logic + tautology, logic + function call.
fn strong_anywhere(v: &[u8], t: &[Token]) -> Option<Range<usize>> {
    // What precedes token `i`, kept as the loop goes: plain words, and whether every token
    // so far is one a sentence has (words, numbers, operators, logic words).
    let (mut words, mut plain) = (0usize, true);
    for i in 0..t.len() {
        if i > 0 {
            let prev = t[i - 1].kind;
            words += usize::from(prev == Kind::Word);
            plain &= matches!(
                prev,
                Kind::Word | Kind::Num | Kind::Cmp | Kind::Op | Kind::Logic | Kind::Not
            );
        }
        match t[i].kind {
            // `...) order by 1#`: a clause appended after closing parens.
            Kind::Clause if i > 0 && t[i - 1].kind == Kind::RParen && appended_clause(&t[i..]) => {
                return Some(span(t, i, t.len()));
            }
            Kind::Union => {
                let mut j = i + 1;
                while t
                    .get(j)
                    .is_some_and(|x| x.kind == Kind::Clause || x.kind == Kind::LParen)
                {
                    j += 1;
                }
                if t.get(j).is_some_and(|x| x.kind == Kind::Stmt) || union_values(v, &t[i + 1..]) {
                    return Some(span(t, i, t.len()));
                }
            }
            Kind::Semi => {
                let rest = &t[i + 1..];
                if rest.first().is_some_and(|x| x.kind == Kind::Stmt) && statement_shape(v, rest) {
                    return Some(span(t, i, t.len()));
                }
                if rest.first().is_some_and(|x| x.kind == Kind::Func)
                    && (rest.iter().any(|x| x.kind == Kind::Stmt) || func_tautology(rest))
                {
                    return Some(span(t, i, t.len()));
                }
            }
            Kind::Logic if i > 0 => {
                let rest = &t[i + 1..];
                // `kids aged 3 and 5 > 2`, `I love <b>it</b> and 5 > 3`: words before the
                // logic word and nothing that closes a string, a bracket or a statement is
                // prose, not an operand left behind; a comparison there is text.
                let prose = words >= 2 && plain;
                if let Some(k) = operand_at(rest) {
                    let opk = rest[k - 1].kind;
                    let tautology = !prose
                        && opk != Kind::Word
                        && matches!(rest.get(k).map(|x| x.kind), Some(Kind::Cmp))
                        && operand_at(&rest[k + 1..]).is_some();
                    // `… or (select …)` past the value's first operand: a
                    // subquery of SQL's own shape, never after prose.
                    // `Upload a photo or (select one from your library)`,
                    // `Type 'help' or (select an option)`, `Is 5 > 3 or (select
                    // a number)` are text (`1 or (select password from users)`
                    // is read where the value leaves its context: `bare`,
                    // `after_breakout`).
                    let subquery = opk == Kind::LParen
                        && rest.get(k).is_some_and(|x| x.kind == Kind::Stmt)
                        && !prose
                        && statement_shape(v, &rest[k..]);
                    let call = opk == Kind::Func
                        || (opk == Kind::LParen && paren_tautology(&rest[k - 1..]))
                        || subquery;
                    if tautology || call {
                        return Some(span(t, i, t.len()));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::sqli_tokens::keyword_kind;
    use crate::detect::test_support::assert_each;

    #[test]
    fn injections_are_found() {
        assert_each(
            is_sqli,
            true,
            &[
                "1' or '1'='1",
                "admin'--",
                "1 or 1=1",
                "-1839\" or \"1\"=\"2",
                "' union select null,null--",
                " UNION ALL SELECT 1,2,3",
                "1)) and (select * from (select(sleep(5)))gcrr)#",
                "1'||(select 'adiv' from dual where 9842=9842",
                "make_set(2672=2672,5440)",
                "1' where 9381=9381;select dbms_pipe.receive_message(chr(66),5) from dual--",
                "') or true--",
                " AND 7300=7300 AND 'pKlZ'='pKlY",
                "1 rlike (select * from (select(sleep(5)))sgvo)-- saxs",
                "1;drop table users",
                "x' union/**/select password from users#",
                "select * from users where id=1",
                "1' and sleep(5)#",
                "1 order by 3--",
                "x'-email--",
                "' sounds like rowid--",
                "11!=1",
                "1 is not 2",
                "'1' not regexp '2'",
                "'x'!='y",
                "/create table persons",
                "select id from users where id=json_extract/**/(/**/'{}'/**/,/**/'$.a'/**/);",
                "admin and 5>3",
                "foo) and 5>3 and (1=1",
                "admin\"#",
                "admin'#comment",
                "1 union all values row(1,2)",
                "1 union distinct values (1,2)",
                "' union values ('a','b')--",
                "' union table users--",
                "' union table users order by 1",
                "' union all table users where 1=1",
                "1 and !(1=2)",
            ],
        );
    }

    #[test]
    fn text_is_not_sql() {
        assert_each(
            is_sqli,
            false,
            &[
                "O'Reilly",
                "rock 'n' roll",
                "l'or et l'argent",
                "I'm looking for 2 or 3 rooms",
                "select your size",
                "don't -- stop",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)",
                "c/ caridad s/n",
                "He said \"hi\" and left",
                "5 and 6",
                "it's #1",
                "union of workers",
                "color: #fff; width: 10px",
                "2024-01-01",
                "a=1&b=2",
                "1 != 1",
                "it's 5 - 3 --",
                "chapter 1 is not 2",
                "kids aged 3 and 5 > 2 years",
                "I love <b>bold</b> text and 5 > 3",
                "team A or 2 = team B",
                "<font color=\"#ff0000\" face=\"Arial\">old</font>",
                "<td bgcolor='#fff'>x</td>",
                // `union values (`, `union table` and `!` in prose (review of session 9).
                "European Union values (democracy, rule of law)",
                "The credit union values (and protects) your savings",
                "Trade union values (fair pay, safe work) matter",
                "Our union values (all of them) its members",
                "Hello! kids aged 3 and 5 > 2 years",
                "Wow! I love <b>bold</b> text and 5 > 3",
                "Great news! team A or 2 = team B",
                "Workers' Union table tennis league",
                "Students' Union table bookings",
                "Students' union table bookings where members sign up",
                "the workers' union table: book by Friday",
            ],
        );
    }

    /// Shapes at the edge of the kinds shortcuts (`SHAPING`, `SHAPING_BYTE`):
    /// made of a comparison alone, a comparison inside parentheses, an
    /// operator and a call after the break-out, a comment, a NOT, a
    /// comparison word, keywords without any punctuation.
    #[test]
    fn attacks_at_the_edge_of_the_kinds_shortcut_are_found() {
        assert_each(
            is_sqli,
            true,
            &[
                "1=1",
                "'a'='a'",
                "(1=1)",
                "x',1(1=1",
                "1,1(1=1",
                "x'+sleep(5)",
                "x'-email--",
                "admin'#",
                "11!=1",
                "'x'!='y",
                "1 is not 2",
                "'1' not regexp '2'",
                "x'||(select 1",
                "make_set(2672=2672,5440)",
                // No byte of `SHAPING_BYTE`: keywords alone shape these.
                " UNION ALL SELECT 1,2,3",
                "x' union select password from users",
                "' or true",
                "1 Or TrUe",
                "1 order by 3",
                "' having 1",
                "' like 'a' or 'b",
                "' union table users order by 1",
                // A lone `-`, `/`, `|` or `&` (no `shaping_pair`): keywords shape.
                "-1 or true",
                "/create table persons",
                "a|b' union select password from users",
                "x&y' or true",
                // A pair: a comment or logic without any other shaping byte.
                "admin'--",
                "x'/*",
                "1 || true",
                "' && true",
            ],
        );
    }

    /// `shaping_word` answers as the formula it replaced (every maximal
    /// run of ASCII letters looked up) on seeded values of keywords of
    /// every kind, words around them, letters, digits, `_`, punctuation
    /// and non-ASCII bytes, glued or apart.
    #[test]
    fn shaping_word_answers_as_every_run_looked_up() {
        const PARTS: &[&str] = &[
            "or",
            "OR",
            "Or",
            "and",
            "union",
            "select",
            "like",
            "not",
            "null",
            "false",
            "by",
            "distinctrow",
            "procedure",
            "o",
            "r",
            "x",
            "alice",
            "ordered",
            "_",
            "1",
            "é",
            " ",
            "'",
            "-",
            ".",
            "@",
            "\\",
            "\0",
        ];
        let formula = |v: &[u8]| {
            v.split(|&b| (b | 0x20).wrapping_sub(b'a') >= 26)
                .any(|w| keyword_kind(w).is_some_and(|k| k.bit() & SHAPING != 0))
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut yes = 0usize;
        for _ in 0..60_000 {
            let mut v = Vec::new();
            for _ in 0..crate::test_support::xorshift(&mut x) % 8 {
                let r = crate::test_support::xorshift(&mut x);
                if r >> 60 == 0 {
                    // Any byte, so every byte value meets the letter test.
                    v.push((r >> 8) as u8);
                } else {
                    v.extend_from_slice(PARTS[(r % PARTS.len() as u64) as usize].as_bytes());
                }
            }
            let want = formula(&v);
            assert_eq!(shaping_word(&v), want, "{:?}", String::from_utf8_lossy(&v));
            yes += usize::from(want);
        }
        assert!(yes > 5_000, "only {yes} values with a shaping word");
    }

    /// The kinds shortcut changes no answer: seeded values built from SQL
    /// fragments (and prose around them) are judged pruned and in full.
    #[test]
    fn readings_ruled_out_by_their_kinds_yield_nothing() {
        const PARTS: &[&str] = &[
            "'",
            "\"",
            "`",
            "1",
            "42",
            "0x1f",
            "1e0",
            ".5",
            "a",
            "alice",
            "O'Neil",
            "@x",
            "@@version",
            "\\N",
            "x'41'",
            " ",
            "  ",
            "\t",
            "\n",
            "\x01",
            "=",
            "!=",
            "<>",
            "<",
            "!",
            "+",
            "-",
            "*",
            "/",
            "|",
            "||",
            "&",
            "&&",
            ":",
            "(",
            ")",
            ",",
            ";",
            "#",
            "--",
            "/*",
            "*/",
            "/*!",
            "or",
            "and",
            "not",
            "union",
            "select",
            "from",
            "where",
            "order",
            "by",
            "table",
            "values",
            "all",
            "like",
            "is",
            "in",
            "null",
            "true",
            "sleep",
            "version",
            "row",
            "users",
            "{",
            "}",
            "?",
            "example.com",
            "https://",
            "é",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut bufs, mut found) = (Buffers::default(), 0usize);
        // Values without a `SHAPING_BYTE`, and injections among them;
        // values with a lone `-`, `/`, `|` or `&` but no `shaping_pair`.
        let (mut unpunctuated, mut found_unpunctuated) = (0usize, 0usize);
        let (mut lone, mut found_lone) = (0usize, 0usize);
        for _ in 0..60_000 {
            let mut v = Vec::new();
            for _ in 0..1 + crate::test_support::xorshift(&mut x) % 7 {
                let r = crate::test_support::xorshift(&mut x);
                v.extend_from_slice(PARTS[(r % PARTS.len() as u64) as usize].as_bytes());
            }
            let seen = v
                .iter()
                .fold(0u8, |acc, &b| acc | BYTE_CLASS[usize::from(b)]);
            let full = judge_with(&v, seen, &mut bufs, false);
            assert_eq!(
                judge_with(&v, seen, &mut bufs, true),
                full,
                "{:?}",
                String::from_utf8_lossy(&v)
            );
            found += usize::from(full.is_some());
            if seen & SHAPING_BYTE == 0 {
                unpunctuated += 1;
                found_unpunctuated += usize::from(full.is_some());
                if seen & PAIRED != 0 && !shaping_pair(&v) {
                    lone += 1;
                    found_lone += usize::from(full.is_some());
                }
            }
        }
        // The control: the values reach the shapes the shortcuts rule out.
        assert!(found > 200, "only {found} injections among the values");
        assert!(
            unpunctuated > 5_000 && found_unpunctuated > 20,
            "{found_unpunctuated} injections in {unpunctuated} values without a SHAPING_BYTE"
        );
        assert!(
            lone > 2_000 && found_lone > 5,
            "{found_lone} injections in {lone} values with a lone `-/|&` and no pair"
        );
    }
}
