//! Header-syntax checks a regex cannot say well: "anything but the valid forms".

use super::Triggers;
use crate::extract::{charset_field, Class, Field};
use std::ops::Range;

/// The line break `nameless_line_break` looks for.
pub(crate) const LINE_BREAK_TRIGGERS: Triggers = Triggers::new(b"\r\n");

/// `accept_charset` reads only after a `charset=`.
pub(crate) const ACCEPT_CHARSET_TRIGGERS: Triggers = Triggers::new(b"=");

/// A CR or LF in a query or form part that has no `=` (`?%0d%0aSet-Cookie:x`,
/// `&%0d%0restofdata`): the parser reads the part as a value with an empty
/// name, but an application (and a header it echoes the raw query into)
/// reads it as a name, and a name never holds a line break. Named fields
/// (textareas) and JSON, XML and multipart values are not judged here; the
/// line break a hand-made form body ends with is not one.
pub(crate) fn nameless_line_break(field: &Field<'_>, v: &[u8]) -> Option<Range<usize>> {
    if field.class != Class::Arg
        || !field.name.is_empty()
        || field.json_path.is_some()
        || !matches!(field.source, "args" | "form")
    {
        return None;
    }
    let v = if field.source == "form" {
        let end = v
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(0, |p| p + 1);
        &v[..end]
    } else {
        v
    };
    let at = v.iter().position(|&b| b == b'\r' || b == b'\n')?;
    Some(at..v.len())
}

/// A form's `_charset_` field (HTML fills it with the encoding the form is
/// submitted in) naming an encoding the servers behind us would re-decode
/// the body with, unseen by the WAF: UTF-7, UTF-16/32 and UCS variants,
/// EBCDIC code pages (IBM037, CP1026...), or a name no browser writes
/// (`utf-`). Browsers submit forms in UTF-8 or an ASCII-compatible legacy
/// encoding (WHATWG Encoding: UTF-16 pages submit UTF-8), which pass.
pub(crate) fn form_charset(field: &Field<'_>, v: &[u8]) -> Option<Range<usize>> {
    if !charset_field(field) {
        return None;
    }
    let name = trim_quotes(v.trim_ascii());
    let ok = name.len() <= 32
        && std::str::from_utf8(name).is_ok_and(|n| browser_form_charset(&n.to_ascii_lowercase()));
    (!ok).then_some(0..v.len())
}

/// An encoding a browser submits a form in: the single-byte sets of
/// `safe_charset` and the ASCII-compatible multibyte legacy encodings.
fn browser_form_charset(cs: &str) -> bool {
    const LEGACY: &[&str] = &[
        "unicode-1-1-utf-8",
        "ibm866",
        "koi8-r",
        "koi8-u",
        "koi8r",
        "macintosh",
        "x-mac-cyrillic",
        "windows-874",
        "tis-620",
        "gbk",
        "gb2312",
        "gb18030",
        "x-gbk",
        "big5",
        "big5-hkscs",
        "euc-jp",
        "shift_jis",
        "shift-jis",
        "sjis",
        "windows-31j",
        "ms932",
        "euc-kr",
        "ks_c_5601-1987",
    ];
    safe_charset(cs) || LEGACY.contains(&cs)
}

