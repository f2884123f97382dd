//! A small JSON reader that yields every key and leaf value, bounded in
//! depth. Strings without escapes are borrowed, not copied.
//!
//! The reader keeps no path while it reads: a field records only where
//! its text starts in the document (`Field::json_path`), and the
//! `$.user.name` / `$.items[0]` paths of the listed fields are read back
//! from the document by the same reader, once, when a rule first matched
//! one of them (`JsonDoc::label`). Both readings take the same steps over
//! the same bytes, so each path found is the one the reader was on when
//! it listed the field; reading them back is one more linear pass.

use super::{lower_word_read, plain_token, Class, EncodedWords, Fields, ENCODED_OBJECT};
use crate::policy::Limits;
use std::borrow::Cow;

/// The JSON document a request's JSON fields were read from and the
/// depth limit it was read with: with the fields' places
/// (`Field::json_path`), enough to find their paths again.
#[derive(Debug, Default)]
pub(crate) struct JsonDoc<'a> {
    bytes: &'a [u8],
    max_depth: usize,
    /// The listed fields' paths, read back on the first label asked for.
    paths: std::cell::OnceCell<Paths<'a>>,
}

impl<'a> JsonDoc<'a> {
    /// The label (`$.items[0].name`) of the field of `list` whose text
    /// starts at `at`: the paths of all JSON fields of `list` (the
    /// fields read from this document, in document order) are read back
    /// in one pass the first time a label is asked for.
    pub(crate) fn label(&self, at: usize, list: &[super::Field<'_>]) -> String {
        let paths = self.paths.get_or_init(|| {
            let listed: Vec<usize> = list.iter().filter_map(|f| f.json_path).collect();
            self.read_paths(&listed)
        });
        let segs = paths
            .at
            .binary_search_by_key(&at, |p| p.0)
            .ok()
            .and_then(|k| paths.segs.get(paths.at[k].1.clone()));
        label(segs.unwrap_or(&[]))
    }

    fn read_paths(&self, listed: &[usize]) -> Paths<'a> {
        let mut found = Collect {
            doc: self.bytes,
            targets: listed,
            path: Vec::new(),
            out: Paths::default(),
        };
        let mut r = Reader {
            s: self.bytes,
            max_depth: self.max_depth,
            out: &mut found,
        };
        let _ = r.value(0, 0, false);
        found.out
    }
}

/// The paths of listed fields: (where the field starts, its segments in
/// `segs`), in document order.
#[derive(Debug, Default)]
struct Paths<'a> {
    at: Vec<(usize, std::ops::Range<usize>)>,
    segs: Vec<Seg<'a>>,
}

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone)]
enum Seg<'a> {
    Key(Cow<'a, [u8]>),
    Index(usize),
}

/// A key's or string's text, unescaped, and whether the reader's scan
/// found it made of ASCII lower-case letters only (then `plain_token`'s
/// answer is known: see `Text::plain`).
struct Text<'a> {
    v: Cow<'a, [u8]>,
    lower: bool,
}

impl Text<'_> {
    /// `plain_token` of the text. Letters alone are a word; a word with
    /// no digit spells no path, and one without an upper-case letter is
    /// not read as base64: `plain_token` calls a text of lower-case
    /// letters plain, but for the prototype keys (of which only
    /// `prototype` is letters alone) and a long word a loaded rule reads
    /// (`lower_word_read`: `cafebabedeadbeef`). Any other text is asked.
    #[inline(always)]
    fn plain(&self, words: Option<&EncodedWords>) -> bool {
        if self.lower {
            return match self.v.len() {
                9 => *self.v != *b"prototype",
                n if n >= ENCODED_OBJECT => !lower_word_read(&self.v, words),
                _ => true,
            };
        }
        plain_token(&self.v, words)
    }
}

