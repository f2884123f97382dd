//! Cross-site scripting by HTML/JS context: a tag that runs script, an
//! event-handler attribute (inside a tag or breaking out of one), a script
//! URL scheme where a URL goes, or a call to a JS sink. Benign markup
//! (`<b>`, `<a href="https://...">`) and prose do not match.

use super::{mark_bytes, Triggers};
use aho_corasick::{AhoCorasick, AhoCorasickKind};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

/// Whether `v` reads as script injection (fuzzing / tooling entry point).
pub fn is_xss(v: &[u8]) -> bool {
    detect(v).is_some()
}

/// Tags that run or load script / change where the page loads from.
const SCRIPT_TAGS: &[&[u8]] = &[
    b"script",
    b"iframe",
    b"frame",
    b"frameset",
    b"object",
    b"embed",
    b"applet",
    b"base",
    b"isindex",
    b"import",
    b"xss",
    b"vmlframe",
];

/// Attributes whose value is a URL the browser may navigate to or load.
const URL_ATTRS: &[&[u8]] = &[
    b"href",
    b"src",
    b"action",
    b"formaction",
    b"data",
    b"xlink:href",
    b"background",
    b"dynsrc",
    b"lowsrc",
    b"poster",
    b"srcdoc",
    b"to",
    b"from",
    b"values",
    b"code",
    b"codebase",
    b"content",
    b"style",
];

/// Functions and properties that execute or exfiltrate when reached.
const SINKS: &[&[u8]] = &[
    b"alert",
    b"prompt",
    b"confirm",
    b"eval",
    b"settimeout",
    b"setinterval",
    b"execscript",
    b"msgbox",
    b"atob",
    b"btoa",
];
const SINK_PROPS: &[&[u8]] = &[
    b"document.cookie",
    b"document.domain",
    b"document.write",
    b"document.location",
    b"window.open(",
    b"window.location",
    b"location.href",
    b".innerhtml",
    b".outerhtml",
    b"fromcharcode",
    b"constructor.constructor",
    b"srcdoc=",
    b"document[",
    b"window[",
    b"top[",
    b"self[",
    b"parent[",
    b"globalthis",
    b"new function",
    b"importscripts(",
    b".sort.call`",
    b".map.call`",
    b".apply.call`",
    b"${alert",
    b"${eval",
    b"${prompt",
    b"${confirm",
];

pub(crate) fn detect(v: &[u8]) -> Option<Range<usize>> {
    // Every vector needs a tag, a scheme, a call or an attribute.
    if v.len() < 4 {
        return None;
    }
    // One pass over the bytes: which of the marks below the value holds.
    let seen = v.iter().fold(0u8, |acc, &b| acc | MARKS[usize::from(b)]);
    if seen == 0 {
        return None;
    }
    let mut i = 0;
    let mut tags = Tags::new(v, true);
    while let Some(p) = v[i..].iter().position(|&b| b == b'<') {
        let at = i + p;
        if let Some(r) = tag_at(&mut tags, at) {
            return Some(r);
        }
        i = at + 1;
    }
    if i > 0 {
        if let Some(r) = declaration(v).or_else(|| breakout(v)) {
            return Some(r);
        }
    }
    // A handler needs its `=`; every script scheme has a `:`.
    if seen & EQ != 0 {
        if let Some(r) = handler_breakout(v) {
            return Some(r);
        }
    }
    if seen & COLON != 0 {
        if let Some(r) = script_scheme(v) {
            return Some(r);
        }
    }
    js_sink(v).or_else(|| {
        if seen & EQ != 0 {
            location_assignment(v)
        } else {
            None
        }
    })
}

/// `location="//evil.example"`, `top.location = 'javascript:…'`: the page
/// navigated by assignment to `location`. The assigned value must be a
/// quoted URL (absolute, scheme-relative or a script scheme): a query's
/// `location=Paris` and JSON's `"location":"…"` are not assignments.
fn location_assignment(v: &[u8]) -> Option<Range<usize>> {
    const NAME: &[u8] = b"location";
    let mut from = 0;
    // Read from each `=` (one byte compare per byte), not from each name.
    while let Some(p) = v[from..].iter().position(|&b| b == b'=') {
        let eq = from + p;
        from = eq + 1;
        // `==`, `!=`, `<=`, `>=` compare.
        if v.get(eq + 1) == Some(&b'=') || eq > 0 && matches!(v[eq - 1], b'=' | b'!' | b'<' | b'>')
        {
            continue;
        }
        let lhs = v[..eq].trim_ascii_end();
        let Some(at) = lhs.len().checked_sub(NAME.len()) else {
            continue;
        };
        let named = lhs[at..].eq_ignore_ascii_case(NAME)
            && (at == 0 || !(v[at - 1].is_ascii_alphanumeric() || v[at - 1] == b'_'));
        if !named {
            continue;
        }
        let rhs = v[eq + 1..].trim_ascii_start();
        let Some((&q, url)) = rhs.split_first() else {
            continue;
        };
        let url_ok = starts_with_ci(url, b"http:")
            || starts_with_ci(url, b"https:")
            || url.starts_with(b"//")
            || scheme_start(url).is_some();
        if matches!(q, b'"' | b'\'' | b'`') && url_ok {
            return Some(at..v.len().min(at + 40));
        }
    }
    None
}

/// Marks for the one-pass scan in `detect`.
const COLON: u8 = 1;
const EQ: u8 = 2;
const OTHER: u8 = 4;
static MARKS: [u8; 256] = marks();

