//! Turns a request into the list of fields the rules look at: path, args,
//! cookies, headers and the body parsed by its content type.

mod body;
mod encoded;
mod json;
mod multipart;
mod query;
mod structured;
mod xml;

use crate::policy::Limits;
use crate::request::Request;
use std::borrow::Cow;

pub(crate) use encoded::{EncodedWords, Readable, ALPHABET as ENCODED_ALPHABET};

/// What kind of field a value is; rules target classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Class {
    Method,
    Path,
    ArgName,
    Arg,
    CookieName,
    Cookie,
    Header,
    Filename,
    /// A body no parser understood, inspected whole.
    RawBody,
    /// The whole XML body, for DTD / entity declarations.
    XmlRaw,
    /// One '/'-separated segment of the path, percent-decoded.
    PathSegment,
    /// Never produced by extraction: rules for query args only (not body
    /// fields), looked up for `Arg` fields that came from the query.
    QueryArg,
    /// The protocol version of the request line, when the caller knows it.
    Version,
    /// The method of a request that carries a body (a body on a GET or
    /// HEAD is ignored by some servers and read by others: smuggling).
    MethodWithBody,
    /// Never produced by extraction: rules for args named like a
    /// server-side configuration or include variable, looked up for `Arg`
    /// fields whose `include_like` flag extraction set.
    IncludeArg,
}

impl Class {
    pub(crate) const COUNT: usize = 15;

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One inspected value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub class: Class,
    /// Label prefix for the verdict ("args", "json", "cookie", "header"...).
    pub source: &'static str,
    /// Name within the source ("q", "$.user.name", "user-agent"); empty for path.
    pub name: Cow<'a, str>,
    pub value: Cow<'a, [u8]>,
    /// A JSON field's place: where its text starts in `Fields::json_doc`.
    /// Its path and `$.a[0].b` label are read back from there only when a
    /// rule matches it (`JsonDoc::label`).
    pub json_path: Option<usize>,
    /// An `Arg` whose name looks like a configuration or include variable
    /// (see `include_like_name`): decided once at extraction, so inspection
    /// pays a flag test per field.
    pub include_like: bool,
    /// A window of a long value after its first (see `push_windows`): it
    /// starts mid-value, so detectors that read a value from its start
    /// as pasted after a quote (SQL) skip it; patterns still run.
    pub continued: bool,
    /// A long value, listed whole after its windows for the detectors
    /// that read a value from its start (`Detector::reads_anywhere` false:
    /// SQL) and for nothing else (see `push_windows`). Not counted
    /// against the field limit.
    pub whole: bool,
    /// Known not to be a plain token (`plain_token`): decided where the
    /// field was parsed (plain tokens are counted, not listed), so
    /// inspection does not read the value again to skip it. False for
    /// windows (a window of a value may be a token).
    pub not_token: bool,
    /// A field read from inside a cookie's JSON document
    /// (`structured::cookie_json`): the length of the cookie's name at the
    /// start of `name` (`NAME$.a[0].b`), so that an exclusion on
    /// `cookie:NAME` still covers it (`whole_target`).
    pub cookie_name: Option<usize>,
}

pub(crate) use json::JsonDoc;

impl Field<'_> {
    /// Target as shown in verdicts and matched by exclusions; `fields`
    /// are those of the request the field came from.
    pub(crate) fn target(&self, fields: &Fields<'_>) -> String {
        if let Some(at) = self.json_path {
            let label = fields.json_doc.label(at, &fields.list);
            return format!("{}:{}", self.source, label);
        }
        if self.name.is_empty()
            && matches!(
                self.class,
                Class::Path
                    | Class::Method
                    | Class::RawBody
                    | Class::XmlRaw
                    | Class::Version
                    | Class::MethodWithBody
            )
        {
            self.source.to_string()
        } else {
            format!("{}:{}", self.source, self.name)
        }
    }

    /// For a field read from inside a structured header value, the target
    /// the whole value had when it was read as one text (and still has
    /// when it is not strictly that structure): `header:referer` for a
    /// Referer's `referer-path` and `referer-args:NAME` (likewise Origin),
    /// `cookie:NAME` for a JSON cookie's `cookie:NAME$.a`. An exclusion on
    /// that target covers the field (`engine::inspect::record`).
    pub(crate) fn whole_target(&self) -> Option<String> {
        if let Some(n) = self.cookie_name {
            return Some(format!("cookie:{}", self.name.get(..n)?));
        }
        let header = match self.source {
            "referer-path" | structured::REFERER_ARGS => "referer",
            "origin-path" | structured::ORIGIN_ARGS => "origin",
            _ => return None,
        };
        Some(format!("header:{header}"))
    }
}

