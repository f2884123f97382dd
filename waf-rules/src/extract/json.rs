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
            targets: listed,
            path: Vec::new(),
            out: Paths::default(),
        };
        let mut r = Reader {
            s: self.bytes,
            i: 0,
            max_depth: self.max_depth,
            out: &mut found,
        };
        let _ = r.value(0, false);
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
    /// A string value whose text starts at `at`.
    fn string(&mut self, at: usize, v: Text<'a>) -> Option<()>;
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

    fn string(&mut self, at: usize, _: Text<'a>) -> Option<()> {
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

struct Reader<'a, 's, S> {
    s: &'a [u8],
    i: usize,
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
        i: 0,
        max_depth: limits.max_depth,
        out: f,
    };
    let ok = r.value(0, false).is_some();
    r.ws();
    ok && r.i == r.s.len()
}

impl<'a, S: Sink<'a>> Reader<'a, '_, S> {
    #[inline(always)]
    fn ws(&mut self) {
        // Compact JSON has no blanks between tokens: a byte above the
        // space ends the blanks at once (every JSON blank is at most 0x20).
        if self.s.get(self.i).is_some_and(|&b| b > b' ') {
            return;
        }
        self.blanks();
    }

    #[inline(never)]
    fn blanks(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// A value; `constructor`: it is the value of a `constructor` key.
    fn value(&mut self, depth: usize, constructor: bool) -> Option<()> {
        if depth > self.max_depth {
            let at = self.i;
            self.out.too_deep(at, &self.s[at..]);
            self.i = self.s.len();
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth, constructor),
            b'[' => self.array(depth),
            b'"' => {
                let at = self.i;
                let v = self.string()?;
                self.out.string(at, v)
            }
            _ => self.literal(),
        }
    }

    /// A member's or element's value: `value`, with strings and literals
    /// (most values) read here, without a call that may recurse. The
    /// same steps: past the depth limit `value` reads the rest whole
    /// before any blank is skipped; within it, `value` skips the blanks
    /// (again: a no-op) and reads a string or literal just so.
    #[inline(always)]
    fn member(&mut self, depth: usize, constructor: bool) -> Option<()> {
        if depth <= self.max_depth {
            match self.peek()? {
                b'{' | b'[' => {}
                b'"' => {
                    let at = self.i;
                    let v = self.string()?;
                    return self.out.string(at, v);
                }
                _ => return self.literal(),
            }
        }
        self.value(depth, constructor)
    }

    /// `true`, `false`, `null` or a number: plain tokens, nothing to inspect.
    #[inline(always)]
    fn literal(&mut self) -> Option<()> {
        // One pass finds the literal's end (`,`, `}`, `]`, a blank) and
        // whether every byte of it is a number byte (`is_literal`'s test,
        // read off the same bytes).
        let start = self.i;
        let mut number = true;
        while let Some(&b) = self.s.get(self.i) {
            let class = LITERAL_BYTE[usize::from(b)];
            if class == LITERAL_END {
                break;
            }
            number &= class == NUMBER_BYTE;
            self.i += 1;
        }
        let lit = &self.s[start..self.i];
        (!lit.is_empty() && (number || matches!(lit, b"true" | b"false" | b"null"))).then_some(())
    }

    fn object(&mut self, depth: usize, constructor: bool) -> Option<()> {
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let at = self.i;
            let key = self.string()?;
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let next_constructor = *key.v == *b"constructor";
            self.out.key(at, key, constructor)?;
            let r = self.member(depth + 1, next_constructor);
            self.out.leave();
            r?;
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }

    /// After a member or element: true past a `,` (another follows),
    /// false past the container's `close`; None on anything else.
    #[inline(always)]
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        let b = self.peek()?;
        if b != b',' && b != close {
            return None;
        }
        self.i += 1;
        Some(b == b',')
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        let mut n = 0usize;
        loop {
            self.out.index(n);
            let r = self.member(depth + 1, false);
            self.out.leave();
            r?;
            n += 1;
            if !self.next_or_close(b']')? {
                return Some(());
            }
        }
    }

    /// A string at `self.i` (on the opening quote), unescaped.
    #[inline(always)]
    fn string(&mut self) -> Option<Text<'a>> {
        self.i += 1;
        let start = self.i;
        let s = self.s;
        let Some((len, lower)) = quote_or_backslash(&s[start..]) else {
            self.i = s.len();
            return None;
        };
        let at = start + len;
        self.i = at;
        if s[at] == b'\\' {
            let v = self.escaped_string(start)?;
            return Some(Text { v, lower: false });
        }
        self.i += 1;
        let v = Cow::Borrowed(&s[start..at]);
        Some(Text { v, lower })
    }

    #[cold]
    #[inline(never)]
    fn escaped_string(&mut self, start: usize) -> Option<Cow<'a, [u8]>> {
        let s = self.s;
        let mut out = s[start..self.i].to_vec();
        while self.i < s.len() {
            match s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let e = *s.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = s.get(self.i..self.i + 4)?;
                            let cp =
                                u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            self.i += 4;
                            crate::transform::push_char(&mut out, cp);
                        }
                        other => out.push(other),
                    }
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        None
    }
}

/// The first `"` or `\\` in `s`, eight bytes at a time, and whether
/// every byte before it is an ASCII lower-case letter (false when not
/// known: the last bytes of `s`, fewer than eight, are read one by one).
fn quote_or_backslash(s: &[u8]) -> Option<(usize, bool)> {
    // A zero byte of `x` sets its high bit in `(x - ONES) & !x & HIGH`;
    // bits can also be set above a zero byte, never below the first one.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    let (mut at, mut lower) = (0, true);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let hits = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            let k = hits.trailing_zeros() as usize / 8;
            // The high bits of the bytes before the stop.
            let before = HIGH & ((1u64 << (8 * k)) - 1);
            return Some((at + k, lower && lower_case(w) & before == before));
        }
        lower &= lower_case(w) == HIGH;
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| (at + p, false))
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
        let limits = Limits::default();
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
            let want = (end > 0 && is_literal(&v[..end])).then_some(());
            let mut f = Fields::new(&limits);
            let mut rd = Reader {
                s: &v,
                i: 0,
                max_depth: 4,
                out: &mut f,
            };
            assert_eq!((rd.literal(), rd.i), (want, end), "{:?}", v);
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
    /// before it lower-case letters only when they are (exactly so when
    /// it stops within the bytes it reads eight at a time).
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
            let stop = s.iter().position(|&b| b == b'"' || b == b'\\');
            let got = quote_or_backslash(&s);
            assert_eq!(got.map(|g| g.0), stop, "{s:?}");
            if let (Some((at, lower)), Some(_)) = (got, stop) {
                let all = s[..at].iter().all(u8::is_ascii_lowercase);
                assert!(!lower || all, "{s:?}");
                if at < s.len() / 8 * 8 {
                    assert_eq!(lower, all, "{s:?}");
                    known += usize::from(all);
                }
            }
        }
        assert!(known > 1000, "{known}");
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