/// A tag's `<`, a scheme's `:`, an attribute's `=`, a call's `(` or
/// backtick, a property's `.` or `[`: every check of `detect` needs one
/// (the one-pass scan below returns at once without).
pub(crate) const TRIGGERS: Triggers = Triggers::new(b":=<(`.[");

/// A tag's `<` (`detect_html_injection`, `detect_html_links`) or CSS
/// `url(`'s parenthesis.
pub(crate) const HTML_INJECTION_TRIGGERS: Triggers = Triggers::new(b"<(");

const fn marks() -> [u8; 256] {
    let t = mark_bytes([0u8; 256], TRIGGERS.bytes, OTHER);
    let t = mark_bytes(t, b":", COLON);
    mark_bytes(t, b"=", EQ)
}

fn lower_eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn starts_with_ci(v: &[u8], p: &[u8]) -> bool {
    v.len() >= p.len() && lower_eq(&v[..p.len()], p)
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/' | 0x0b | 0)
}

/// The tag opened (or closed) at `v[at] == '<'`: its name, where its
/// attribute text starts and where the tag ends (after its `>`, or the
/// value's end). `<3`, `a < b`, `<john@example.com>` are not tags.
fn open_tag(v: &[u8], at: usize) -> Option<(&[u8], usize, usize)> {
    let (name, j) = tag_name(v, at)?;
    let end = v[j..]
        .iter()
        .position(|&b| b == b'>')
        .map_or(v.len(), |p| j + p + 1);
    Some((name, j, end))
}

/// The name of the tag opened (or closed) at `v[at] == '<'` and where its
/// attribute text starts (`open_tag` without the search for its end).
fn tag_name(v: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut j = at + 1;
    if v.get(j) == Some(&b'/') {
        j += 1;
    }
    let name_start = j;
    while j < v.len() && (v[j].is_ascii_alphanumeric() || v[j] == b':' || v[j] == b'-') {
        j += 1;
    }
    let name = &v[name_start..j];
    if name.is_empty() || !name[0].is_ascii_alphabetic() {
        return None;
    }
    // `<scriptfoo` is not `<script`: the name must end at a separator or '>'.
    if j < v.len() && !is_sep(v[j]) && v[j] != b'>' {
        return None;
    }
    Some((name, j))
}

/// The first position at or after a point where a byte test holds,
/// remembered: asked at increasing points, it reads each byte of the
/// value once in all (the answer for `p` stands while `from <= p <= at`).
#[derive(Default)]
struct NextWhere {
    from: usize,
    /// The position found, or the value's length for none.
    at: Option<usize>,
}

impl NextWhere {
    fn find(&mut self, v: &[u8], p: usize, hit: impl Fn(usize) -> bool) -> usize {
        if let Some(at) = self.at.filter(|&at| self.from <= p && p <= at) {
            return at;
        }
        let at = (p..v.len()).find(|&k| hit(k)).unwrap_or(v.len());
        (self.from, self.at) = (p, Some(at));
        at
    }
}

/// The tags of a value, asked about left to right. A tag's attribute
/// text runs to its `>`, as the HTML tokenizer reads it, but is read
/// only up to the next tag start (a closing tag's too when
/// `closing_bounds`), whose own reading covers what follows: a run of
/// unclosed tags (`<a <a <a …`, `<x on<x on…`) costs each byte a constant
/// number of reads, not one scan to the value's end per tag. A next tag
/// start inside a quoted attribute value (`<a title='<b c="' href=…>`) is
/// text, as the browser reads it: then the tag is read to its `>` and the
/// tag starts before that are not tags (`skip_until`), so each byte is
/// still read a constant number of times. The ends of the tags and the
/// next tag starts are found by `NextWhere`.
struct Tags<'v> {
    v: &'v [u8],
    closing_bounds: bool,
    gt: NextWhere,
    next: NextWhere,
    skip_until: usize,
}

/// One tag of `Tags`: its name, where its attribute text starts and
/// where its reading stops, and where the tag ends (after its `>`, or
/// the value's end).
struct Tag<'v> {
    name: &'v [u8],
    attrs: Range<usize>,
    end: usize,
}

impl<'v> Tags<'v> {
    fn new(v: &'v [u8], closing_bounds: bool) -> Self {
        Tags {
            v,
            closing_bounds,
            gt: NextWhere::default(),
            next: NextWhere::default(),
            skip_until: 0,
        }
    }

    fn at(&mut self, at: usize) -> Option<Tag<'v>> {
        let v = self.v;
        if at < self.skip_until {
            return None;
        }
        let (name, j) = tag_name(v, at)?;
        let gt = self.gt.find(v, j, |k| v[k] == b'>');
        let end = (gt + 1).min(v.len());
        let closing_bounds = self.closing_bounds;
        let next = self.next.find(v, j, |k| {
            v[k] == b'<'
                && (closing_bounds || v.get(k + 1) != Some(&b'/'))
                && tag_name(v, k).is_some()
        });
        let mut cut = end.min(next);
        if cut < end && ends_in_open_quote(&v[j..cut]) {
            (cut, self.skip_until) = (end, end);
        }
        Some(Tag {
            name,
            attrs: j..cut,
            end,
        })
    }
}