/// Collected fields, plus whether limits cut anything.
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    pub list: Vec<Field<'a>>,
    /// The JSON document JSON fields were read from (see `Field::json_path`).
    pub json_doc: JsonDoc<'a>,
    pub truncated: bool,
    /// Plain-token args and cookies (and their names) not listed: no rule
    /// reads them (`plain_token`), but they count against `max_fields`
    /// as they did when listed and skipped at inspection.
    pub skipped: usize,
    /// Whole long values listed after their windows (`Field::whole`):
    /// in `list`, but not counted against `max_fields`.
    pub wholes: usize,
    max_fields: usize,
    max_value: usize,
    max_depth: usize,
    /// Whether a text holds an SQL shaping word (`SqlWords`).
    sql_words: Option<SqlWords>,
    /// Which long single-case words the loaded rules read (`plain_token`).
    pub(crate) words: Option<&'a EncodedWords>,
}

/// Whether a text holds a word that may shape an SQL reading (`union`,
/// `or`, `like`…): the engine passes the SQL detector's own test, which
/// extraction cannot name (the detectors read extraction's fields). Asked
/// of a cookie's JSON document of plain tokens (`structured::cookie_json`);
/// without it, such a document is read whole as well.
pub(crate) type SqlWords = fn(&[u8]) -> bool;

impl<'a> Fields<'a> {
    fn new(limits: &Limits) -> Self {
        Self::with_list(limits, Vec::with_capacity(48))
    }

    /// Collects into `list` (emptied first; its allocation is reused).
    fn with_list(limits: &Limits, mut list: Vec<Field<'a>>) -> Self {
        list.clear();
        Fields {
            list,
            json_doc: JsonDoc::default(),
            truncated: false,
            skipped: 0,
            wholes: 0,
            max_fields: limits.max_fields,
            max_value: limits.max_value_bytes,
            max_depth: limits.max_depth,
            sql_words: None,
            words: None,
        }
    }

    /// Adds a field, cutting its value at the value limit.
    pub(crate) fn push(
        &mut self,
        class: Class,
        source: &'static str,
        name: Cow<'a, str>,
        value: Cow<'a, [u8]>,
    ) {
        self.push_at(class, source, name, None, value, false);
    }

    /// Adds a field without a name (the method, version and path of the
    /// request line, a whole body), borrowed from the request.
    pub(crate) fn push_unnamed(&mut self, class: Class, source: &'static str, value: &'a [u8]) {
        self.push(class, source, Cow::Borrowed(""), Cow::Borrowed(value));
    }

    /// Adds a named argument (query, form or multipart field), flagged
    /// when its name looks like a configuration or include variable: the
    /// name is tested here, once, where it is parsed.
    pub(crate) fn push_arg(
        &mut self,
        source: &'static str,
        name: Cow<'a, str>,
        value: Cow<'a, [u8]>,
    ) {
        let include_like = include_like_name(name.as_bytes());
        self.push_at(Class::Arg, source, name, None, value, include_like);
    }

    /// Adds a cookie's value: its keys and strings when it is strictly a
    /// JSON document (`structured::cookie_json`), and the value whole unless
    /// every one of them is a plain token.
    pub(crate) fn push_cookie(&mut self, name: Cow<'a, str>, value: &'a [u8]) {
        if structured::cookie_json(&name, value, self.max_depth, self.sql_words, self) {
            return;
        }
        self.push(Class::Cookie, "cookie", name, Cow::Borrowed(value));
    }

    /// Counts a plain token that is not listed (see `push_at`).
    fn count_plain(&mut self) {
        if !self.full() {
            self.skipped += 1;
        }
    }

    /// Adds a JSON field whose text starts at `at` in the document; its
    /// label is written only if needed. The reader pushes no plain token
    /// (`Field::not_token`).
    pub(crate) fn push_json(&mut self, class: Class, at: usize, value: Cow<'a, [u8]>) {
        if self.full() {
            return;
        }
        let field = Field {
            class,
            source: "json",
            name: Cow::Borrowed(""),
            value,
            json_path: Some(at),
            include_like: false,
            continued: false,
            whole: false,
            not_token: true,
            cookie_name: None,
        };
        self.push_field(field);
    }