/// What the reader reports as it reads: the request's fields (`Fields`),
/// or the search for the path of one of them (`Locate`). Each method is
/// called at the same point of the reading in both; `None` stops it.
trait Sink<'a> {
    /// An object key whose text starts at `at`; `constructor` says the
    /// object is the value of a `constructor` key.
    fn key(&mut self, at: usize, key: Text<'a>, constructor: bool) -> Option<()>;
    /// An object key whose text starts at `at` known to be a plain token
    /// that is no key of prototype pollution (`Stop::word`): `key` with
    /// nothing to list.
    fn word_key(&mut self, at: usize, key: std::ops::Range<usize>) -> Option<()>;
    /// A string value whose text starts at `at`.
    fn string(&mut self, at: usize, v: Text<'a>) -> Option<()>;
    /// A string value whose text starts at `at` known to be a plain token
    /// (`Stop::word`): `string` with nothing to list.
    fn word(&mut self, at: usize) -> Option<()>;
    /// An array element with this index is read next.
    fn index(&mut self, n: usize);
    /// The member or element last entered (`key` or `index`) was read.
    fn leave(&mut self);
    /// Past the depth limit: `rest`, from `at`, is the rest of the document.
    fn too_deep(&mut self, at: usize, rest: &'a [u8]);
}

impl<'a> Sink<'a> for Fields<'a> {
    #[inline(always)]
    fn key(&mut self, at: usize, key: Text<'a>, constructor: bool) -> Option<()> {
        // `{"constructor": {"prototype": …}}` reaches `Object.prototype` through two
        // keys that are each a plain word: the pair is one name, as in a query string's
        // `constructor[prototype]`, so the prototype-pollution rule reads it.
        if constructor && *key.v == *b"prototype" {
            let pair = Cow::Borrowed(&b"constructor.prototype"[..]);
            self.push_json(Class::ArgName, at, pair);
        } else if !key.plain(self.words) {
            self.push_json(Class::ArgName, at, key.v);
        }
        Some(())
    }

    #[inline(always)]
    fn word_key(&mut self, _: usize, _: std::ops::Range<usize>) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn word(&mut self, _: usize) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn string(&mut self, at: usize, v: Text<'a>) -> Option<()> {
        // Every JSON field is a checked non-token (`Field::not_token`).
        if !v.plain(self.words) {
            self.push_json(Class::Arg, at, v.v);
        }
        Some(())
    }

    #[inline(always)]
    fn index(&mut self, _: usize) {}

    #[inline(always)]
    fn leave(&mut self) {}

    fn too_deep(&mut self, at: usize, rest: &'a [u8]) {
        // What is left is not inspected field by field.
        self.truncated = true;
        if !plain_token(rest, self.words) {
            self.push_json(Class::Arg, at, Cow::Borrowed(rest));
        }
    }
}

/// Reads the document again, keeping the path, and copies it for each
/// event at a listed offset (`targets`, ascending): the reader's steps
/// and the offsets it reports are those of the first reading. Stops past
/// the last one.
struct Collect<'t, 'a> {
    /// The document (a plain word key's text is a range of it).
    doc: &'a [u8],
    targets: &'t [usize],
    path: Vec<Seg<'a>>,
    out: Paths<'a>,
}

impl Collect<'_, '_> {
    /// Copies the path for the listed field at `at`, if it is one; None
    /// once every listed field is found.
    fn reached(&mut self, at: usize) -> Option<()> {
        while let Some((&next, rest)) = self.targets.split_first() {
            if next > at {
                return Some(());
            }
            if next == at {
                let start = self.out.segs.len();
                self.out.segs.extend_from_slice(&self.path);
                self.out.at.push((at, start..self.out.segs.len()));
            }
            self.targets = rest;
        }
        None
    }
}

impl<'a> Sink<'a> for Collect<'_, 'a> {
    fn key(&mut self, at: usize, key: Text<'a>, _: bool) -> Option<()> {
        self.path.push(Seg::Key(key.v));
        self.reached(at)
    }

    fn word_key(&mut self, at: usize, key: std::ops::Range<usize>) -> Option<()> {
        self.path.push(Seg::Key(Cow::Borrowed(self.doc.get(key)?)));
        self.reached(at)
    }

    fn string(&mut self, at: usize, _: Text<'a>) -> Option<()> {
        self.reached(at)
    }

    fn word(&mut self, at: usize) -> Option<()> {
        self.reached(at)
    }

    fn index(&mut self, n: usize) {
        self.path.push(Seg::Index(n));
    }

    fn leave(&mut self) {
        self.path.pop();
    }

    fn too_deep(&mut self, at: usize, _: &'a [u8]) {
        // The reader stops here in any case.
        let _ = self.reached(at);
    }
}

/// The reader: recursive descent over the bytes, one pass. The place
/// it reads at is passed along and returned (`Some(past the value)`,
/// `None` when the document stops being JSON or the sink stops it), so
/// it stays in a register through a container's loop instead of being
/// stored and loaded per token.
struct Reader<'a, 's, S> {
    s: &'a [u8],
    max_depth: usize,
    out: &'s mut S,
}

/// Parses `body` as JSON into fields. Returns false (fields may be partial)
/// when it is not JSON, so the caller can inspect it raw.
pub(crate) fn parse<'a>(body: &'a [u8], limits: &Limits, f: &mut Fields<'a>) -> bool {
    f.json_doc = JsonDoc {
        bytes: body,
        max_depth: limits.max_depth,
        ..JsonDoc::default()
    };
    let mut r = Reader {
        s: body,
        max_depth: limits.max_depth,
        out: f,
    };
    r.value(0, 0, false)
        .is_some_and(|end| blank_run(body, end) == body.len())
}

/// The first byte at or after `i` that is not a blank, and where it is.
/// Compact JSON has no blanks between tokens: a byte above the space
/// ends the blanks at once (every JSON blank is at most 0x20).
#[inline(always)]
fn next(s: &[u8], i: usize) -> Option<(usize, u8)> {
    match s.get(i) {
        Some(&b) if b > b' ' => Some((i, b)),
        _ => {
            let i = blank_run(s, i);
            s.get(i).map(|&b| (i, b))
        }
    }
}