/// Whether attribute text ends inside a quoted value (`title='<b`): a
/// quote right after an attribute's `=` opens a value that only the same
/// quote closes.
fn ends_in_open_quote(a: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = a[i..].iter().position(|&b| b == b'=') {
        let k = i
            + p
            + 1
            + a[i + p + 1..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        match a.get(k) {
            Some(&q @ (b'"' | b'\'')) => match a[k + 1..].iter().position(|&b| b == q) {
                Some(close) => i = k + 1 + close + 1,
                None => return true,
            },
            _ => i = k,
        }
    }
    false
}

/// A tag starting at `v[at] == '<'`: script-running tag, handler, or a script URL.
fn tag_at(tags: &mut Tags<'_>, at: usize) -> Option<Range<usize>> {
    let v = tags.v;
    let Tag {
        name,
        attrs: Range {
            start: j,
            end: attrs_end,
        },
        end,
    } = tags.at(at)?;
    // `<v:vmlframe>`, `<svg:script>`: the local name counts.
    let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
    if SCRIPT_TAGS
        .iter()
        .any(|t| lower_eq(name, t) || lower_eq(local, t))
    {
        return Some(at..end);
    }
    let attrs = &v[j..attrs_end];
    // Legacy tags that fetch a document or scriptlet into the page
    // (Netscape layers, IE data islands, background sound) do so by `src`.
    if LOADER_TAGS.iter().any(|t| lower_eq(local, t)) && has_attr(attrs, b"src") {
        return Some(at..end);
    }
    // SVG animation rewriting a link: `<set attributeName=xlink:href
    // to=…>` / `<animate attributeName=href values=…>` point an existing
    // link wherever the attacker wants, whatever the scheme.
    if ANIMATION_TAGS.iter().any(|t| lower_eq(local, t)) && animates_link(attrs) {
        return Some(at..end);
    }
    attributes(attrs, j).map(|r| at.min(r.start)..r.end)
}

/// Tags that load a document or scriptlet from their `src`.
const LOADER_TAGS: &[&[u8]] = &[b"layer", b"ilayer", b"xml", b"bgsound"];

/// SVG animation elements that can set any attribute of their target.
const ANIMATION_TAGS: &[&[u8]] = &[b"set", b"animate", b"animatemotion"];

/// Whether a tag's attribute text has the attribute `name` (`name=`, any case).
fn has_attr(attrs: &[u8], name: &[u8]) -> bool {
    attrs.windows(name.len() + 1).enumerate().any(|(k, w)| {
        lower_eq(&w[..name.len()], name)
            && matches!(w[name.len()], b'=' | b' ' | b'\t')
            && (k == 0 || is_sep(attrs[k - 1]) || matches!(attrs[k - 1], b'"' | b'\''))
    })
}

/// `attributeName="href"` / `"xlink:href"` with a `to` / `values` / `from`.
fn animates_link(attrs: &[u8]) -> bool {
    let lower: Vec<u8> = attrs
        .iter()
        .filter(|b| !matches!(b, b'"' | b'\'' | b' ' | b'\t' | b'\n'))
        .map(u8::to_ascii_lowercase)
        .collect();
    let names_link = [&b"attributename=href"[..], b"attributename=xlink:href"]
        .iter()
        .any(|p| lower.windows(p.len()).any(|w| w == *p));
    names_link && (has_attr(attrs, b"to") || has_attr(attrs, b"values") || has_attr(attrs, b"from"))
}

/// A context-closing polyglot: the ends of an HTML comment and of a
/// CDATA section, neither opened in the value (`"'`-->]]>]</div>`).
/// Pasted markup closes what it opened; a break-out closes contexts it
/// expects to be in, so that what follows lands in page markup.
fn breakout(v: &[u8]) -> Option<Range<usize>> {
    let find = |p: &[u8]| v.windows(p.len()).position(|w| w == p);
    let comment_end = find(b"-->")?;
    let cdata_end = find(b"]]>")?;
    let opened = |open: &[u8], end: usize| {
        v[..end]
            .windows(open.len())
            .any(|w| w.eq_ignore_ascii_case(open))
    };
    if opened(b"<!--", comment_end) || opened(b"<![cdata[", cdata_end) {
        return None;
    }
    let at = comment_end.min(cdata_end);
    Some(at..v.len().min(at + 40))
}

/// Markup declarations that change how the document is read: an
/// `<?xml-stylesheet?>` runs an XSLT (which may script), an `<!ATTLIST>`
/// or `<!ENTITY>` rewrites attributes and text.
fn declaration(v: &[u8]) -> Option<Range<usize>> {
    const DECLS: [&[u8]; 3] = [b"<?xml-stylesheet", b"<!attlist", b"<!entity"];
    let mut i = 0;
    while let Some(p) = v[i..].iter().position(|&b| b == b'<') {
        let at = i + p;
        if DECLS.iter().any(|d| starts_with_ci(&v[at..], d)) {
            return Some(at..v.len().min(at + 40));
        }
        i = at + 1;
    }
    None
}

/// One `name=value` pair of a tag's attribute text: the name, the value
/// (from its opening quote, if any, to before its closing one) and where
/// the pair starts and ends in that text.
struct Attr<'s> {
    name: &'s [u8],
    value: &'s [u8],
    start: usize,
    end: usize,
}