    /// Whether the field limit is reached (and so the request truncated).
    fn full(&mut self) -> bool {
        let full = self.list.len() - self.wholes + self.skipped >= self.max_fields;
        self.truncated |= full;
        full
    }

    fn push_at(
        &mut self,
        class: Class,
        source: &'static str,
        name: Cow<'a, str>,
        json_path: Option<usize>,
        value: Cow<'a, [u8]>,
        include_like: bool,
    ) {
        if self.full() {
            return;
        }
        // A plain-token arg or cookie (or name) is counted, not listed: no
        // rule reads it (`_charset_=utf-7` excepted). Read once, here,
        // before a field is built for it.
        let not_token = matches!(
            class,
            Class::Arg | Class::ArgName | Class::Cookie | Class::CookieName
        ) && value.len() <= self.max_value
            && !charset_name(class, &name);
        if not_token && plain_token(&value, self.words) {
            self.skipped += 1;
            return;
        }
        self.push_field(Field {
            class,
            source,
            name,
            value,
            json_path,
            include_like,
            continued: false,
            whole: false,
            not_token,
            cookie_name: None,
        });
    }

    /// Lists a field, as windows if its value is longer than the limit.
    fn push_field(&mut self, field: Field<'a>) {
        if field.value.len() > self.max_value {
            self.push_windows(field);
        } else {
            self.list.push(field);
        }
    }

    /// A value longer than the value limit, inspected whole as windows of
    /// at most `max_value` bytes, each overlapping the next by
    /// `window_overlap` bytes: any stretch up to the overlap long lies
    /// whole in one window, and the work stays linear in the value's
    /// length (each byte is read at most twice). Windows count against
    /// the field limit like fields.
    ///
    /// The value itself is then listed once more, whole (`Field::whole`,
    /// moved, not copied), for the SQL detector alone: it reads a value
    /// as one SQL string pasted after a quote, so only the whole value
    /// tells where that string really ends (`<20 KiB of words>admin'--`
    /// breaks out at its last quote, `don't … admin'--` at the first).
    /// A window opening mid-value would misread where the string ends,
    /// so windows after the first stay unread by it. Reading the whole
    /// value is linear: `sqli::detect` makes one byte-class pass, scans
    /// its first string to the first quote at once, then reads at most
    /// `MAX_TOKENS` tokens, and the decoding chains are linear too. The
    /// whole value does not count against the field limit (the windows
    /// do, as before).
    fn push_windows(&mut self, whole: Field<'a>) {
        if self.full() {
            return;
        }
        let (w, o) = (self.max_value.max(1), window_overlap(self.max_value));
        let value = &whole.value;
        let len = value.len();
        let mut start = 0;
        loop {
            if self.full() {
                break;
            }
            let end = (start + w).min(len);
            let part = match value {
                Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
                Cow::Owned(v) => Cow::Owned(v[start..end].to_vec()),
            };
            self.list.push(Field {
                name: whole.name.clone(),
                value: part,
                json_path: whole.json_path,
                continued: start > 0,
                not_token: false,
                ..whole
            });
            if end == len {
                break;
            }
            start = window_start(value, end - o, o / 2);
        }
        self.wholes += 1;
        self.list.push(Field {
            whole: true,
            not_token: false,
            ..whole
        });
    }
}

/// How much consecutive windows of a long value overlap: a quarter of the
/// window, at most 2 KiB (longer than any payload the rules need whole),
/// and always less than the window so each one moves forward.
fn window_overlap(max_value: usize) -> usize {
    (max_value / 4).min(2048).min(max_value.saturating_sub(1))
}

/// Where a window after the first starts: at the first letter or digit
/// within `slack` bytes of `from` that follows a space or neutral
/// punctuation, so the window does not open inside a quoted string or a
/// comment (a window starting at `\",\"#15` would read as a SQL break-out
/// or a `#` comment that the whole value is not). Otherwise at `from`.
fn window_start(v: &[u8], from: usize, slack: usize) -> usize {
    let stop = (from + slack).min(v.len());
    (from.max(1)..stop)
        .find(|&p| {
            v[p].is_ascii_alphanumeric()
                && (v[p - 1].is_ascii_whitespace()
                    || matches!(
                        v[p - 1],
                        b',' | b';' | b'&' | b'=' | b':' | b'(' | b'[' | b'{' | b'>' | b'.'
                    ))
        })
        .unwrap_or(from)
}