#[inline(never)]
fn blank_run(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Past the byte `b` at `i` or after blanks; None when another byte
/// (or the end) comes first.
#[inline(always)]
fn past(s: &[u8], i: usize, b: u8) -> Option<usize> {
    let (i, next) = next(s, i)?;
    (next == b).then_some(i + 1)
}

impl<'a, S: Sink<'a>> Reader<'a, '_, S> {
    /// A value at `i` (blanks first); `constructor`: it is the value of a
    /// `constructor` key. Past the depth limit the rest of the document,
    /// from `i` (before any blank), is reported whole and reading stops.
    fn value(&mut self, i: usize, depth: usize, constructor: bool) -> Option<usize> {
        let s = self.s;
        if depth > self.max_depth {
            let rest = s.get(i..).unwrap_or_default();
            self.out.too_deep(i, rest);
            return None;
        }
        let (i, b) = next(s, i)?;
        match b {
            b'{' => self.object(i, depth, constructor),
            b'[' => self.array(i, depth),
            b'"' => self.string_value(i),
            _ => literal(s, i),
        }
    }

    /// A member's or element's value: `value`, with strings and literals
    /// (most values) read here, without a call that may recurse: within
    /// the depth limit the same steps as `value`'s.
    #[inline(always)]
    fn member(&mut self, i: usize, depth: usize, constructor: bool) -> Option<usize> {
        if depth > self.max_depth {
            return self.value(i, depth, constructor);
        }
        let s = self.s;
        let (i, b) = next(s, i)?;
        match b {
            b'"' => self.string_value(i),
            b'{' => self.object(i, depth, constructor),
            b'[' => self.array(i, depth),
            _ => literal(s, i),
        }
    }

    /// A string value on its opening quote at `at`.
    #[inline(always)]
    fn string_value(&mut self, at: usize) -> Option<usize> {
        let s = self.s;
        let start = at + 1;
        let stop = scan(s, start)?;
        if stop.word {
            self.out.word(at)?;
            return Some(stop.at + 1);
        }
        let (v, end) = text(s, start, stop)?;
        self.out.string(at, v)?;
        Some(end)
    }

    /// An object on its `{` at `i`.
    fn object(&mut self, i: usize, depth: usize, constructor: bool) -> Option<usize> {
        let s = self.s;
        let (mut i, mut b) = next(s, i + 1)?;
        if b == b'}' {
            return Some(i + 1);
        }
        loop {
            if b != b'"' {
                return None;
            }
            let start = i + 1;
            let stop = scan(s, start)?;
            let (colon, next_constructor);
            // `prototype` and `constructor` are the two keys of
            // lower-case letters that are read.
            if stop.word {
                colon = past(s, stop.at + 1, b':')?;
                next_constructor = false;
                self.out.word_key(i, start..stop.at)?;
            } else {
                let (key, end) = text(s, start, stop)?;
                colon = past(s, end, b':')?;
                next_constructor = *key.v == *b"constructor";
                self.out.key(i, key, constructor)?;
            }
            let r = self.member(colon, depth + 1, next_constructor);
            self.out.leave();
            let (j, c) = next(s, r?)?;
            if c == b',' {
                (i, b) = next(s, j + 1)?;
            } else if c == b'}' {
                return Some(j + 1);
            } else {
                return None;
            }
        }
    }

    /// An array on its `[` at `i`.
    fn array(&mut self, i: usize, depth: usize) -> Option<usize> {
        let s = self.s;
        let (mut i, b) = next(s, i + 1)?;
        if b == b']' {
            return Some(i + 1);
        }
        let mut n = 0usize;
        loop {
            self.out.index(n);
            let r = self.member(i, depth + 1, false);
            self.out.leave();
            let (j, c) = next(s, r?)?;
            if c == b',' {
                i = j + 1;
            } else if c == b']' {
                return Some(j + 1);
            } else {
                return None;
            }
            n += 1;
        }
    }
}

/// `true`, `false`, `null` or a number at `start`: plain tokens, nothing
/// to inspect. One pass finds the literal's end (`,`, `}`, `]`, a blank)
/// and whether every byte of it is a number byte (`is_literal`'s test,
/// read off the same bytes).
#[inline(always)]
fn literal(s: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let mut number = true;
    while let Some(&b) = s.get(i) {
        let class = LITERAL_BYTE[usize::from(b)];
        if class == LITERAL_END {
            break;
        }
        number &= class == NUMBER_BYTE;
        i += 1;
    }
    let lit = s.get(start..i)?;
    (!lit.is_empty() && (number || matches!(lit, b"true" | b"false" | b"null"))).then_some(i)
}

/// The string whose text starts at `start` and whose scan stopped at
/// `stop`, unescaped, and the place past its closing quote.
#[inline(always)]
fn text(s: &[u8], start: usize, stop: Stop) -> Option<(Text<'_>, usize)> {
    if stop.backslash {
        return escaped(s, start, stop.at);
    }
    let v = Cow::Borrowed(s.get(start..stop.at)?);
    Some((
        Text {
            v,
            lower: stop.lower,
        },
        stop.at + 1,
    ))
}

/// A string with an escape: its text from `start` to the closing quote,
/// unescaped (the bytes before `first`, the first backslash, copied as
/// they are), and the place past the quote. None when it does not end or
/// an escape is cut or not hex where it must be.
#[cold]
#[inline(never)]
fn escaped(s: &[u8], start: usize, first: usize) -> Option<(Text<'_>, usize)> {
    let mut out = s.get(start..first)?.to_vec();
    let mut i = first;
    while i < s.len() {
        match s[i] {
            b'"' => {
                let v = Cow::Owned(out);
                return Some((Text { v, lower: false }, i + 1));
            }
            b'\\' => {
                let e = *s.get(i + 1)?;
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = s.get(i..i + 4)?;
                        let cp = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                        i += 4;
                        crate::transform::push_char(&mut out, cp);
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// Where a string's scan stopped: the first `"` or `\\` from its start,
/// which of the two, and whether every byte before it is an ASCII
/// lower-case letter (false when not known: see `scan`).
#[derive(Debug, PartialEq, Eq)]
struct Stop {
    at: usize,
    backslash: bool,
    lower: bool,
    /// The string ends here, unescaped, as a word of lower-case letters
    /// that `Text::plain` calls plain without asking anything, as a key
    /// or as a value: not `prototype` (the one such word of 9 letters that
    /// is read), not `constructor` (11: its object's keys are read as a
    /// pair), and shorter than `ENCODED_OBJECT` (a longer word may be one
    /// a loaded rule reads, `lower_word_read`). Known at once for a word
    /// of up to 7 letters (`scan`'s first look).
    word: bool,
}

/// The first `"` or `\\` in `s` from `start`, and whether the bytes before
/// it are lower-case letters. The first eight bytes are read as one word
/// for the first byte that is not a lower-case letter (a key or a tag
/// ends there, at its quote); past it, or past eight letters,
/// `scan_words`. Fewer than eight bytes left are read one by one and not
/// called lower-case.
#[inline(always)]
fn scan(s: &[u8], start: usize) -> Option<Stop> {
    let Some(w) = s.get(start..).and_then(<[u8]>::first_chunk::<8>) else {
        return scan_tail(s, start);
    };
    let w = u64::from_le_bytes(*w);
    let other = !lower_case(w) & HIGH;
    if other == 0 {
        return scan_words(s, start, start + 8);
    }
    let bit = other.trailing_zeros();
    let at = start + (bit / 8) as usize;
    match (w >> (bit & !7)) as u8 {
        // Fewer than eight letters: a word.
        b'"' => Some(Stop {
            at,
            backslash: false,
            lower: true,
            word: true,
        }),
        b'\\' => Some(Stop {
            at,
            backslash: true,
            lower: true,
            word: false,
        }),
        _ => scan_quote(s, at + 1),
    }
}

/// `scan` of a string from `origin` whose bytes up to `start` are
/// lower-case letters, eight bytes at a time (a byte of `x` is zero just
/// where `(x - ONES) & !x & HIGH` first sets its high bit; bits can also
/// be set above a zero byte, never below the first one). Once a word
/// holds another byte, the rest is only searched (`scan_quote`).
#[inline(never)]
fn scan_words(s: &[u8], origin: usize, start: usize) -> Option<Stop> {
    let mut at = start;
    while let Some(w) = s.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*w);
        let hits = stops(w);
        if hits != 0 {
            let bit = hits.trailing_zeros();
            // The high bits of the bytes before the stop.
            let before = HIGH & ((1u64 << (bit & !7)) - 1);
            let stop = at + (bit / 8) as usize;
            let backslash = (w >> (bit & !7)) as u8 == b'\\';
            let lower = lower_case(w) & before == before;
            let len = stop - origin;
            return Some(Stop {
                at: stop,
                backslash,
                lower,
                word: lower && !backslash && len != 9 && len != 11 && len < ENCODED_OBJECT,
            });
        }
        if lower_case(w) != HIGH {
            return scan_quote(s, at + 8);
        }
        at += 8;
    }
    scan_tail(s, at)
}

/// The high bit of each byte of `w` that is a `"` or a `\\` — exactly so
/// up to the first one (see `scan_words`).
#[inline(always)]
fn stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
}

/// `scan` from `start` of a text known not to be lower-case letters only.
#[inline(always)]
fn scan_quote(s: &[u8], start: usize) -> Option<Stop> {
    let mut at = start;
    while let Some(w) = s.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*w);
        let hits = stops(w);
        if hits != 0 {
            let bit = hits.trailing_zeros();
            return Some(Stop {
                at: at + (bit / 8) as usize,
                backslash: (w >> (bit & !7)) as u8 == b'\\',
                lower: false,
                word: false,
            });
        }
        at += 8;
    }
    scan_tail(s, at)
}

