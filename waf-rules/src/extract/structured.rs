//! Structured header values read by their structure, strictly: a cookie
//! whose value is a JSON document (`consent=%7B%22ads%22%3Afalse%7D`).
//!
//! A value is read by its structure only when it is that structure and
//! nothing else; anything else is read whole, as every cookie value was
//! before. Strict here means: the value, percent-decoded once (every `%`
//! followed by two hex digits, or none at all), is valid UTF-8 holding
//! one JSON object or array and nothing after it, with no blank between
//! tokens and no control byte (RFC 8259 strings, escapes and numbers,
//! nothing lenient), nested at most `Limits::max_depth` deep.
//!
//! Read so, every key and every string is a field of the cookie, as the
//! keys and strings of a JSON body are fields of the body (numbers,
//! `true`, `false` and `null` are plain tokens no rule reads): a string
//! is read by the cookie rules (`Class::Cookie`), a key by the cookie
//! rules and by the rules for argument names (`Class::ArgName`: NoSQL
//! operators, prototype pollution — names are attack surface). What an
//! attack cannot do any more is use the JSON punctuation between tokens
//! as its own text: an attack that needs a quote, brace or comma of its
//! own breaks the document, which then is not strict JSON and is read
//! whole (docs/waf.md, "Session 11 (waf-values)", per rule family).

use super::{Class, Fields};
use std::borrow::Cow;
use std::fmt::Write;

/// Reads a cookie value as a JSON document when it strictly is one,
/// pushing its keys and strings that are not plain tokens as fields
/// labelled `cookie:NAME$.path`. Returns true when that reading alone
/// reads the value (every key and string a plain token); false when the
/// caller must read the value whole — it is no strict JSON document (then
/// nothing was pushed), or it is one holding a key or string that is not
/// a plain token (then whole as well).
pub(super) fn cookie_json<'a>(
    name: &str,
    value: &'a [u8],
    depth: usize,
    sql_words: Option<super::SqlWords>,
    f: &mut Fields<'a>,
) -> bool {
    let mut buf = [0u8; STACK_DOC];
    let Some(json) = json_text(value, &mut buf) else {
        return false;
    };
    let doc = json.doc.bytes();
    // Valid UTF-8: ASCII (known from the pass that found the text) or
    // checked.
    if !json.ascii && std::str::from_utf8(doc).is_err() {
        return false;
    }
    // Only keys and strings that are not plain tokens are kept (the
    // typical consent cookie has none: nothing is allocated for it).
    let mut items = Vec::new();
    let Some(plain) = Strict::read(doc, depth, f.words, &mut items) else {
        return false;
    };
    for _ in 0..plain {
        f.count_plain();
    }
    // A document with any key or string that is not a plain token is
    // ALSO read whole by the caller, as every cookie was before: an attack
    // may use the document's own quotes, colons and commas as its text,
    // spread over several strings (`{"":" or ","":"=","":" -- "}`: a MySQL
    // break-out in double quotes, none of its strings an attack alone).
    // So may a document of plain tokens with an SQL word or a `-`: read
    // in double quotes, `["or","like","or"]` is `"[" or "," like "," or
    // "]"`, a condition forced true (without either — `-` is the one byte
    // of a plain token that can shape SQL, see `detect::sqli::SHAPING_BYTE`
    // — the SQL detector finds nothing in the whole value). Only a
    // document of plain tokens without them — the typical consent cookie
    // — is read by its structure alone (docs/waf.md, "Session 11
    // (waf-values)"). Both tests read the raw text, so a document with an
    // escape is read whole too: `\u006f` or `\u002d` hide `or` or `-` from
    // them, and the whole reading's `js_decode` restores them
    // (`["\u006fr","\u006cike","\u006fr"]`). (The `-` and `\\` were
    // found by the pass that found the text.)
    let alone =
        items.is_empty() && !json.dash && !json.backslash && sql_words.is_some_and(|w| !w(doc));
    let start = f.list.len();
    for item in items {
        let label = |path: &str| Cow::Owned(format!("{name}${path}"));
        let text = |r: &Text| match (&json.doc, r) {
            (_, Text::Unescaped(v)) => Cow::Owned(v.clone()),
            (Doc::Raw(d), Text::At(s, e)) => Cow::Borrowed(&d[*s..*e]),
            (Doc::Decoded(d), Text::At(s, e)) => Cow::Owned(d[*s..*e].to_vec()),
            (Doc::Heap(d), Text::At(s, e)) => Cow::Owned(d[*s..*e].to_vec()),
        };
        match item {
            Item::Key(path, key) => {
                let key = text(&key);
                f.push(Class::Cookie, "cookie", label(&path), key.clone());
                f.push(Class::ArgName, "cookie", label(&path), key);
            }
            Item::Pair(path) => {
                // `{"constructor":{"prototype":…}}` names `Object.prototype`
                // through two keys, as a query's `constructor[prototype]`.
                let pair = Cow::Borrowed(&b"constructor.prototype"[..]);
                f.push(Class::ArgName, "cookie", label(&path), pair);
            }
            Item::String(path, s) => {
                f.push(Class::Cookie, "cookie", label(&path), text(&s));
            }
        }
    }
    // An exclusion on `cookie:NAME` covers these fields too
    // (`Field::whole_target`).
    for field in &mut f.list[start..] {
        field.cookie_name = Some(name.len());
    }
    alone
}