/// Whether a field of `source` is an argument of a query string (the
/// request's own, or that of a Referer or Origin URL read by structure).
pub(crate) fn query_source(source: &str) -> bool {
    matches!(
        source,
        "args" | structured::REFERER_ARGS | structured::ORIGIN_ARGS
    )
}

/// Every field of a request, within the limits.
#[cfg(test)]
pub(crate) fn extract<'a>(req: &Request<'a>, limits: &Limits) -> Fields<'a> {
    extract_into(req, limits, Vec::with_capacity(48), |_| false, None)
}

/// As `extract`, collecting into `list` (emptied first; its allocation is
/// reused, see `engine::inspect`), with the loaded rules' reading of long
/// single-case words (`plain_token`).
pub(crate) fn extract_into<'a>(
    req: &Request<'a>,
    limits: &Limits,
    list: Vec<Field<'a>>,
    sql_words: SqlWords,
    words: Option<&'a EncodedWords>,
) -> Fields<'a> {
    let mut f = Fields::with_list(limits, list);
    f.sql_words = Some(sql_words);
    f.words = words;
    f.truncated |= req.body_truncated;
    f.push_unnamed(Class::Method, "method", req.method.as_bytes());
    if !req.version.is_empty() {
        f.push_unnamed(Class::Version, "version", req.version.as_bytes());
    }
    if !req.body.is_empty() {
        f.push_unnamed(
            Class::MethodWithBody,
            "method_with_body",
            req.method.as_bytes(),
        );
    }
    f.push_unnamed(Class::Path, "path", req.path.as_bytes());
    path_segments(req.path.as_bytes(), "path", &mut f);
    query::pairs(req.query.as_bytes(), "args", &mut f);
    for (name, value) in req.headers {
        if name.eq_ignore_ascii_case("cookie") {
            query::cookies(value, &mut f);
        } else if let Some(h) = structured::UrlHeader::of(name) {
            if !structured::url_header(h, value, &mut f) {
                f.push(Class::Header, "header", lower(name), Cow::Borrowed(value));
            }
        } else {
            f.push(Class::Header, "header", lower(name), Cow::Borrowed(value));
        }
    }
    let body = if req.body.len() > limits.max_body_bytes {
        f.truncated = true;
        &req.body[..limits.max_body_bytes]
    } else {
        req.body
    };
    if !body.is_empty() {
        body::parse(req.header("content-type"), body, limits, &mut f);
    }
    f
}

/// An argument named like a server-side configuration or include variable
/// (`_CONF[path]`, `mosConfig_absolute_path`, `phpbb_root_path`,
/// `include_file`, `GLOBALS[...]`): where register_globals-style code and
/// config overwrites take the base path of an `include`. Page, return and
/// referrer URLs (`page_url`, `retpath`, `root_referer`) are not named so,
/// nor are words that merely start with "conf" (`confirm_url`).
///
/// One pass over the name: every part starts with one of a few letters,
/// so most bytes cost one match on the byte and no string compare.
pub(crate) fn include_like_name(n: &[u8]) -> bool {
    let at = |i: usize, part: &[u8]| {
        n.get(i..i + part.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(part))
    };
    (0..n.len()).any(|i| match n[i] | 0x20 {
        b'a' => at(i, b"absolute_path") || at(i, b"abspath"),
        b'b' => at(i, b"base_path") || at(i, b"basepath") || at(i, b"base_dir"),
        b'c' => at(i, b"conf") && conf_word(n.get(i + 4..).unwrap_or(&[])),
        b'g' => at(i, b"globals["),
        b'i' => at(i, b"include"),
        b'r' => at(i, b"require") || at(i, b"root_path"),
        _ => false,
    })
}

/// "conf" as its own word or as "config" (`conf_dir`, `_CONF[path]`,
/// `mosConfig_...`), not the start of `confirm` or `conference`.
fn conf_word(rest: &[u8]) -> bool {
    match rest.first() {
        None => true,
        Some(b) if !b.is_ascii_alphabetic() => true,
        Some(_) => rest.get(..2).is_some_and(|w| w.eq_ignore_ascii_case(b"ig")),
    }
}