/// The `name=value` pairs of a tag's attribute text (quoted or bare
/// values; names without `=` skipped). A bare value ends at a blank or
/// `>`, as the HTML tokenizer reads it, when `html_values`; otherwise also
/// at a `/`, which is where a filter-evading `<img src=x/onerror=…>` puts
/// its next attribute.
fn attr_pairs(s: &[u8], html_values: bool) -> impl Iterator<Item = Attr<'_>> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < s.len() {
            while i < s.len() && (is_sep(s[i]) || s[i] == b'"' || s[i] == b'\'') {
                i += 1;
            }
            let ns = i;
            while i < s.len() && !is_sep(s[i]) && !matches!(s[i], b'=' | b'>') {
                i += 1;
            }
            let name = &s[ns..i];
            while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            if s.get(i) != Some(&b'=') {
                if i == ns {
                    i += 1;
                }
                continue;
            }
            i += 1;
            let value_start = i;
            let quote = s
                .get(i)
                .copied()
                .filter(|&b| b == b'"' || b == b'\'' || b == b'`');
            if quote.is_some() {
                i += 1;
            }
            while i < s.len()
                && match quote {
                    Some(q) => s[i] != q,
                    None => !(is_sep(s[i]) && (!html_values || s[i] != b'/')) && s[i] != b'>',
                }
            {
                i += 1;
            }
            let value = &s[value_start..i.min(s.len())];
            let end = i;
            i += 1;
            return Some(Attr {
                name,
                value,
                start: ns,
                end,
            });
        }
        None
    })
}

/// Scans `name=value` pairs inside a tag for handlers and script URLs.
fn attributes(s: &[u8], offset: usize) -> Option<Range<usize>> {
    attr_pairs(s, false)
        .find(|a| {
            is_handler_name(a.name)
                || URL_ATTRS.iter().any(|u| lower_eq(a.name, u))
                    && (scheme_start(a.value).is_some() || split_scheme(a.value))
                || lower_eq(a.name, b"style") && style_breakout(a.value)
        })
        .map(|a| offset + a.start..offset + a.end)
}

/// A URL whose scheme is split by a tab or line break (`htt\tp://`):
/// browsers drop those bytes from URLs, so the split only hides the
/// scheme from filters, whatever the scheme.
fn split_scheme(value: &[u8]) -> bool {
    let value = value.trim_ascii_start();
    let value = value
        .strip_prefix(b"\"")
        .or_else(|| value.strip_prefix(b"'"))
        .unwrap_or(value);
    let Some(colon) = value.iter().take(24).position(|&b| b == b':') else {
        return false;
    };
    let scheme = &value[..colon];
    let letters = scheme.iter().filter(|b| b.is_ascii_alphabetic()).count();
    letters >= 2
        && scheme.iter().any(|&b| matches!(b, b'\t' | b'\n' | b'\r'))
        && scheme.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'\t' | b'\n' | b'\r' | b'+' | b'.' | b'-')
        })
}