/// A decoded cookie document of at most this many bytes is kept on the
/// stack (a consent cookie is a few dozen).
const STACK_DOC: usize = 512;

/// A cookie's JSON text: the value itself, or its percent-decoding (in a
/// buffer on the stack when it fits).
enum Doc<'a, 'b> {
    Raw(&'a [u8]),
    Decoded(&'b [u8]),
    Heap(Vec<u8>),
}

impl Doc<'_, '_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Doc::Raw(d) | Doc::Decoded(d) => d,
            Doc::Heap(d) => d,
        }
    }
}

/// The JSON text and what the reading asks of its bytes, found in the
/// pass that found it: whether it is ASCII (then valid UTF-8 unchecked),
/// holds a `-` or a `\`.
struct JsonText<'a, 'b> {
    doc: Doc<'a, 'b>,
    ascii: bool,
    dash: bool,
    backslash: bool,
}

/// The value as JSON text: itself when it opens a document, or its
/// percent-decoding when it opens one encoded (`%7B`, `%5B`) and every
/// `%` in it is an escape. None when it is neither.
fn json_text<'a, 'b>(v: &'a [u8], buf: &'b mut [u8; STACK_DOC]) -> Option<JsonText<'a, 'b>> {
    let (mut high, mut dash, mut backslash) = (0u8, false, false);
    match v.first()? {
        b'{' | b'[' => {
            for &b in v {
                high |= b;
                dash |= b == b'-';
                backslash |= b == b'\\';
                if b == b'%' {
                    return None;
                }
            }
            return Some(JsonText {
                doc: Doc::Raw(v),
                ascii: high < 0x80,
                dash,
                backslash,
            });
        }
        b'%' => {}
        _ => return None,
    }
    if !(v.len() >= 3
        && (v[1..3].eq_ignore_ascii_case(b"7b") || v[1..3].eq_ignore_ascii_case(b"5b")))
    {
        return None;
    }
    // A decoded text is never longer than the value.
    let mut heap = Vec::new();
    let out: &mut [u8] = if v.len() <= STACK_DOC {
        &mut buf[..]
    } else {
        heap.resize(v.len(), 0);
        &mut heap[..]
    };
    let (mut i, mut n) = (0, 0);
    while i < v.len() {
        let mut b = v[i];
        if b == b'%' {
            let hex = |k: usize| v.get(k).and_then(|&c| crate::transform::hex_val(c));
            let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                return None;
            };
            b = h * 16 + l;
            i += 3;
        } else {
            i += 1;
        }
        out[n] = b;
        n += 1;
        high |= b;
        dash |= b == b'-';
        backslash |= b == b'\\';
    }
    let doc = if v.len() <= STACK_DOC {
        Doc::Decoded(&buf[..n])
    } else {
        heap.truncate(n);
        Doc::Heap(heap)
    };
    Some(JsonText {
        doc,
        ascii: high < 0x80,
        dash,
        backslash,
    })
}

/// Where a key's or string's text is: a range of the document, or its
/// unescaped bytes when it held an escape.
enum Text {
    At(usize, usize),
    Unescaped(Vec<u8>),
}

/// What the strict reader found, with its path label (`$.a[0].b`).
enum Item {
    Key(String, Text),
    /// A `prototype` key directly under a `constructor` key.
    Pair(String),
    String(String, Text),
}