/// Path segments that carry more than a plain name (REST ids, slugs and
/// file names are skipped by the fast path anyway).
fn path_segments<'a>(path: &'a [u8], source: &'static str, f: &mut Fields<'a>) {
    if !path.iter().any(|&b| {
        matches!(
            b,
            b'%' | b'\'' | b'"' | b'<' | b'(' | b' ' | b'+' | b';' | b'='
        )
    }) {
        return;
    }
    let segments = path.split(|&b| b == b'/').enumerate();
    for (i, seg) in segments.filter(|(_, s)| !s.is_empty()) {
        // In a path '+' is a plus, not a space.
        let value = match crate::transform::url::decode_once(seg) {
            Some(v) => Cow::Owned(v),
            None => Cow::Borrowed(seg),
        };
        f.push(
            Class::PathSegment,
            source,
            Cow::Owned(format!("{i}")),
            value,
        );
    }
}

/// Ids, words and numbers (`a81f3c9d2e`, `summer-sale`, `41.99`,
/// `GA1.2.3456.7890`): no rule
/// can match them, so parsers need not even build a field for them.
/// The `_charset_` field of a form (HTML): its value names the encoding
/// the whole submission is decoded in, so even a plain word there matters.
pub(crate) fn charset_field(f: &Field<'_>) -> bool {
    charset_name(f.class, &f.name)
}

/// `charset_field` for a field not built yet.
fn charset_name(class: Class, name: &str) -> bool {
    class == Class::Arg && name.eq_ignore_ascii_case(CHARSET_FIELD)
}

/// The name HTML gives the field a browser fills with the form's encoding.
pub(crate) const CHARSET_FIELD: &str = "_charset_";

pub(crate) fn plain_token(v: &[u8], words: Option<&EncodedWords>) -> bool {
    // One pass: the classes every byte has, and those some byte has. Eight
    // bytes at a time, stopping once no class is left (prose, markup): a
    // value without a class every byte has is no token.
    let (mut all, mut any) = (WORD | NUMBER | DOTTED, 0);
    let mut chunks = v.chunks_exact(8);
    for chunk in &mut chunks {
        for &b in chunk {
            let c = TOKEN_CLASS[usize::from(b)];
            all &= c;
            any |= c;
        }
        if all == 0 {
            return false;
        }
    }
    for &b in chunks.remainder() {
        let c = TOKEN_CLASS[usize::from(b)];
        all &= c;
        any |= c;
    }
    if all == 0 {
        return false;
    }
    // Words, but the keys of prototype pollution (`{"__proto__": {...}}`).
    if v.len() == 9 && (v == b"__proto__" || v == b"prototype") {
        return false;
    }
    let digit = any & DIGIT != 0;
    // A word spelling a path with hex-literal dots and slashes
    // (`0x2e0x2e0x2fetc0x2fpasswd`) is inspected; so is a word that is
    // base64 of text (`PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiAg` is
    // `<script>alert(1)</script>`), decoded only when it mixes cases.
    // (A word holds no dot: `dotted_path` needs an `x` in it.)
    if all & WORD != 0 && !(digit && any & X != 0 && dotted_path(v)) {
        let mixed = any & (UPPER | LOWER) == UPPER | LOWER;
        return !encoded_object(v, mixed, words)
            && (!mixed || !crate::transform::decodes_as_base64(v));
    }
    // Numbers and dotted tokens with digits: versions, analytics ids,
    // JWTs. (Dotted names without digits, like `java.lang.Runtime`, are
    // inspected; so is a path spelled with a dot-dot or with hex-literal
    // dots and slashes, which no version has: `..0x2fetc`,
    // `0x2e0x2e0x2fboot.ini`. Neither is base64: `.`, `+` and `,` are not
    // of its alphabet.)
    let shaped = all & NUMBER != 0 || (all & DOTTED != 0 && digit && plain_dotted(v, any & X != 0));
    // A long one a loaded rule can match inside (`1.aced0005…` for
    // 7002's `\b`, which holds after the dot) is read, whatever its case
    // (`EncodedWords` reads a token's own case). Numbers with `+` or `,`
    // are not asked (no rule's cut covers those bytes; `cmdline` rewrites
    // them).
    shaped && !(all & DOTTED != 0 && v.len() >= ENCODED_OBJECT && words.is_some_and(|w| w.reads(v)))
}