/// An inline style that breaks out of its own declarations: a brace (a
/// declaration list has none: `foo}color:red`, `foo{bar;…`), a control
/// byte (CSS ends a bad token there and resumes at the next `;`: `x&#1;;
/// color:red`), or a line break ending a quoted string right before a new
/// declaration (`'foo&#10;;color:red'`). Pasted markup wraps long styles
/// between words, never right before a `;`. A control byte followed by a
/// hex digit is left alone: it is what a CSS escape (`\5FAE`, a CJK font
/// name) becomes once read as a JS octal escape.
fn style_breakout(value: &[u8]) -> bool {
    let mut quote: Option<u8> = None;
    // The first non-blank after a line break, found once per blank run.
    let mut after_blanks = NextWhere::default();
    for (k, &b) in value.iter().enumerate() {
        let next = value.get(k + 1).copied();
        match b {
            b'{' | b'}' => return true,
            b'\n' | b'\r' | 0x0c if quote.is_some() => {
                let after = after_blanks.find(value, k + 1, |c| !value[c].is_ascii_whitespace());
                if matches!(value.get(after), Some(b';' | b'}')) {
                    return true;
                }
            }
            0x01..=0x08 | 0x0e..=0x1f | 0x7f if !next.is_some_and(|c| c.is_ascii_hexdigit()) => {
                return true;
            }
            b'"' | b'\'' => match quote {
                Some(q) if q == b => quote = None,
                None => quote = Some(b),
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// `onerror`, `onload`, `onpointerenter`...: "on" plus a lowercase event.
fn is_handler_name(name: &[u8]) -> bool {
    name.len() >= 5
        && starts_with_ci(name, b"on")
        && name[2..].iter().all(|b| b.is_ascii_alphabetic())
}

/// `" onmouseover=alert(1)` outside any tag: a quote or space, then a handler.
fn handler_breakout(v: &[u8]) -> Option<Range<usize>> {
    let mut i = 0;
    while i + 4 < v.len() {
        let pre_ok = i > 0
            && matches!(
                v[i - 1],
                b'"' | b'\'' | b'`' | b' ' | b'/' | b'\t' | b'\n' | b';' | 0x0c
            );
        if pre_ok && starts_with_ci(&v[i..], b"on") {
            let mut j = i + 2;
            while j < v.len() && v[j].is_ascii_alphabetic() {
                j += 1;
            }
            let name_len = j - i;
            while j < v.len() && matches!(v[j], b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            if name_len >= 5 && v.get(j) == Some(&b'=') {
                let rest = &v[j + 1..];
                let code = rest.iter().take(64).any(|&b| matches!(b, b'(' | b'`'));
                if code {
                    return Some(i..(j + 1 + rest.len().min(40)));
                }
            }
        }
        i += 1;
    }
    None
}

/// Index after a leading `javascript:` / `vbscript:` / `data:text/html`,
/// ignoring whitespace, quotes and control bytes browsers drop from URLs.
fn scheme_start(value: &[u8]) -> Option<usize> {
    const SCHEMES: [&[u8]; 7] = [
        b"javascript:",
        b"vbscript:",
        b"livescript:",
        b"data:text/html",
        b"data:image/svg",
        b"data:application/",
        b"data:text/xml",
    ];
    let ignorable = |b: u8| {
        matches!(
            b,
            b'\t' | b'\n' | b'\r' | 0 | b'"' | b'\'' | b'`' | b' ' | 0x0b | 0x0c
        )
    };
    'scheme: for scheme in SCHEMES {
        let (mut j, mut k) = (0, 0);
        while k < scheme.len() {
            let b = *value.get(j)?;
            if j > 60 {
                continue 'scheme;
            }
            j += 1;
            if ignorable(b) {
                continue;
            }
            if b.to_ascii_lowercase() != scheme[k] {
                continue 'scheme;
            }
            k += 1;
        }
        return Some(j);
    }
    None
}

/// A script URL where a URL would go: at the start of the value or after `=`, `(` or a quote.
fn script_scheme(v: &[u8]) -> Option<Range<usize>> {
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        let boundary = i == 0
            || matches!(
                v[i - 1],
                b'=' | b'"' | b'\'' | b'(' | b'`' | b' ' | b'\t' | b'\n' | b':'
            );
        if boundary
            && matches!(
                b.to_ascii_lowercase(),
                b'j' | b'v' | b'l' | b'd' | b'\t' | b' '
            )
        {
            if let Some(end) = scheme_start(&v[i..]) {
                let tail = &v[i + end..];
                let data = matches!(
                    v[i..].iter().find(|b| !b.is_ascii_whitespace()),
                    Some(b'd') | Some(b'D')
                );
                // `java\tscript:` / `ja&tab;vascript:`: a scheme split by bytes
                // browsers drop is an evasion whatever follows.
                let word = v[i..i + end].trim_ascii_start();
                let obfuscated = word
                    .iter()
                    .any(|&c| matches!(c, b'\t' | b'\n' | b'\r' | 0 | 0x0b | 0x0c));
                let payload = data
                    || obfuscated
                    || tail.iter().take(80).any(|&c| matches!(c, b'(' | b'`'))
                        && !starts_with_ci(tail, b"void(0)")
                        && !starts_with_ci(tail, b"void 0");
                if payload {
                    return Some(i..(i + end + tail.len().min(40)));
                }
            }
        }
        i += 1;
    }
    None
}

/// One automaton for all sink names and properties (built once).
fn sinks() -> &'static Option<AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(SINK_PROPS.iter().chain(SINKS.iter()))
            .ok()
    })
}

/// `alert(1)`, `';prompt``//`, `document.cookie`: JS reached from a value.
fn js_sink(v: &[u8]) -> Option<Range<usize>> {
    let ac = sinks().as_ref()?;
    // Where each name is last called (`passed_as_value`), read once, at the
    // first assignment of a sink: any number of assignments (`a=alert,`
    // repeated) then costs one lookup each.
    let mut calls = None;
    for m in ac.find_overlapping_iter(v) {
        let (at, end) = (m.start(), m.end());
        if m.pattern().as_usize() < SINK_PROPS.len() {
            return Some(at..end);
        }
        let before_ok = at == 0 || !(v[at - 1].is_ascii_alphanumeric() || v[at - 1] == b'_');
        let mut j = end;
        while j < v.len() && matches!(v[j], b' ' | b'\t' | b'\n') {
            j += 1;
        }
        // A call: the name followed by `(` or a template literal. A timer
        // handed a function literal runs that function, not a string of
        // code: the literal's body is judged by the other checks.
        if before_ok
            && matches!(v.get(j), Some(b'(') | Some(b'`'))
            && !(is_timer(&v[at..end]) && function_literal_first(&v[j..]))
        {
            return Some(at..(j + 1).min(v.len()));
        }
        if before_ok && passed_as_value(v, at, j, &mut calls) {
            return Some(at..(j + 1).min(v.len()));
        }
    }
    None
}

/// `setTimeout` / `setInterval`: sinks only when handed code as a string.
fn is_timer(name: &[u8]) -> bool {
    lower_eq(name, b"settimeout") || lower_eq(name, b"setinterval")
}

/// Whether the argument list `(…` opens with a function literal:
/// `(function`, `(() =>`, `((a, b) =>`, `(a =>`. A string, a name or any
/// other expression is not one: a name may hold a string of code
/// (`setTimeout(name)` evaluates window.name, `setInterval(code, 1)`).
fn function_literal_first(args: &[u8]) -> bool {
    let Some(rest) = args.strip_prefix(b"(") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    if starts_with_ci(rest, b"function") || starts_with_ci(rest, b"async ") {
        return true;
    }
    // An arrow: a parameter list or one name, then `=>`.
    // A parameter list longer than any written by hand (its `)` is not
    // searched past that: `setTimeout((` repeated stays linear) is not one.
    let params_end = if rest.first() == Some(&b'(') {
        rest.iter()
            .take(256)
            .position(|&b| b == b')')
            .map(|p| p + 1)
    } else {
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$'))
            .count();
        (n > 0).then_some(n)
    };
    params_end.is_some_and(|e| rest[e..].trim_ascii_start().starts_with(b"=>"))
}