/// A request `Content-Type` that is malformed or chosen to confuse the body
/// parser: no `type/subtype`, a parameter without `=`, a boundary on a type
/// that is not multipart, an unknown multipart subtype, or a charset other
/// than UTF-8 / ASCII / the single-byte Latin sets. Multibyte legacy charsets
/// (Shift_JIS, GBK, Big5...) can hide a quote or backslash inside a
/// multibyte character (the classic escaping bypass), and UTF-7/16/32 or
/// EBCDIC bodies read differently to the WAF and the application. Browsers
/// send only UTF-8 (or no charset) on requests.
pub(crate) fn content_type(v: &[u8]) -> Option<Range<usize>> {
    // Bytes, compared without case: this runs on every request with a body.
    let whole = Some(0..v.len());
    let mut parts = v.split(|&b| b == b';');
    let media = parts.next().unwrap_or(b"").trim_ascii();
    let Some(slash) = media.iter().position(|&b| b == b'/') else {
        return whole;
    };
    let (ty, sub) = (&media[..slash], &media[slash + 1..]);
    let token = |t: &[u8]| {
        !t.is_empty()
            && t.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(ty) || !token(sub) {
        return whole;
    }
    let multipart = ty.eq_ignore_ascii_case(b"multipart");
    if multipart
        && !MULTIPART_SUBTYPES
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(sub))
    {
        return whole;
    }
    for p in parts {
        let p = p.trim_ascii();
        if p.is_empty() {
            continue;
        }
        let Some(eq) = p.iter().position(|&b| b == b'=') else {
            return whole;
        };
        let name = p[..eq].trim_ascii();
        let value = trim_quotes(p[eq + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"boundary") && !multipart
            || name.eq_ignore_ascii_case(b"charset") && !safe_charset_bytes(value)
        {
            return whole;
        }
    }
    None
}

fn trim_quotes(v: &[u8]) -> &[u8] {
    let v = v
        .strip_prefix(b"\"")
        .or_else(|| v.strip_prefix(b"'"))
        .unwrap_or(v);
    v.strip_suffix(b"\"")
        .or_else(|| v.strip_suffix(b"'"))
        .unwrap_or(v)
}

/// `safe_charset` for raw bytes, lowered on the stack (charset names are short).
fn safe_charset_bytes(v: &[u8]) -> bool {
    let mut buf = [0u8; 24];
    let Some(dst) = buf.get_mut(..v.len()) else {
        return false;
    };
    dst.copy_from_slice(v);
    dst.make_ascii_lowercase();
    std::str::from_utf8(dst).is_ok_and(safe_charset)
}

/// A `Content-Range` request header that is not `bytes first-last/length`
/// (or `bytes */length`): resumable uploads send exactly that.
pub(crate) fn content_range(v: &[u8]) -> Option<Range<usize>> {
    let s = String::from_utf8_lossy(v);
    let ok = (|| {
        let rest = s.trim().strip_prefix("bytes")?.trim_start();
        let (range, len) = rest.split_once('/')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let range_ok = range == "*"
            || range
                .split_once('-')
                .is_some_and(|(a, b)| digits(a) && digits(b));
        (range_ok && (len == "*" || digits(len))).then_some(())
    })()
    .is_some();
    (!ok).then_some(0..v.len())
}

/// An `Accept` asking for a response charset the WAF cannot read on the way
/// back (UTF-7/16/32, EBCDIC code pages): browsers send no charset there.
pub(crate) fn accept_charset(v: &[u8]) -> Option<Range<usize>> {
    let mut from = 0;
    while let Some(p) = v[from..]
        .windows(8)
        .position(|w| w.eq_ignore_ascii_case(b"charset="))
    {
        let at = from + p + 8;
        let rest = String::from_utf8_lossy(&v[at..]).to_ascii_lowercase();
        let cs = rest
            .split([',', ';'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if !safe_charset(cs) {
            return Some(from + p..v.len());
        }
        from = at;
    }
    None
}

/// An `Accept-Encoding` naming a coding no client implements: browsers send
/// gzip, deflate, br, zstd (and `identity`, `*`); a made-up coding or a
/// malformed list (HTTP.sys CVE-2022-21907 sends `&` and `*` runs) is a probe.
pub(crate) fn accept_encoding(v: &[u8]) -> Option<Range<usize>> {
    const KNOWN: &[&[u8]] = &[
        b"",
        b"gzip",
        b"x-gzip",
        b"deflate",
        // Legacy aliases older clients and many crawlers still send.
        b"x-deflate",
        b"x-bzip2",
        b"br",
        b"zstd",
        b"compress",
        b"x-compress",
        b"identity",
        b"*",
        b"dcb",
        b"dcz",
        b"sdch",
        b"bzip2",
        b"lzma",
        b"xz",
        b"exi",
        b"pack200-gzip",
        b"aes128gcm",
        b"chunked",
        b"trailers",
    ];
    let unknown = |c: &[u8]| {
        let c = c.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
        !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(c))
    };
    (v.contains(&b'&') || v.split(|&b| b == b',').any(unknown)).then_some(0..v.len())
}

const MULTIPART_SUBTYPES: &[&str] = &[
    "form-data",
    "mixed",
    "alternative",
    "related",
    "byteranges",
    "x-mixed-replace",
    "signed",
    "encrypted",
    "report",
    "digest",
    "parallel",
];

fn safe_charset(cs: &str) -> bool {
    let cs = cs.trim();
    if matches!(cs, "utf-8" | "utf8" | "us-ascii" | "ascii" | "latin1") {
        return true;
    }
    let num = |rest: Option<&str>, lo: u32, hi: u32| {
        rest.and_then(|r| r.parse::<u32>().ok())
            .is_some_and(|n| (lo..=hi).contains(&n))
    };
    num(cs.strip_prefix("iso-8859-"), 1, 16)
        || num(cs.strip_prefix("iso8859-"), 1, 16)
        || num(cs.strip_prefix("windows-"), 1250, 1258)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::assert_each;

    #[test]
    fn content_types_browsers_send_pass() {
        assert_each(
            |v| content_type(v).is_some(),
            false,
            &[
                "application/json",
                "text/plain;charset=UTF-8",
                "application/json; charset=utf8",
                "application/x-www-form-urlencoded; charset=\"utf-8\"",
                "multipart/form-data; boundary=----WebKitFormBoundaryx",
                "application/csp-report",
                "message/ohttp-req",
                "text/html; charset=ISO-8859-1",
                "application/*+json",
                "application/x-www-form-urlencoded; charset='utf-8'",
            ],
        );
    }

    #[test]
    fn malformed_or_evasive_content_types_are_flagged() {
        assert_each(
            |v| content_type(v).is_some(),
            true,
            &[
                "my-new-content-type",
                "multipart/",
                "multipart/foo; boundary=0000",
                "application/foo; boundary=0000",
                "text/plain; charset=\"UTF-8\"; garbage",
                "application/x-www-form-urlencoded; charset=garbage",
                "application/x-www-form-urlencoded; charset=UTF-80",
                "text/plain; charset=shift_jis",
                "text/plain; charset=utf-7",
            ],
        );
    }

    #[test]
    fn content_ranges() {
        assert!(content_range(b"bytes 0-36034/36035").is_none());
        assert!(content_range(b"bytes */100").is_none());
        assert!(content_range(b"test").is_some());
        assert!(accept_encoding(b"gzip, deflate, br, zstd").is_none());
        assert!(accept_encoding(b"identity;q=1, *;q=0").is_none());
        assert!(accept_encoding(b"foobar").is_some());
        assert!(accept_charset(b"text/html;q=0.9;charset=CP1026,*/*;q=0.8").is_some());
        assert!(accept_charset(b"text/html; charset=\"utf-8\"").is_none());
        assert!(accept_charset(b"text/html,*/*;q=0.8").is_none());
        assert!(accept_charset(b"text/html;charset=\"iso-8859-1\",*/*;charset=utf-16").is_some());
    }
}