/// A dotted token with a digit (not a number) that is plain: it spells no
/// path (`dotted_path`) and is no JSON Web Token whose claims hold more
/// than plain words (`detect::jose`; `{"user":"alice"}` stays plain).
/// One pass eight bytes at a time (`DottedScan`) finds a dot-dot, an `0x`
/// (then `dotted_path` decides) and, for a token that starts as a JOSE
/// header, the dots its test counts — where `dotted_path`'s overlapping
/// windows and that count read every byte twice more (the analytics ids
/// and session tokens of most cookies). Out of line: `plain_token`, asked
/// of every token, keeps its small frame.
#[inline(never)]
fn plain_dotted(v: &[u8], has_x: bool) -> bool {
    use crate::transform::base64::{jose_head, jose_needs_reading_with};
    let jose = jose_head(v);
    let s = DottedScan::of(v, has_x, jose);
    !(s.dot_dot || (s.zero_x && dotted_path(v)) || (jose && jose_needs_reading_with(v, s.dots)))
}

/// What one pass over a token finds (`plain_dotted`).
struct DottedScan {
    /// Two dots in a row.
    dot_dot: bool,
    /// A `0` then an `x` (either case): where `dotted_path`'s hex
    /// spellings start. Looked for only when the token has an `x`.
    zero_x: bool,
    /// The number of dots, counted only when asked.
    dots: usize,
}

impl DottedScan {
    fn of(v: &[u8], has_x: bool, count: bool) -> DottedScan {
        let (mut dd, mut zx, mut n) = (0u64, 0u64, 0usize);
        // The previous word's flags (its last byte's at bit 63).
        let (mut last_dot, mut last_zero) = (0u64, 0u64);
        let mut chunks = v.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            let w = u64::from_le_bytes(b);
            // Byte k's flag is bit 8k+7: `f >> 8` puts byte k+1's on byte
            // k, and `f << 56` byte 0's on the previous word's last byte.
            let d = eq_bytes(w, b'.');
            dd |= d & (d >> 8) | (last_dot & (d << 56));
            if has_x {
                let z = eq_bytes(w, b'0');
                let x = eq_bytes(w | (ONES * 0x20), b'x');
                zx |= z & (x >> 8) | (last_zero & (x << 56));
                last_zero = z;
            }
            if count {
                n += d.count_ones() as usize;
            }
            last_dot = d;
        }
        let (mut dot, mut zero) = (last_dot >> 63 != 0, last_zero >> 63 != 0);
        for &b in chunks.remainder() {
            let (d, x) = (b == b'.', b | 0x20 == b'x');
            dd |= u64::from(dot && d);
            zx |= u64::from(zero && x);
            n += usize::from(d);
            (dot, zero) = (d, b == b'0');
        }
        DottedScan {
            dot_dot: dd != 0,
            zero_x: zx != 0,
            dots: n,
        }
    }
}

/// Letters and digits that may encode a serialized object — a Java
/// stream in hex (`aced0005…`) or a Java or Python stream in unpadded
/// base64 (`rO0AB…`, `gASV…`), which rules recognise by their magic bytes:
/// a word of at least `ENCODED_OBJECT` bytes that mixes cases (base64 of
/// binary data: `decodes_as_base64` asks for text; base64 magic such as
/// `rO0AB` is matched anywhere in a word), or a single-case one inside
/// which a loaded rule can match (`EncodedWords`, derived from the rule
/// set at load: built-in rule 7002's `\b(?i:aced0005)`, 3009's
/// `invoke-expression`, an operator's `\bcafebabe`). Such a word is read
/// by the rules, not counted as a plain token. Other single-case words
/// (session ids, hashes, dash-less UUIDs) stay plain. A shorter word holds no object worth the name (a
/// stream's header alone is 4 to 8 bytes, a class descriptor dozens
/// more). Mixed-case words of that length (csrf tokens, OAuth codes) are
/// still all read.
fn encoded_object(v: &[u8], mixed: bool, words: Option<&EncodedWords>) -> bool {
    v.len() >= ENCODED_OBJECT && (mixed || words.is_some_and(|w| w.reads(v)))
}