/// The longest label of a field of a JSON cookie (see `Strict::label`).
const MAX_LABEL: usize = 128;

/// A strict RFC 8259 reader without blanks between tokens.
struct Strict<'d, 'o> {
    s: &'d [u8],
    i: usize,
    max_depth: usize,
    /// The label of where the reader is, after the `$`.
    path: String,
    out: &'o mut Vec<Item>,
    /// Keys and strings that are plain tokens, not kept.
    plain: usize,
    /// The loaded rules' reading of long words (`plain_token`).
    words: Option<&'o super::EncodedWords>,
}

impl Strict<'_, '_> {
    /// Whether `doc` is one object or array and nothing else: then the
    /// number of its keys and strings that are plain tokens; the others
    /// are in `out`.
    fn read(
        doc: &[u8],
        max_depth: usize,
        words: Option<&super::EncodedWords>,
        out: &mut Vec<Item>,
    ) -> Option<usize> {
        // (Valid UTF-8: checked by the caller.)
        if !matches!(doc.first(), Some(b'{' | b'[')) {
            return None;
        }
        let mut r = Strict {
            s: doc,
            i: 0,
            max_depth,
            path: String::new(),
            out,
            plain: 0,
            words,
        };
        r.value(0, false)?;
        (r.i == doc.len()).then_some(r.plain)
    }

    /// A key or string found: listed with its label unless it is a plain
    /// token, which no rule reads (counted as such).
    fn found(&mut self, text: Text, item: fn(String, Text) -> Item) {
        let bytes = match &text {
            Text::At(s, e) => &self.s[*s..*e],
            Text::Unescaped(v) => &v[..],
        };
        if super::plain_token(bytes, self.words) {
            self.plain += 1;
        } else {
            let label = self.label();
            self.out.push(item(label, text));
        }
    }

    /// The label of where the reader is, cut at `MAX_LABEL` bytes: a
    /// long key would otherwise be copied into the label of every field
    /// under it (quadratic in the value's length).
    fn label(&self) -> String {
        let mut end = self.path.len().min(MAX_LABEL);
        while !self.path.is_char_boundary(end) {
            end -= 1;
        }
        self.path[..end].to_string()
    }

