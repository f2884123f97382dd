//! A small JSON reader that yields every key and leaf value with its path
//! (`$.user.name`, `$.items[0]`), bounded in depth. Strings without escapes
//! are borrowed, not copied.

use super::{plain_token, Class, Fields, JsonSeg as Seg};
use crate::policy::Limits;
use std::borrow::Cow;

struct Reader<'a, 'f> {
    s: &'a [u8],
    i: usize,
    max_depth: usize,
    out: &'f mut Fields<'a>,
    /// Where the reader is: keys and array indexes from the root. The
    /// `$.a[0].b` label is written only for a field a rule matches.
    path: Vec<Seg<'a>>,
}

/// Parses `body` as JSON into fields. Returns false (fields may be partial)
/// when it is not JSON, so the caller can inspect it raw.
pub(crate) fn parse<'a>(body: &'a [u8], limits: &Limits, f: &mut Fields<'a>) -> bool {
    // One allocation for the paths of a typical body's fields.
    f.json_path.reserve(64);
    let mut r = Reader {
        s: body,
        i: 0,
        max_depth: limits.max_depth,
        out: f,
        path: Vec::new(),
    };
    let ok = r.value(0).is_some();
    r.ws();
    ok && r.i == r.s.len()
}

impl<'a> Reader<'a, '_> {
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

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > self.max_depth {
            // Too deep: what is left is not inspected field by field.
            self.out.truncated = true;
            // Every JSON field is a checked non-token (`Field::not_token`).
            let rest = &self.s[self.i..];
            if !plain_token(rest) {
                self.out
                    .push_json(Class::Arg, &self.path, Cow::Borrowed(rest));
            }
            self.i = self.s.len();
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => {
                let v = self.string()?;
                if !plain_token(&v) {
                    self.out.push_json(Class::Arg, &self.path, v);
                }
                Some(())
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && !matches!(self.s[self.i], b',' | b'}' | b']')
                    && !self.s[self.i].is_ascii_whitespace()
                {
                    self.i += 1;
                }
                let lit = &self.s[start..self.i];
                if lit.is_empty() || !is_literal(lit) {
                    return None;
                }
                // true / false / null / numbers are plain tokens: nothing to inspect.
                Some(())
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let plain = plain_token(&key);
            // `{"constructor": {"prototype": …}}` reaches `Object.prototype` through two
            // keys that are each a plain word: the pair is one name, as in a query string's
            // `constructor[prototype]`, so the prototype-pollution rule reads it.
            let polluting = *key == *b"prototype"
                && matches!(self.path.last(), Some(Seg::Key(k)) if **k == *b"constructor");
            self.path.push(Seg::Key(key));
            if polluting {
                let pair = Cow::Borrowed(&b"constructor.prototype"[..]);
                self.out.push_json(Class::ArgName, &self.path, pair);
            } else if !plain {
                if let Some(Seg::Key(k)) = self.path.last() {
                    self.out.push_json(Class::ArgName, &self.path, k.clone());
                }
            }
            let r = self.value(depth + 1);
            self.path.pop();
            r?;
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }

    /// After a member or element: true past a `,` (another follows),
    /// false past the container's `close`; None on anything else.
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
            self.path.push(Seg::Index(n));
            let r = self.value(depth + 1);
            self.path.pop();
            r?;
            n += 1;
            if !self.next_or_close(b']')? {
                return Some(());
            }
        }
    }

    /// A string at `self.i` (on the opening quote), unescaped.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        self.i += 1;
        let start = self.i;
        let s = self.s;
        let Some(len) = quote_or_backslash(&s[start..]) else {
            self.i = s.len();
            return None;
        };
        let at = start + len;
        self.i = at;
        if s[at] == b'\\' {
            return self.escaped_string(start);
        }
        self.i += 1;
        Some(Cow::Borrowed(&s[start..at]))
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

/// The first `"` or `\\` in `s`, eight bytes at a time.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A zero byte of `x` sets its high bit in `(x - ONES) & !x & HIGH`;
    // bits can also be set above a zero byte, never below the first one.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let hits = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| at + p)
}

/// Decimal digits of an array index, without a formatter.
/// The label of a JSON path (`$.items[0].name`).
pub(crate) fn label(path: &[Seg<'_>]) -> String {
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

fn is_literal(v: &[u8]) -> bool {
    v == b"true"
        || v == b"false"
        || v == b"null"
        || v.iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}