/// Whether a loaded rule reads `v`, a word of lower-case letters only
/// (the JSON reader's shortcut): `plain_token` of such a word is this
/// answer negated, but for the prototype keys. Out of line: the reader
/// asks it only of a word of `ENCODED_OBJECT` bytes or more.
#[inline(never)]
pub(crate) fn lower_word_read(v: &[u8], words: Option<&EncodedWords>) -> bool {
    encoded_object(v, false, words)
}

/// Bytes from which a word of an encoding's alphabet may be an object.
pub(crate) const ENCODED_OBJECT: usize = 16;

/// A dotted token that spells a path: a dot-dot, or a fuzzer's hex
/// literal for a dot or a separator (`0x2e`, `0x2f`, `0x5c`).
///
/// Eight bytes at a time: windows starting every five bytes (the last one
/// moved back to end at the value's end), so each place a pattern of at
/// most four bytes can start is among the first five of some window, and
/// the pattern lies whole in it. A window's answer is exact (`eq_bytes`
/// has no false hits), so the answer is the byte-by-byte one
/// (`dotted_path_matches_window_scans`).
fn dotted_path(v: &[u8]) -> bool {
    if v.len() < 8 {
        return dotted_path_bytewise(v);
    }
    let mut at = 0;
    loop {
        let start = at.min(v.len() - 8);
        let mut w = [0u8; 8];
        w.copy_from_slice(&v[start..start + 8]);
        if spells_path_in(u64::from_le_bytes(w)) {
            return true;
        }
        if start + 8 == v.len() {
            return false;
        }
        at = start + 5;
    }
}

/// `dotted_path` of eight bytes (little-endian: byte `k` in bits `8k..`):
/// a byte's flag shifted down by 8 lands on the byte before it.
fn spells_path_in(w: u64) -> bool {
    let dot = eq_bytes(w, b'.');
    if dot & (dot >> 8) != 0 {
        return true;
    }
    let low = w | (ONES * 0x20);
    let x = eq_bytes(low, b'x');
    if x == 0 {
        return false;
    }
    let ef = eq_bytes(low, b'e') | eq_bytes(low, b'f');
    let unit = (eq_bytes(w, b'2') & (ef >> 8)) | (eq_bytes(w, b'5') & (eq_bytes(low, b'c') >> 8));
    eq_bytes(w, b'0') & (x >> 8) & (unit >> 16) != 0
}

/// `dotted_path` one byte at a time (values shorter than a word).
fn dotted_path_bytewise(v: &[u8]) -> bool {
    // One pass, looking further only at a dot or a zero (most bytes are
    // neither): a dot-dot or `0x2e` / `0x2f` / `0x5c`.
    (0..v.len()).any(|i| match v[i] {
        b'.' => v.get(i + 1) == Some(&b'.'),
        b'0' => matches!(
            v.get(i + 1..i + 4),
            Some(&[x, a, b]) if (x | 0x20) == b'x'
                && matches!((a, b | 0x20), (b'2', b'e' | b'f') | (b'5', b'c'))
        ),
        _ => false,
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `w` equal to `b`, exactly: a byte `y` of
/// `w ^ b…b` is zero just when neither `(y & 0x7f) + 0x7f` nor `y` has
/// its high bit (no sum carries into the next byte).
fn eq_bytes(w: u64, b: u8) -> u64 {
    let y = w ^ (ONES * u64::from(b));
    !(((y & LOW7) + LOW7) | y) & HIGH
}

/// Byte classes of `plain_token`: a word byte (letters, digits, `_`, `-`),
/// a number byte (digits, `.`, `-`, `+`, `,`), a dotted-token byte (word
/// bytes and `.`), a digit, an upper-case and a lower-case letter.
const WORD: u8 = 1;
const NUMBER: u8 = 2;
const DOTTED: u8 = 4;
const DIGIT: u8 = 8;
const UPPER: u8 = 16;
const LOWER: u8 = 32;
/// An `x` (either case): `dotted_path`'s hex spellings need one.
const X: u8 = 64;
const TOKEN_CLASS: [u8; 256] = token_classes();

const fn token_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let word = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        let mut k = 0;
        if word {
            k |= WORD | DOTTED;
        }
        if c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b',') {
            k |= NUMBER;
        }
        if c == b'.' {
            k |= DOTTED;
        }
        if c.is_ascii_digit() {
            k |= DIGIT;
        }
        if c.is_ascii_uppercase() {
            k |= UPPER;
        }
        if c.is_ascii_lowercase() {
            k |= LOWER;
        }
        if matches!(c, b'x' | b'X') {
            k |= X;
        }
        t[b] = k;
        b += 1;
    }
    t
}