    fn byte(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// A value at `depth`; `of_constructor` when it is the value of a
    /// `constructor` key (as the JSON body's reader passes it down).
    fn value(&mut self, depth: usize, of_constructor: bool) -> Option<()> {
        if depth > self.max_depth {
            return None;
        }
        match self.byte()? {
            b'{' => self.object(depth, of_constructor),
            b'[' => self.array(depth),
            b'"' => {
                let s = self.string()?;
                self.found(s, Item::String);
                Some(())
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.number(),
        }
    }

    fn object(&mut self, depth: usize, of_constructor: bool) -> Option<()> {
        if self.opened_empty(b'}')? {
            return Some(());
        }
        loop {
            if self.byte()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if self.byte()? != b':' {
                return None;
            }
            self.i += 1;
            let mark = self.path.len();
            self.path.push('.');
            // The document is UTF-8 (`read`); an unescaped key may not be.
            let text = match &key {
                Text::At(s, e) => Cow::Borrowed(std::str::from_utf8(&self.s[*s..*e]).unwrap_or("")),
                Text::Unescaped(v) => String::from_utf8_lossy(v),
            };
            self.path.push_str(&text);
            if of_constructor && text == "prototype" {
                self.out.push(Item::Pair(self.label()));
            }
            let constructor = text == "constructor";
            self.found(key, Item::Key);
            self.value(depth + 1, constructor)?;
            self.path.truncate(mark);
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if self.opened_empty(b']')? {
            return Some(());
        }
        for n in 0usize.. {
            let mark = self.path.len();
            let _ = write!(self.path, "[{n}]");
            self.value(depth + 1, false)?;
            self.path.truncate(mark);
            if !self.next_or_close(b']')? {
                break;
            }
        }
        Some(())
    }

    /// Past a container's opening byte: whether it closes at once (then
    /// past its `close` too).
    fn opened_empty(&mut self, close: u8) -> Option<bool> {
        self.i += 1;
        let empty = self.byte()? == close;
        self.i += usize::from(empty);
        Some(empty)
    }

    /// After a member or element: true past a `,` (another follows),
    /// false past `close`; None on anything else.
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        let more = match self.byte()? {
            b',' => true,
            b if b == close => false,
            _ => return None,
        };
        self.i += 1;
        Some(more)
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        let end = self.i + w.len();
        (self.s.get(self.i..end)? == w).then(|| self.i = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.byte() == Some(b'-') {
            self.i += 1;
        }
        match self.byte()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.byte() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if matches!(self.byte(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.byte(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.byte().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// A string at the opening quote: its text, unescaped when it holds
    /// an escape. None on a control byte or an escape RFC 8259 has not.
    fn string(&mut self) -> Option<Text> {
        self.i += 1;
        let start = self.i;
        let mut out: Option<Vec<u8>> = None;
        loop {
            let b = self.byte()?;
            match b {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some(match out {
                        Some(v) => Text::Unescaped(v),
                        None => Text::At(start, end),
                    });
                }
                0..=0x1f => return None,
                b'\\' => {
                    let v = out.get_or_insert_with(|| self.s[start..self.i].to_vec());
                    let e = *self.s.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' | b'\\' | b'/' => v.push(e),
                        b'b' => v.push(8),
                        b'f' => v.push(12),
                        b'n' => v.push(b'\n'),
                        b'r' => v.push(b'\r'),
                        b't' => v.push(b'\t'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            let cp =
                                u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            self.i += 4;
                            crate::transform::push_char(v, cp);
                        }
                        _ => return None,
                    }
                }
                _ => {
                    if let Some(v) = out.as_mut() {
                        v.push(b);
                    }
                    self.i += 1;
                }
            }
        }
    }
}

/// Reads a Referer or Origin value as an absolute `http(s)` URL when it
/// strictly is one: `scheme://host[:port][/path][?query]`, the host a DNS
/// name, an IPv4 address or a bracketed IPv6 address (checked as such),
/// no user info, no fragment, and every byte of the path and query one
/// RFC 3986 allows there (unreserved, sub-delims, `:@/?`, `%` with two
/// hex digits). Its path and query then go through the request target's
/// own per-part reading (the path as a path, its segments, the query's
/// names and values), labelled `referer-path`, `referer-args:NAME`.
/// Returns false, having pushed nothing, when it is not such a URL: the
/// caller reads the value whole, as every such header was before.
pub(super) fn url_header<'a>(header: UrlHeader, value: &'a [u8], f: &mut Fields<'a>) -> bool {
    let Some((path, query)) = strict_url(value) else {
        return false;
    };
    let (name, path_source, args_source) = header.sources();
    if !path.is_empty() {
        // The header's own rules still read the path (every family they
        // read the whole value for: an attack in the path is in this
        // text), and the path is read as the request's path is.
        let text = Cow::Borrowed(path);
        f.push(Class::Header, "header", Cow::Borrowed(name), text);
        f.push_unnamed(Class::Path, path_source, path);
        super::path_segments(path, path_source, f);
    }
    if !query.is_empty() {
        let start = f.list.len();
        super::query::pairs(query, args_source, f);
        // A name is read by the rules for values too (`?<payload>=1`):
        // the header's rules read it before, as part of the whole value.
        let end = f.list.len();
        for i in start..end {
            if f.list[i].class == Class::ArgName {
                let field = f.list[i].clone();
                f.push(Class::Arg, args_source, field.name, field.value);
            }
        }
    }
    true
}

/// The headers holding one absolute URL that are read by structure.
#[derive(Clone, Copy)]
pub(super) enum UrlHeader {
    Referer,
    Origin,
}

impl UrlHeader {
    pub(super) fn of(name: &str) -> Option<UrlHeader> {
        if name.eq_ignore_ascii_case("referer") {
            Some(UrlHeader::Referer)
        } else if name.eq_ignore_ascii_case("origin") {
            Some(UrlHeader::Origin)
        } else {
            None
        }
    }

    /// Its name, and the labels of its path and of its query's arguments.
    fn sources(self) -> (&'static str, &'static str, &'static str) {
        match self {
            UrlHeader::Referer => ("referer", "referer-path", REFERER_ARGS),
            UrlHeader::Origin => ("origin", "origin-path", ORIGIN_ARGS),
        }
    }
}

/// The sources of a Referer's and an Origin's query arguments.
pub(crate) const REFERER_ARGS: &str = "referer-args";
pub(crate) const ORIGIN_ARGS: &str = "origin-args";

/// The path and query of a strict absolute `http(s)` URL (both possibly
/// empty), or None.
fn strict_url(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = strip_prefix_ci(v, b"https://").or_else(|| strip_prefix_ci(v, b"http://"))?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?'))
        .unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    if !host_and_port(authority) {
        return None;
    }
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(q) => (&rest[..q], &rest[q + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    // Every byte of both is ASCII then (`url_part`): read as bytes, with
    // no UTF-8 check.
    (url_part(path, false) && url_part(query, true)).then_some((path, query))
}

fn strip_prefix_ci<'v>(v: &'v [u8], prefix: &[u8]) -> Option<&'v [u8]> {
    let head = v.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &v[prefix.len()..])
}

/// `host[:port]`: a DNS name or IPv4 address (letters, digits, `-`, dots
/// between non-empty labels) or `[IPv6]`, then at most five digits.
fn host_and_port(a: &[u8]) -> bool {
    let port = if a.first() == Some(&b'[') {
        let Some(close) = a.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &a[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        &a[close + 1..]
    } else {
        // One pass up to a `:` or the end: labels of letters, digits and
        // `-`, each non-empty, between single dots.
        let (mut end, mut label) = (0, 0);
        while let Some(&b) = a.get(end) {
            match b {
                b':' => break,
                b'.' if label == 0 => return false,
                b'.' => label = 0,
                b'-' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => label += 1,
                _ => return false,
            }
            end += 1;
        }
        if label == 0 {
            return false;
        }
        &a[end..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => {
            !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// A path (or, `query`, a query) of RFC 3986 bytes only: unreserved,
/// sub-delims, `:`, `@`, `/` (and `?` in a query), `%` with two hex
/// digits — but not the escape of a control byte or of `%`. No blank, quote mark `"`, `<>`, braces, `\`, `^`, `|`, backtick,
/// `#`, control or non-ASCII byte.
fn url_part(p: &[u8], query: bool) -> bool {
    let mut i = 0;
    while i < p.len() {
        let b = p[i];
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            )
            || (query && b == b'?');
        if b == b'%' {
            // An escape of a control byte (`%0d%0a`: a line break the
            // header's CRLF rule decodes) or of `%` itself (a second
            // round of decoding) is not read by structure.
            let Some(e) = p.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            }) else {
                return false;
            };
            if e < 0x20 || e == 0x7f || e == b'%' {
                return false;
            }
            i += 3;
            continue;
        }
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The session 12 `json_text`: the text, then `from_utf8` and two
    /// searches for `-` and `\` over it.
    fn reference(v: &[u8]) -> Option<(Vec<u8>, bool, bool, bool)> {
        let doc = match v.first()? {
            b'{' | b'[' => (!v.contains(&b'%')).then(|| v.to_vec())?,
            b'%' if v.len() >= 3
                && (v[1..3].eq_ignore_ascii_case(b"7b") || v[1..3].eq_ignore_ascii_case(b"5b")) =>
            {
                let mut out = Vec::new();
                let mut i = 0;
                while i < v.len() {
                    if v[i] == b'%' {
                        let hex = |k: usize| v.get(k).and_then(|&c| char::from(c).to_digit(16));
                        let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                            return None;
                        };
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    } else {
                        out.push(v[i]);
                        i += 1;
                    }
                }
                out
            }
            _ => return None,
        };
        let utf8 = std::str::from_utf8(&doc).is_ok();
        let (dash, backslash) = (doc.contains(&b'-'), doc.contains(&b'\\'));
        Some((doc, utf8, dash, backslash))
    }

    /// A strict URL's path and query are read as bytes, unchecked as
    /// UTF-8 (session 12 converted both with `from_utf8`): `url_part`
    /// passes only ASCII. 100,000 seeded strings over every byte class it
    /// tells apart, non-ASCII and escapes among them; fails if `url_part`
    /// let a byte of 0x80 or more through.
    #[test]
    fn strict_url_parts_are_ascii() {
        let alphabet = b"aZ09-._~!$&'()*+,;=:@/?%2fFc\x80\xc3\xa9\xff \"<>#";
        let mut x = 0x5e11_0a11_0000_0001u64;
        let mut passed = 0;
        for _ in 0..100_000 {
            let r = crate::test_support::xorshift(&mut x);
            let v: Vec<u8> = (0..(r % 12) as usize)
                .map(|i| alphabet[((r >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            for query in [false, true] {
                if url_part(&v, query) {
                    assert!(v.is_ascii(), "{v:?}");
                    passed += 1;
                }
            }
            if let Some((path, query)) = strict_url(&[b"https://a.test/", &v[..]].concat()) {
                assert!(path.is_ascii() && query.is_ascii(), "{v:?}");
            }
        }
        assert!(passed > 10_000, "{passed}");
    }

    /// The session 12 `host_and_port`: a host split at its dots.
    fn host_and_port_by_split(a: &[u8]) -> bool {
        let port = if a.first() == Some(&b'[') {
            return host_and_port(a);
        } else {
            let end = a.iter().position(|&b| b == b':').unwrap_or(a.len());
            let host = &a[..end];
            let labels_ok = !host.is_empty()
                && host.split(|&b| b == b'.').all(|l| {
                    !l.is_empty() && l.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !labels_ok {
                return false;
            }
            &a[end..]
        };
        match port {
            [] => true,
            [b':', digits @ ..] => {
                !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit)
            }
            _ => false,
        }
    }

    /// A host read in one pass is accepted exactly as split at its dots:
    /// 200,000 seeded authorities over letters, digits, `-`, dots (single,
    /// double, leading, trailing), `:` and ports, odd bytes. Fails when an
    /// empty label is let through at a dot or at the end.
    #[test]
    fn hosts_read_in_one_pass_as_split() {
        let parts: [&[u8]; 14] = [
            b"a",
            b"Z",
            b"0",
            b"-",
            b".",
            b"..",
            b":",
            b":8443",
            b":0",
            b"_",
            b"@",
            b"\xc3",
            b"shop",
            b"example.com",
        ];
        let mut x = 0x4057_0000_0000_0001u64;
        let mut ok = 0;
        for _ in 0..200_000 {
            let r = crate::test_support::xorshift(&mut x);
            let mut a = Vec::new();
            for i in 0..(r % 7) {
                a.extend_from_slice(parts[((r >> (i * 6 + 3)) % parts.len() as u64) as usize]);
            }
            let want = host_and_port_by_split(&a);
            assert_eq!(host_and_port(&a), want, "{}", String::from_utf8_lossy(&a));
            ok += usize::from(want);
        }
        assert!(ok > 10_000, "{ok}");
    }

    /// The cookie document and what the reading asks of it, found in one
    /// pass (on the stack when short), are what the text, `from_utf8` and
    /// two searches gave: 60,000 seeded values, raw and percent-encoded,
    /// with `-`, `\`, non-ASCII and invalid UTF-8, bad escapes, and past
    /// the stack buffer. Fails when a flag is not kept on either path.
    #[test]
    fn cookie_json_text_found_in_one_pass_as_before() {
        const PARTS: [&str; 22] = [
            "{", "[", "%7B", "%5b", "%22", "\"", "a", "1", "-", "%2D", "%2d", "\\", "%5C",
            "%C3%A9", "é", "%FF", "%", "%4", "}", "]", ":", "%3A",
        ];
        let mut x = 0xc00c_1e00_d0c5_0001u64;
        let (mut docs, mut long) = (0, 0);
        for _ in 0..60_000 {
            let r = crate::test_support::xorshift(&mut x);
            let n = if r.is_multiple_of(50) {
                300
            } else {
                (r % 12) as usize
            };
            let mut v = String::from(["{", "[", "%7B", "%5B", "a"][(r >> 8) as usize % 5]);
            // Long values of good escapes only (the first 14 parts).
            let parts = if n > 12 { &PARTS[..14] } else { &PARTS[..] };
            for _ in 0..n {
                let k = crate::test_support::xorshift(&mut x);
                v.push_str(parts[(k % parts.len() as u64) as usize]);
            }
            let mut buf = [0u8; STACK_DOC];
            let got = json_text(v.as_bytes(), &mut buf).map(|j| {
                let doc = j.doc.bytes().to_vec();
                assert_eq!(j.ascii, doc.is_ascii(), "{v}");
                let utf8 = j.ascii || std::str::from_utf8(&doc).is_ok();
                (doc, utf8, j.dash, j.backslash)
            });
            assert_eq!(got, reference(v.as_bytes()), "{v}");
            docs += usize::from(got.is_some());
            long += usize::from(got.is_some() && v.len() > STACK_DOC);
        }
        assert!(docs > 15_000 && long > 200, "{docs} {long}");
    }
}