/// `scan` of the last bytes of `s`, one by one.
#[inline(never)]
fn scan_tail(s: &[u8], start: usize) -> Option<Stop> {
    let rest = s.get(start..)?;
    let k = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    Some(Stop {
        at: start + k,
        backslash: rest[k] == b'\\',
        lower: false,
        word: false,
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is an ASCII lower-case letter.
fn lower_case(w: u64) -> u64 {
    // On the low seven bits of each byte no sum carries into the next
    // byte: `b + 0x1f` reaches 0x80 from `a` on, `b + 0x05` from `{` on.
    let low = w & !HIGH;
    let from_a = low.wrapping_add(ONES * 0x1f);
    let past_z = low.wrapping_add(ONES * 0x05);
    from_a & !past_z & !w & HIGH
}

/// The label of a JSON path (`$.items[0].name`).
fn label(path: &[Seg<'_>]) -> String {
    let len: usize = path
        .iter()
        .map(|seg| match seg {
            Seg::Key(k) => k.len() + 1,
            Seg::Index(_) => 8,
        })
        .sum();
    let mut l = String::with_capacity(len + 1);
    l.push('$');
    for seg in path {
        match seg {
            Seg::Key(k) => {
                l.push('.');
                match std::str::from_utf8(k) {
                    Ok(k) => l.push_str(k),
                    Err(_) => l.push_str(&String::from_utf8_lossy(k)),
                }
            }
            Seg::Index(n) => {
                l.push('[');
                push_index(&mut l, *n);
                l.push(']');
            }
        }
    }
    l
}

/// Decimal digits of an array index, without a formatter.
fn push_index(l: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        l.push(char::from(d));
    }
}

/// `LITERAL_BYTE`: a byte that ends a literal (`,`, `}`, `]`, an ASCII
/// blank), a byte of a number (digits, `-`, `+`, `.`, `e`, `E`), or any
/// other byte.
const LITERAL_END: u8 = 2;
const NUMBER_BYTE: u8 = 1;
const LITERAL_BYTE: [u8; 256] = literal_bytes();

const fn literal_bytes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
            LITERAL_END
        } else if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E') {
            NUMBER_BYTE
        } else {
            0
        };
        b += 1;
    }
    t
}