/// A sink handed over as a function value rather than called by name:
/// an argument of a call (`[1].find(alert)`, `setTimeout(alert,0)`), a
/// parenthesized reference called at once (`(alert)(1)`), or assigned
/// and called later (`a=alert,a(1)`). Prose has `(alert)` after a space
/// and no call after it.
fn passed_as_value<'v>(
    v: &'v [u8],
    at: usize,
    after: usize,
    calls: &mut Option<HashMap<&'v [u8], usize>>,
) -> bool {
    let prev = at.checked_sub(1).map(|k| v[k]);
    let next = v.get(after).copied();
    let callee = |k: usize| {
        k.checked_sub(1)
            .and_then(|p| v.get(p))
            .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b')' | b']'))
    };
    match (prev, next) {
        (Some(b'('), Some(b')')) => {
            callee(at - 1) || matches!(v.get(after + 1), Some(b'(') | Some(b'`'))
        }
        (Some(b'('), Some(b',')) => callee(at - 1),
        (Some(b'='), Some(b',' | b';')) => {
            // `a=alert,a(1)`: the name it was given is called after.
            let lhs_end = at - 1;
            let lhs = &v[name_start(v, lhs_end)..lhs_end];
            let calls = calls.get_or_insert_with(|| last_calls(v));
            !lhs.is_empty() && calls.get(lhs).is_some_and(|&p| p >= after)
        }
        _ => false,
    }
}

/// Where the name ending at `end` starts (letters, digits, `_`, `$`).
fn name_start(v: &[u8], end: usize) -> usize {
    v[..end]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$')))
        .map_or(0, |p| p + 1)
}

/// Each name called in `v` (followed by `(` or a template literal) and
/// where its last call starts: one pass.
fn last_calls(v: &[u8]) -> HashMap<&[u8], usize> {
    let mut calls = HashMap::new();
    for (p, &b) in v.iter().enumerate() {
        if matches!(b, b'(' | b'`') {
            let start = name_start(v, p);
            if start < p {
                calls.insert(&v[start..p], start);
            }
        }
    }
    calls
}

/// Attributes that make the browser fetch a URL as the page loads
/// (`src`, `background`, `poster`…) or send the user to one (`href`,
/// `action`, `formaction`).
const LINK_ATTRS: &[&[u8]] = &[
    b"href",
    b"xlink:href",
    b"src",
    b"srcset",
    b"lowsrc",
    b"dynsrc",
    b"background",
    b"poster",
    b"data",
    b"codebase",
    b"action",
    b"formaction",
    b"ping",
];

/// Whether `v` is HTML injection (fuzzing / tooling entry point).
pub fn is_html_injection(v: &[u8]) -> bool {
    detect_html_injection(v).is_some()
}