/// Header names browsers send, so the usual ones are lowered without
/// allocating: the candidates of a name's length (at most five), compared
/// with the name already lowered (`lower`).
fn common_header(lowered: &[u8]) -> Option<&'static str> {
    let candidates: &[&'static str] = match lowered.len() {
        4 => &["host"],
        6 => &["accept", "origin", "pragma"],
        7 => &["referer"],
        9 => &["sec-ch-ua"],
        10 => &["user-agent", "connection"],
        12 => &["content-type"],
        13 => &["cache-control", "authorization", "if-none-match"],
        14 => &[
            "content-length",
            "sec-fetch-site",
            "sec-fetch-mode",
            "sec-fetch-dest",
            "sec-fetch-user",
        ],
        15 => &["accept-language", "accept-encoding", "x-forwarded-for"],
        16 => &["sec-ch-ua-mobile", "x-requested-with"],
        17 => &["if-modified-since"],
        18 => &["sec-ch-ua-platform"],
        25 => &["upgrade-insecure-requests"],
        _ => &[],
    };
    candidates.iter().find(|k| k.as_bytes() == lowered).copied()
}

/// A header name in lower case (as rules name headers), borrowed when it
/// already is or is a common one. One pass lowers a name of up to
/// `NAME_BUF` bytes into a buffer on the stack, which the common names
/// are then compared with as they are (where comparing ignoring case
/// lowered both sides byte by byte, for each candidate).
fn lower(s: &str) -> Cow<'_, str> {
    const NAME_BUF: usize = 32;
    let b = s.as_bytes();
    if b.len() > NAME_BUF {
        return match b.iter().any(u8::is_ascii_uppercase) {
            true => Cow::Owned(s.to_ascii_lowercase()),
            false => Cow::Borrowed(s),
        };
    }
    // Eight bytes at a time (`upper_bytes`); the buffer's zeros past the
    // name are no letters.
    let mut buf = [0u8; NAME_BUF];
    buf[..b.len()].copy_from_slice(b);
    let mut upper = 0u64;
    for word in buf[..b.len().div_ceil(8) * 8].chunks_exact_mut(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let u = upper_bytes(w);
        upper |= u;
        // The flag (bit 7 of a byte) moved to bit 5: plus 0x20.
        word.copy_from_slice(&(w | (u >> 2)).to_le_bytes());
    }
    if upper == 0 {
        return Cow::Borrowed(s);
    }
    match common_header(&buf[..b.len()]) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(s.to_ascii_lowercase()),
    }
}

/// The high bit of each byte of `w` that is an ASCII upper-case letter,
/// exactly: for a byte `y` below 0x80, `y + (0x80 - b'A')` has its high
/// bit from `A` on and `y + (0x80 - b'Z' - 1)` from past `Z` on (neither
/// sum carries into the next byte); a byte of 0x80 or more is no letter.
fn upper_bytes(w: u64) -> u64 {
    let y = w & LOW7;
    let from_a = y + ONES * u64::from(0x80 - b'A');
    let past_z = y + ONES * u64::from(0x80 - b'Z' - 1);
    (from_a ^ past_z) & !w & HIGH
}

/// Parses arbitrary bytes as every body type (fuzzing entry point).
pub fn fuzz_extract(data: &[u8]) {
    let limits = Limits::default();
    for ct in [
        &b"application/json"[..],
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=XyZ",
        b"text/xml",
        b"application/octet-stream",
    ] {
        let mut f = Fields::new(&limits);
        body::parse(Some(ct), data, &limits, &mut f);
        assert!(f.list.len() - f.wholes + f.skipped <= limits.max_fields);
    }
    let q = String::from_utf8_lossy(data);
    let headers: [(&str, &[u8]); 1] = [("Cookie", data)];
    let req = Request {
        method: "GET",
        path: "/",
        query: &q,
        headers: &headers,
        body: data,
        body_truncated: false,
        version: "HTTP/1.1",
    };
    let _ = extract_into(&req, &limits, Vec::new(), |_| true, None);
}

#[cfg(test)]
mod tests;