/// What `Reader::literal` accepts (its table's answer is held to this).
#[cfg(test)]
fn is_literal(v: &[u8]) -> bool {
    v == b"true"
        || v == b"false"
        || v == b"null"
        || v.iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::xorshift;

    /// The literal reader's one pass ends where the scan for `,` `}` `]`
    /// or a blank ended, and accepts what `is_literal` accepted: seeded
    /// byte strings over number bytes, letters of `true`/`false`/`null`,
    /// the ends, blanks and other bytes.
    #[test]
    fn literals_read_in_one_pass_as_before() {
        let alphabet = b"0123456789-+.eEtrufalsn,}] \t\n\r\x0cx\"{\x00\xff";
        let words: [&[u8]; 5] = [b"true", b"false", b"null", b"1e5", b"-0.5"];
        let mut x = 0x11e7_a100_0000_0005u64;
        let (mut yes, mut no) = (0, 0);
        for _ in 0..50_000 {
            let r = xorshift(&mut x);
            let mut v: Vec<u8> = Vec::new();
            if r.is_multiple_of(3) {
                v.extend_from_slice(words[(r >> 8) as usize % words.len()]);
            }
            for _ in 0..(r >> 16) % 8 {
                let r = xorshift(&mut x);
                v.push(alphabet[r as usize % alphabet.len()]);
            }
            let end = v
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(v.len());
            let want = (end > 0 && is_literal(&v[..end])).then_some(end);
            assert_eq!(literal(&v, 0), want, "{:?}", v);
            // Mid-document too: the same answer from a later start.
            let mut w = b"[1,".to_vec();
            w.extend_from_slice(&v);
            assert_eq!(literal(&w, 3), want.map(|e| e + 3), "{:?}", v);
            if want.is_some() {
                yes += 1
            } else {
                no += 1
            }
        }
        assert!(yes > 5_000 && no > 5_000, "{yes} / {no}");
    }

    /// Texts for keys and strings: plain tokens (not listed), text that
    /// is listed, JSON escapes, and the two keys of prototype pollution.
    const TEXTS: [(&str, &str); 19] = [
        ("name", "name"),
        ("descriptions", "descriptions"),
        ("Outdoor", "Outdoor"),
        ("prototypes", "prototypes"),
        ("SKU-00042", "SKU-00042"),
        ("41.99", "41.99"),
        ("x y", "x y"),
        ("a.b", "a.b"),
        ("Alice O'Neil", "Alice O'Neil"),
        ("alice@example.com", "alice@example.com"),
        ("a\\u003cb", "a<b"),
        ("say \\\"hi\\\"", "say \"hi\""),
        ("tab\\there\\n", "tab\there\n"),
        ("caf\\u00e9 au lait", "café au lait"),
        ("back\\\\slash", "back\\slash"),
        ("[0].k", "[0].k"),
        ("constructor", "constructor"),
        ("prototype", "prototype"),
        ("", ""),
    ];

    /// A generated document, and what reading it must list: each key's
    /// and string's label (the path from the root, written while the
    /// document is generated) and its unescaped text.
    struct Doc {
        x: u64,
        text: String,
        max_depth: usize,
        blanks: bool,
        expect: Vec<(String, Vec<u8>)>,
        /// Where the part past the depth limit starts, and its label.
        deep: Option<(usize, String)>,
    }

    impl Doc {
        fn pick(&mut self, n: u64) -> u64 {
            xorshift(&mut self.x) % n
        }

        fn blank(&mut self) {
            if self.blanks && self.pick(4) == 0 {
                let k = self.pick(4) as usize;
                self.text.push_str([" ", "\n", "\t ", "\r\n  "][k]);
            }
        }

        /// A container's bracket, and how many members it gets.
        fn open(&mut self, bracket: char) -> u64 {
            self.text.push(bracket);
            self.blank();
            self.pick(4)
        }

        /// Before member `n`: a comma after the first.
        fn comma(&mut self, n: u64) {
            if n > 0 {
                self.text.push(',');
                self.blank();
            }
        }

        fn string(&mut self) -> Vec<u8> {
            let (raw, text) = TEXTS[self.pick(TEXTS.len() as u64) as usize];
            self.text.push('"');
            self.text.push_str(raw);
            self.text.push('"');
            text.as_bytes().to_vec()
        }

        fn value(&mut self, depth: usize, label: &str, constructor: bool) {
            if self.deep.is_some() {
                return;
            }
            if depth > self.max_depth {
                self.deep = Some((self.text.len(), label.to_string()));
            }
            match self.pick(if depth > 4 { 3 } else { 6 }) {
                0 => {
                    let k = self.pick(4) as usize;
                    self.text.push_str(["1", "-2.5e3", "true", "null"][k]);
                }
                1 | 2 => {
                    let v = self.string();
                    if self.deep.is_none() && !plain_token(&v, None) {
                        self.expect.push((label.to_string(), v));
                    }
                }
                3 => {
                    for n in 0..self.open('[') {
                        self.comma(n);
                        self.value(depth + 1, &format!("{label}[{n}]"), false);
                        self.blank();
                    }
                    self.text.push(']');
                }
                _ => {
                    for n in 0..self.open('{') {
                        self.comma(n);
                        let key = self.string();
                        let path = format!("{label}.{}", String::from_utf8_lossy(&key));
                        if self.deep.is_some() {
                        } else if constructor && key == b"prototype" {
                            self.expect
                                .push((path.clone(), b"constructor.prototype".to_vec()));
                        } else if !plain_token(&key, None) {
                            self.expect.push((path.clone(), key.clone()));
                        }
                        self.blank();
                        self.text.push(':');
                        self.blank();
                        self.value(depth + 1, &path, key == b"constructor");
                        self.blank();
                    }
                    self.text.push('}');
                }
            }
        }
    }

    /// Each field's label, read back from the document, and its text.
    fn read(text: &[u8], max_depth: usize) -> (bool, Vec<(String, Vec<u8>)>) {
        let limits = Limits {
            max_depth,
            ..Limits::default()
        };
        let mut f = Fields::new(&limits);
        let ok = parse(text, &limits, &mut f);
        let listed = f.list.iter().map(|x| {
            let label = x.target(&f);
            let label = label.strip_prefix("json:").unwrap_or(&label).to_string();
            (label, x.value.to_vec())
        });
        (ok, listed.collect())
    }

    /// Labels read back from the document are the paths the reader was
    /// on (the generator's own, written as it wrote the document), for
    /// seeded documents with escapes, blanks, nested arrays and objects,
    /// `constructor.prototype`, and past the depth limit.
    #[test]
    fn labels_read_back_are_the_paths_of_the_fields() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let (mut fields, mut deep) = (0, 0);
        for round in 0..4000 {
            let max_depth = if round % 2 == 0 { 32 } else { 2 };
            let mut d = Doc {
                x: xorshift(&mut x),
                text: String::new(),
                max_depth,
                // Blanks move where the part past the limit starts.
                blanks: max_depth == 32,
                expect: Vec::new(),
                deep: None,
            };
            d.value(0, "$", false);
            if let Some((at, label)) = &d.deep {
                let rest = d.text.as_bytes()[*at..].to_vec();
                if !plain_token(&rest, None) {
                    d.expect.push((label.clone(), rest));
                }
                deep += 1;
            }
            let (ok, listed) = read(d.text.as_bytes(), max_depth);
            assert_eq!(ok, d.deep.is_none(), "{}", d.text);
            assert_eq!(listed, d.expect, "{}", d.text);
            fields += listed.len();
            // Cut short (mostly not JSON any more): what was listed before
            // the cut keeps its label.
            if !d.text.is_empty() && d.deep.is_none() {
                let cut = d.pick(d.text.len() as u64) as usize;
                let (_, partial) = read(&d.text.as_bytes()[..cut], max_depth);
                assert!(partial.len() <= listed.len(), "{}", d.text);
                assert_eq!(partial[..], listed[..partial.len()], "{cut} {}", d.text);
            }
        }
        assert!(
            fields > 4000 && deep > 200,
            "{fields} fields, {deep} past the limit"
        );
    }

    /// The scan finds the first quote or backslash, and calls the bytes
    /// before it lower-case letters (and a word: not 9 or 11 letters,
    /// fewer than 16, unescaped) only when they are (exactly so when it
    /// stops within the bytes it reads eight at a time).
    #[test]
    fn the_string_scan_knows_lower_case_text() {
        let alphabet = b"az`{AZ_0 \"\\\xc3\xa1\xfa";
        let mut x = 0x1ee7_0000_0000_0003u64;
        let mut known = 0;
        for _ in 0..50_000 {
            let r = xorshift(&mut x);
            let len = (r % 24) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let k = (xorshift(&mut x) % 40) as usize;
                    // Mostly letters, so long lower-case runs occur.
                    if k < 30 {
                        b'a' + (k % 26) as u8
                    } else {
                        alphabet[(k + i) % alphabet.len()]
                    }
                })
                .collect();
            // From a start past the first bytes, as a string's text starts.
            let start = (r >> 8) as usize % 3;
            let stop = (start..s.len()).find(|&i| s[i] == b'"' || s[i] == b'\\');
            let got = scan(&s, start);
            assert_eq!(got.as_ref().map(|g| g.at), stop, "{s:?}");
            if let Some(got) = got {
                assert_eq!(got.backslash, s[got.at] == b'\\', "{s:?}");
                let all = s[start..got.at].iter().all(u8::is_ascii_lowercase);
                let len = got.at - start;
                let word = all && !got.backslash && !matches!(len, 9 | 11) && len < 16;
                assert!(!got.lower || all, "{s:?}");
                assert!(!got.word || word, "{s:?}");
                if got.at < start + (s.len() - start) / 8 * 8 {
                    assert_eq!(got.lower, all, "{s:?}");
                    assert_eq!(got.word, word, "{s:?}");
                    known += usize::from(all);
                }
            }
        }
        assert!(known > 1000, "{known}");
    }

    /// A straightforward reader of what `parse` must list, written for
    /// the test alone: recursive descent over the bytes, the path kept as
    /// a stack of label segments and copied into every push, every text
    /// unescaped into its own `Vec` and asked `plain_token` (no shortcut).
    /// It lists (class, where the text starts, value, label) in the order
    /// a reading pushes them, and says whether the depth limit cut.
    struct Reference<'s> {
        s: &'s [u8],
        words: Option<&'s EncodedWords>,
        i: usize,
        max_depth: usize,
        path: Vec<String>,
        pushes: Vec<(Class, usize, Vec<u8>, String)>,
        too_deep: bool,
    }

    impl Reference<'_> {
        /// Whether `s` is one JSON value (blanks around it allowed).
        fn read(&mut self) -> bool {
            let ok = self.value(0, false);
            self.blanks();
            ok && self.i == self.s.len()
        }

        fn push(&mut self, class: Class, at: usize, v: Vec<u8>) {
            let label = format!("${}", self.path.concat());
            self.pushes.push((class, at, v, label));
        }

        fn blanks(&mut self) {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn value(&mut self, depth: usize, constructor: bool) -> bool {
            if depth > self.max_depth {
                // The rest of the document, from before any blank, whole.
                self.too_deep = true;
                let rest = self.s[self.i..].to_vec();
                if !plain_token(&rest, self.words) {
                    self.push(Class::Arg, self.i, rest);
                }
                return false;
            }
            self.blanks();
            match self.s.get(self.i) {
                None => false,
                Some(b'{') => self.object(depth, constructor),
                Some(b'[') => self.array(depth),
                Some(b'"') => {
                    let at = self.i;
                    let Some(v) = self.string() else {
                        return false;
                    };
                    if !plain_token(&v, self.words) {
                        self.push(Class::Arg, at, v);
                    }
                    true
                }
                Some(_) => {
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(|&b| {
                        !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace()
                    }) {
                        self.i += 1;
                    }
                    let lit = &self.s[start..self.i];
                    matches!(lit, b"true" | b"false" | b"null")
                        || (!lit.is_empty()
                            && lit.iter().all(|b| {
                                b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                            }))
                }
            }
        }

        /// After a member or element: `Some(true)` past a `,`,
        /// `Some(false)` past `close`.
        fn comma_or(&mut self, close: u8) -> Option<bool> {
            self.blanks();
            let b = *self.s.get(self.i)?;
            self.i += 1;
            (b == b',' || b == close).then_some(b == b',')
        }

        fn object(&mut self, depth: usize, constructor: bool) -> bool {
            self.i += 1;
            self.blanks();
            if self.s.get(self.i) == Some(&b'}') {
                self.i += 1;
                return true;
            }
            loop {
                self.blanks();
                if self.s.get(self.i) != Some(&b'"') {
                    return false;
                }
                let at = self.i;
                let Some(key) = self.string() else {
                    return false;
                };
                self.blanks();
                if self.s.get(self.i) != Some(&b':') {
                    return false;
                }
                self.i += 1;
                self.path
                    .push(format!(".{}", String::from_utf8_lossy(&key)));
                if constructor && key == b"prototype" {
                    self.push(Class::ArgName, at, b"constructor.prototype".to_vec());
                } else if !plain_token(&key, self.words) {
                    self.push(Class::ArgName, at, key.clone());
                }
                let ok = self.value(depth + 1, key == b"constructor");
                self.path.pop();
                if !ok {
                    return false;
                }
                match self.comma_or(b'}') {
                    Some(true) => {}
                    Some(false) => return true,
                    None => return false,
                }
            }
        }

        fn array(&mut self, depth: usize) -> bool {
            self.i += 1;
            self.blanks();
            match self.s.get(self.i) {
                None => return false,
                Some(b']') => {
                    self.i += 1;
                    return true;
                }
                // The first element starts past the blanks.
                Some(_) => {}
            }
            for n in 0.. {
                self.path.push(format!("[{n}]"));
                let ok = self.value(depth + 1, false);
                self.path.pop();
                if !ok {
                    return false;
                }
                match self.comma_or(b']') {
                    Some(true) => {}
                    Some(false) => return true,
                    None => return false,
                }
            }
            false
        }

        /// The string on its opening quote, unescaped: `\n` `\t` `\r`
        /// `\b` `\f`, `\u` and four bytes `from_str_radix` reads as hex (a
        /// code point that is no char, a lone surrogate, as U+FFFD), any
        /// other escaped byte as itself. None when it does not end.
        fn string(&mut self) -> Option<Vec<u8>> {
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let b = *self.s.get(self.i)?;
                self.i += 1;
                match b {
                    b'"' => return Some(out),
                    b'\\' => {
                        let e = *self.s.get(self.i)?;
                        self.i += 1;
                        let one = match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            b'b' => 8,
                            b'f' => 12,
                            b'u' => {
                                let hex = self.s.get(self.i..self.i + 4)?;
                                let hex = std::str::from_utf8(hex).ok()?;
                                let cp = u32::from_str_radix(hex, 16).ok()?;
                                self.i += 4;
                                let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
                                out.extend_from_slice(c.to_string().as_bytes());
                                continue;
                            }
                            other => other,
                        };
                        out.push(one);
                    }
                    b => out.push(b),
                }
            }
        }
    }

    /// Seeded near-JSON: documents of objects, arrays, keys and strings
    /// (plain and not, escaped, long across the scan's 8-byte words, the
    /// prototype-pollution keys, raw control and high bytes), literals
    /// good and bad, blanks of every kind (and a few that are not), deep
    /// nesting, then often spoiled: cut short, a byte changed, inserted
    /// or dropped, junk after the end.
    struct Noisy {
        x: u64,
        out: Vec<u8>,
    }

    impl Noisy {
        fn pick(&mut self, n: usize) -> usize {
            (xorshift(&mut self.x) % n as u64) as usize
        }

        fn blank(&mut self) {
            if self.pick(3) == 0 {
                let b: [&[u8]; 8] = [
                    b" ", b"\n", b"\t", b"\r\n ", b"\x0c", b"  ", b"\x0b", b"\x00",
                ];
                // The last two are not blanks: they spoil the document.
                let k = if self.pick(20) == 0 {
                    6 + self.pick(2)
                } else {
                    self.pick(6)
                };
                self.out.extend_from_slice(b[k]);
            }
        }

        fn text(&mut self) {
            const PARTS: [&[u8]; 32] = [
                b"name",
                b"sku",
                b"prototype",
                b"constructor",
                b"__proto__",
                b"Outdoor",
                b"SKU-00042",
                b"41.99",
                b"x y",
                b"a.b",
                b"Alice O'Neil",
                b"alice@example.com",
                b"<script>",
                b"' or 1=1--",
                b"aced0005deadbeef00",
                b"rO0ABXNyABFqYXZh",
                b"..%2f",
                b"0x2e0x2e",
                b"",
                b"abcdefghijklmnop",
                b"q",
                b"caf\xc3\xa9",
                b"\xff\xfe",
                b"\x01\x1f",
                b"\\n",
                b"\\\"",
                b"\\\\",
                b"\\/",
                b"\\u00e9",
                b"\\uD83D\\uDE00",
                b"cafebabefacefeed",
                b"feedfacecafebabeabc",
            ];
            const ODD: [&[u8]; 10] = [
                b"\\u+041",
                b"\\u12",
                b"\\uzzzz",
                b"\\u",
                b"\\",
                b"\\x",
                b"\\u0000",
                b"\\ud800",
                b"\\u00\xc3\xa9",
                b"\\U0041",
            ];
            self.out.push(b'"');
            for _ in 0..1 + self.pick(3) {
                if self.pick(25) == 0 {
                    let k = self.pick(ODD.len());
                    self.out.extend_from_slice(ODD[k]);
                } else {
                    let k = self.pick(PARTS.len());
                    self.out.extend_from_slice(PARTS[k]);
                }
                if self.pick(2) == 0 {
                    break;
                }
            }
            self.out.push(b'"');
        }

        fn literal(&mut self) {
            const LIT: [&[u8]; 14] = [
                b"1", b"-2.5e3", b"0", b"true", b"false", b"null", b"1E+9", b"tru", b"nul", b"1a",
                b"-", b"truex", b"+.eE", b"NaN",
            ];
            let k = if self.pick(6) == 0 {
                self.pick(LIT.len())
            } else {
                self.pick(7)
            };
            self.out.extend_from_slice(LIT[k]);
        }

        /// A value; `constructor`: it is a `constructor` key's.
        fn value(&mut self, depth: usize, constructor: bool) {
            let deep = self.pick(8) == 0;
            match self.pick(if depth > 6 && !deep { 3 } else { 6 }) {
                0 => self.literal(),
                1 | 2 => self.text(),
                3 => {
                    self.out.push(b'[');
                    self.blank();
                    for n in 0..self.pick(4) {
                        if n > 0 {
                            self.out.push(b',');
                            self.blank();
                        }
                        self.value(depth + 1, false);
                        self.blank();
                    }
                    self.out.push(b']');
                }
                _ => {
                    self.out.push(b'{');
                    self.blank();
                    for n in 0..self.pick(4) {
                        if n > 0 {
                            self.out.push(b',');
                            self.blank();
                        }
                        // After a `constructor` key, often the other key of
                        // prototype pollution (`{"constructor":{"prototype":…}}`).
                        if constructor && self.pick(2) == 0 {
                            self.out.extend_from_slice(b"\"prototype\"");
                        } else if self.pick(12) == 0 {
                            self.out.extend_from_slice(b"\"constructor\"");
                        } else {
                            self.text();
                        }
                        let key_is_constructor = self.out.ends_with(b"\"constructor\"");
                        self.blank();
                        self.out.push(b':');
                        self.blank();
                        self.value(depth + 1, key_is_constructor);
                        self.blank();
                    }
                    self.out.push(b'}');
                }
            }
        }

        fn document(&mut self) -> Vec<u8> {
            self.out.clear();
            self.blank();
            self.value(0, false);
            self.blank();
            const JUNK: &[u8] = b"{}[]\",:\\ tx1\x00\xff";
            for _ in 0..self.pick(3) {
                if self.out.is_empty() {
                    break;
                }
                let at = self.pick(self.out.len() + 1);
                match self.pick(5) {
                    0 => self.out.truncate(at),
                    1 if at < self.out.len() => {
                        self.out.remove(at);
                    }
                    2 if at < self.out.len() => {
                        let j = self.pick(JUNK.len());
                        self.out[at] = JUNK[j];
                    }
                    3 => {
                        let j = self.pick(JUNK.len());
                        self.out.insert(at, JUNK[j]);
                    }
                    _ => {
                        let j = self.pick(JUNK.len());
                        self.out.push(JUNK[j]);
                    }
                }
            }
            self.out.clone()
        }
    }

    /// `parse` lists exactly what the straightforward reader lists —
    /// the same fields in the same order (class, value, place, every flag,
    /// windows of long values), the same labels read back, the same
    /// truncation and the same yes/no for "is JSON" — on 40,000 seeded
    /// near-JSON documents under depth limits 1, 3 and 32, with small
    /// field and value limits in some rounds, with and without rules that
    /// read long words of lower-case hex letters. Counts make sure the
    /// documents reach every outcome.
    #[test]
    fn reader_lists_what_a_straightforward_reader_lists() {
        let mut x = 0x5eed_0013_0000_0001u64;
        // Not JSON, JSON, cut at the depth limit, cut at the field limit,
        // fields listed, values listed as windows, `constructor.prototype`
        // pairs.
        let mut seen = [0usize; 8];
        // Every other round with an operator's rules that read long words
        // of hex letters (`lower_word_read`: `cafebabe…` is listed).
        let ops = crate::engine::RuleSet::builtin_and(&[(
            "ops.toml",
            crate::test_support::HEX_OPERATOR_RULES,
        )])
        .expect("the operator rules load");
        for round in 0..40_000 {
            let words = if round % 2 == 0 {
                ops.encoded_words()
            } else {
                None
            };
            let mut g = Noisy {
                x: xorshift(&mut x),
                out: Vec::new(),
            };
            let doc = g.document();
            let limits = Limits {
                max_depth: [1, 3, 32][round % 3],
                max_fields: if round % 4 == 0 { 2 } else { 1024 },
                max_value_bytes: if round % 7 == 0 { 12 } else { 16 * 1024 },
                ..Limits::default()
            };
            let mut reference = Reference {
                s: &doc,
                words,
                i: 0,
                max_depth: limits.max_depth,
                path: Vec::new(),
                pushes: Vec::new(),
                too_deep: false,
            };
            let want_ok = reference.read();
            // What `Fields` makes of the reference's pushes (its limits
            // and windows are not under test here: the same code).
            let mut want = Fields::new(&limits);
            for (class, at, v, _) in &reference.pushes {
                want.push_json(*class, *at, Cow::Owned(v.clone()));
            }
            want.truncated |= reference.too_deep;
            let labels: std::collections::HashMap<usize, &str> = reference
                .pushes
                .iter()
                .map(|(_, at, _, label)| (*at, label.as_str()))
                .collect();

            let mut got = Fields::new(&limits);
            got.words = words;
            let ok = parse(&doc, &limits, &mut got);
            let show = String::from_utf8_lossy(&doc);
            assert_eq!(ok, want_ok, "{show:?}");
            assert_eq!(got.truncated, want.truncated, "{show:?}");
            assert_eq!(got.list.len(), want.list.len(), "{show:?}");
            for (g, w) in got.list.iter().zip(&want.list) {
                let key = |f: &super::super::Field<'_>| {
                    (
                        f.class,
                        f.value.to_vec(),
                        f.json_path,
                        f.not_token,
                        f.continued,
                        f.whole,
                        f.source,
                    )
                };
                assert_eq!(key(g), key(w), "{show:?}");
                let label = g.target(&got);
                let want_label = w.json_path.and_then(|at| labels.get(&at)).copied();
                assert_eq!(label.strip_prefix("json:"), want_label, "{show:?}");
            }
            seen[usize::from(!ok)] += 1;
            seen[2] += usize::from(reference.too_deep);
            seen[3] += usize::from(got.truncated && !reference.too_deep);
            seen[4] += got.list.len();
            seen[5] += got.list.iter().filter(|f| f.whole).count();
            seen[6] += got
                .list
                .iter()
                .filter(|f| *f.value == *b"constructor.prototype")
                .count();
            seen[7] += got
                .list
                .iter()
                .filter(|f| f.value.starts_with(b"cafebabe"))
                .count();
        }
        assert!(
            seen[0] > 10_000
                && seen[1] > 10_000
                && seen[2] > 2_000
                && seen[3] > 500
                && seen[4] > 20_000
                && seen[5] > 500
                && seen[6] > 200
                && seen[7] > 200,
            "{seen:?}"
        );
    }

    #[test]
    fn a_field_past_the_depth_limit_is_labelled_where_the_limit_cut() {
        let (ok, listed) = read(br#"{"a":[{"b":{"c":"x y"}}]}"#, 2);
        assert!(!ok);
        assert_eq!(
            listed,
            [("$.a[0].b".to_string(), br#"{"c":"x y"}}]}"#.to_vec())]
        );
    }
}