/// HTML injection (content injection, the first step of XSS and of
/// phishing through a trusted page), in the shape of a probe or a
/// planted link: a value whose markup is one element that links to,
/// loads from or posts to another host — `<a href="http://…">text</a>`,
/// `<IMG SRC="//…">`, `<math><a xlink:href=//…>`, `<form action=https://…>`,
/// a `style` loading `url(//…)` — perhaps after a context break-out
/// (`">`, `'>`) and wrapper tags without attributes, followed only by
/// text and closing tags; or a value that is CSS loading a resource from
/// another host (`background:url(//…)`). Page markup that real traffic
/// carries (consent texts, analytics beacons describing the page) is
/// several elements with structure (`<p>By clicking… <a href=…>Terms</a>
/// and <a href=…>Privacy</a></p>`, `<div class=…><picture><source
/// srcset=…>`) and is left to paranoia 2 (`detect_html_links`); a
/// site-relative link, a fragment, `mailto:`, `tel:` and inline
/// `data:image/…` fetch nothing from elsewhere. Bounded: one pass to the
/// first tag, one tag read, one scan for a further `<`.
pub(crate) fn detect_html_injection(v: &[u8]) -> Option<Range<usize>> {
    let lead = v
        .iter()
        .take_while(|&&b| matches!(b, b'"' | b'\'' | b'`' | b'>' | b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    if v.get(lead) == Some(&b'<') {
        return lone_linking_element(v, lead);
    }
    css_declaration(&v[lead..]).map(|r| lead + r.start..lead + r.end)
}

/// Any element of a value that links to, loads from or posts to a URL,
/// wherever it sits (`<p>… <a href=…>…</a></p>`), or CSS loading a
/// resource: `detect_html_injection` without its lone-element shape, for
/// paranoia 2 (real pages' consent texts and analytics beacons carry such
/// markup).
pub(crate) fn detect_html_links(v: &[u8]) -> Option<Range<usize>> {
    let mut i = 0;
    // Closing tags are not read (they link nothing): they bound no reading.
    let mut tags = Tags::new(v, false);
    while let Some(p) = v[i..].iter().position(|&b| b == b'<') {
        let at = i + p;
        i = at + 1;
        if v.get(at + 1) == Some(&b'/') {
            continue;
        }
        if let Some(tag) = tags.at(at) {
            if let Some(r) = linking_tag(v, at, tag.attrs, tag.end) {
                return Some(r);
            }
        }
    }
    detect_html_injection(v)
}

/// The element at `v[at] == '<'` (after wrapper tags without attributes)
/// if it links, and nothing but text and closing tags follows it.
fn lone_linking_element(v: &[u8], mut at: usize) -> Option<Range<usize>> {
    loop {
        let (_, j, end) = open_tag(v, at)?;
        if v.get(at + 1) == Some(&b'/') {
            return None;
        }
        let bare = v[j..end]
            .iter()
            .all(|&b| b == b'>' || b == b'/' || is_sep(b));
        if bare && v.get(end) == Some(&b'<') {
            at = end;
            continue;
        }
        let rest = &v[end..];
        let another = rest
            .windows(2)
            .any(|w| w[0] == b'<' && w[1].is_ascii_alphabetic());
        return (!another)
            .then(|| linking_tag(v, at, j..end, end))
            .flatten();
    }
}

/// A value that is CSS loading a resource: it opens with a declaration
/// (`background:url(//x/p.png)`) or with a rule whose block opens with
/// one (`*{background:url(…)}`, `@font-face {src:url(…)}`), and a
/// declaration in it is `property:url(…)`. GraphQL (`query Q($a:T) {
/// img: url(size: 64) }`) opens with neither.
fn css_declaration(v: &[u8]) -> Option<Range<usize>> {
    let head = v.iter().take(64).position(|&b| b == b'{').unwrap_or(0);
    if v[..head]
        .iter()
        .any(|&b| matches!(b, b'(' | b')' | b';' | b'}' | b'"'))
    {
        return None;
    }
    let decl = if head > 0 { &v[head + 1..] } else { v }.trim_ascii_start();
    let name = decl
        .iter()
        .take_while(|b| b.is_ascii_alphabetic() || **b == b'-')
        .count();
    if name < 3 || decl[name..].trim_ascii_start().first() != Some(&b':') {
        return None;
    }
    css_url_in(v).then_some(0..v.len().min(64))
}

/// A tag at `v[at] == '<'` (not a closing one) whose attribute text
/// `attrs` holds a link attribute with a URL to another host or a style
/// loading a resource from one; the tag ends at `end`.
fn linking_tag(v: &[u8], at: usize, attrs: Range<usize>, end: usize) -> Option<Range<usize>> {
    attr_pairs(&v[attrs], true)
        .any(|a| {
            LINK_ATTRS.iter().any(|n| lower_eq(a.name, n)) && off_site(a.value)
                || lower_eq(a.name, b"style") && css_url_in(a.value)
        })
        .then_some(at..end)
}

/// Whether a URL (perhaps quoted) points to another host: `scheme://…`
/// or scheme-relative `//…` (browsers read `\` as `/` there). A
/// site-relative link (`/docs#install`, `x.png`), a fragment, `mailto:`,
/// `tel:` and an inline `data:image/…` fetch nothing from elsewhere.
fn off_site(url: &[u8]) -> bool {
    // Its end is not trimmed (the URLs of a run of `url(` share their
    // `)` and so the blanks before it): a host is a non-blank after `//`.
    let url = url.trim_ascii_start();
    let url = url
        .strip_prefix(b"\"")
        .or_else(|| url.strip_prefix(b"'"))
        .unwrap_or(url)
        .trim_ascii_start();
    let scheme = url
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        .count();
    let rest = match url.get(scheme) {
        Some(b':') if scheme > 0 && url[0].is_ascii_alphabetic() => &url[scheme + 1..],
        _ => url,
    };
    rest.len() > 2
        && rest[..2].iter().all(|&b| b == b'/' || b == b'\\')
        && rest[2..].iter().any(|b| !b.is_ascii_whitespace())
}

/// Whether a style text loads a resource from another host (`url(//…)`).
fn css_url_in(style: &[u8]) -> bool {
    let mut close = NextWhere::default();
    style
        .iter()
        .enumerate()
        .any(|(k, &b)| b == b'(' && css_resource(style, k, &mut close).is_some())
}

/// A CSS declaration loading a resource from another host, `v[paren] ==
/// '('`: `url(` right before it, and before that (blanks skipped) the `:`
/// of a declaration or the `,` of a value list, after a property name
/// (`background:url(//x/p.png)`, `src: url("https://x/f.svg#x")`,
/// `mask:url(#a), url(//x/m.svg)`).
fn css_resource(v: &[u8], paren: usize, close: &mut NextWhere) -> Option<Range<usize>> {
    let start = paren.checked_sub(3)?;
    if !lower_eq(&v[start..paren], b"url") {
        return None;
    }
    let before = v[..start].trim_ascii_end();
    let (&punct, head) = before.split_last()?;
    let declared = match punct {
        b':' => {
            let prop = head.trim_ascii_end();
            let n = prop
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
                .count();
            n >= 3 && prop[prop.len() - n..].iter().any(u8::is_ascii_alphabetic)
        }
        // `mask:url(#a), url(b)`: a list after a first `url(…)`.
        b',' => head.trim_ascii_end().ends_with(b")"),
        _ => false,
    };
    if !declared {
        return None;
    }
    // The `)` is found once for a run of `url(` it closes.
    let close = close.find(v, paren, |k| v[k] == b')');
    let url = v.get(paren + 1..close)?;
    off_site(url).then_some(start..close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::assert_each;

    #[test]
    fn xss_is_found() {
        assert_each(
            is_xss,
            true,
            &[
                "<script>alert(1)</script>",
                "<img src=x onerror=alert(1)>",
                "<svg/onload=prompt(1)>",
                "\" onmouseover=\"alert(1)",
                "javascript:alert(document.domain)",
                "<a href=\"java\tscript:alert(1)\">x</a>",
                "<iframe src=//evil>",
                "';alert(String.fromCharCode(88))//",
                "<body onload=confirm`1`>",
                "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">",
                "<div style=\"x\" onpointerenter=x>",
                "<layer src=\"//evil.example/s.html\"></layer>",
                "<XML ID=I SRC=\"x.xml\"></XML>",
                "<svg><set attributeName=\"xlink:href\" begin=\"accessKey(a)\" to=\"//evil.example/\" />",
                "<animate attributename=href values=//evil.example/ />",
                "<?xml-stylesheet type=\"text/xsl\" href=\"#x\"?>",
                "<!ATTLIST img src CDATA \"x:x\">",
                "(alert)(1)",
                "a=alert,a(1)",
                // A tag start inside a quoted value is text: the tag is
                // read to its `>`.
                "<a title='<b c=\"' href=javascript:alert(1)>x</a>",
                "<svg><set title=\"<b c\" attributename=href to=//evil.example/>",
                "<bgsound x=\"<b y\" src=//evil.example/a.wav>",
                // Decoy assignments before the one that is called: no cap
                // on how many are read.
                &format!("{}b=alert,b(1)", "a=alert,".repeat(40)),
                "[1].find(alert)",
                "setTimeout(confirm,0)",
                "\"'`-->]]>]</div><svg>",
                "window.open('//evil.example')",
                "<p style=\"color:red}body{display:none\">",
                "<a href=\"h\ttps://evil.example/\">x</a>",
                "location='//evil.example/'",
                "setTimeout('go()',1)",
            ],
        );
    }

    #[test]
    fn markup_and_text_are_not_xss() {
        assert_each(
            is_xss,
            false,
            &[
                "<b>bold</b> and <i>it</i>",
                "<a href=\"https://example.com/\">link</a>",
                "John <john@example.com>",
                "a < b and c > d",
                "javascript: the good parts",
                "href=javascript:void(0)",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                "turn on the light",
                "question=online shopping",
                "Click the bell (alert) icon to subscribe",
                "price alert, stock alert; eval results",
                "<set>a set of items</set>",
                "<layer>top</layer> of the cake",
                "<xml>config</xml>",
                "<?xml version=\"1.0\"?><order/>",
                "Set a reminder, then (prompt) me later",
                "<![CDATA[ a ]]> and <!-- note --> in a feed",
                "an arrow --> and a bracket ]]> in prose",
                "<p style=\"color:red; font-family:'Times New Roman'\">x</p>",
                "location=Paris",
                "setTimeout(function () { go() }, 10)",
                "setInterval(() => tick(), 1000)",
            ],
        );
    }

    #[test]
    fn html_injection_is_found() {
        assert_each(
            is_html_injection,
            true,
            &[
                "<a href=\"http://attacker.example/login\">Sign in again</a>",
                "<A HREF=\"http://66.102.7.147/\">XSS</A>",
                "<IMG SRC=\"http://evil.example/track.php?c=1\">",
                "<math><a xlink:href=\"//evil.example/\">click",
                "<form action=\"https://evil.example/c\" method=\"post\">",
                "<link rel=stylesheet href=\"//evil.example/x.css\">",
                "<div style=content:url(http://evil.example/x.svg)></div>",
                "<p style=\"background-image: URL('//evil.example/p.png')\">",
                "*{background:url(//evil.example/p.png)}",
                "@font-face {font-family: y; src: url(\"https://evil.example/f.svg#x\")}",
                "mask:url(#a), url(//evil.example/m.svg)",
                "<video poster=//evil.example/p.png>",
                "\"><a href=//evil.example/>log in again</a>",
                "<a href=\"http://server.example/\">click</a> here",
            ],
        );
    }

    #[test]
    fn text_and_inert_markup_are_not_html_injection() {
        assert_each(
            is_html_injection,
            false,
            &[
                "<b>bold</b> and <i>it</i>",
                "John <john@example.com>",
                "a < b and c > d",
                "<a href=\"#top\">back to top</a>",
                "<img src=x>",
                "<ul><li><a href=\"/docs#install\">Install</a></li></ul>",
                "<a href=\"mailto:bob@example.com\">mail</a>",
                "<a href=\"tel:+15551234567\">call</a>",
                "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"dot\">",
                "<div style=\"background:url(/img/hero.jpg)\">banner</div>",
                "@font-face {font-family: y; src: url(\"font.svg#x\")}",
                "<a href=\"\">empty</a>",
                "</a>",
                "<div class=\"note\">hi</div>",
                "see the url (below)",
                "https://example.com/path?q=url(1)",
                "curl(1) man page",
                "url('x')",
                "Homepage: my url (ask me)",
                "price <3 usd",
                "<p>By clicking below, you agree to the <a href=\"https://example.com/terms\">Terms</a> and <a href=\"https://example.com/privacy\">Privacy Policy</a></p>",
                "<div><div class=\"tile\"><picture><source srcset=\"https://cdn.example/p.jpg\">",
                "Read <a href=\"https://example.com/\">this</a>",
                "{ id, url(transform:{maxWidth:64}) }",
                "image{altText,url(transform:{maxWidth:64})}",
                "query Q($c:Currency) { image { src: url(transform:{maxWidth:64}) } }",
            ],
        );
    }
}
