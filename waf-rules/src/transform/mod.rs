//! Value normalizations applied before matching. Each returns `None` when it
//! changes nothing, so the common case allocates nothing.

pub(crate) mod base64;
mod cmdline;
pub(crate) mod entities;
mod escapes;
mod path;
mod text;
pub(crate) mod url;

#[cfg(test)]
use std::borrow::Cow;

/// One named normalization step. Chains of them are listed per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Transform {
    /// Percent-decoding repeated until stable (bounded), with `%uXXXX` and overlong UTF-8.
    UrlDecode,
    HtmlEntities,
    JsDecode,
    CssDecode,
    /// Replaces a value that is plainly base64 by its decoded text.
    Base64,
    Lowercase,
    /// Runs of whitespace become one space.
    CompressWhitespace,
    /// SQL and C comments become one space (MySQL `/*! ... */` keeps its content).
    SqlComments,
    RemoveNulls,
    NormalizePath,
    /// Shell de-obfuscation: quotes, carets, `${IFS}`, backslash-newline.
    CmdLine,
}

impl Transform {
    /// Every transform, in declaration order.
    pub(crate) const ALL: [Transform; 11] = [
        Transform::UrlDecode,
        Transform::HtmlEntities,
        Transform::JsDecode,
        Transform::CssDecode,
        Transform::Base64,
        Transform::Lowercase,
        Transform::CompressWhitespace,
        Transform::SqlComments,
        Transform::RemoveNulls,
        Transform::NormalizePath,
        Transform::CmdLine,
    ];

    /// The transform a rule file names (`name()` read backwards).
    pub(crate) fn parse(name: &str) -> Option<Transform> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Transform::UrlDecode => "url_decode",
            Transform::HtmlEntities => "html_entities",
            Transform::JsDecode => "js_decode",
            Transform::CssDecode => "css_decode",
            Transform::Base64 => "base64",
            Transform::Lowercase => "lowercase",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::SqlComments => "sql_comments",
            Transform::RemoveNulls => "remove_nulls",
            Transform::NormalizePath => "normalize_path",
            Transform::CmdLine => "cmdline",
        }
    }

    /// Whether this step can change text made only of letters, digits,
    /// spaces and `_ . , @ ! ?` (nothing to decode there). `base64` can
    /// (`PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiAg`): a value it decodes is
    /// never called plain (`decodes_as_base64`), so it is not listed here.
    pub(crate) fn changes_plain_text(self) -> bool {
        matches!(
            self,
            Transform::Lowercase | Transform::CompressWhitespace | Transform::CmdLine
        )
    }

    /// Bytes without which this step leaves a value unchanged (`None`: no
    /// short list), so a value's byte set can rule the step out unread.
    /// Each list must cover every byte the step's own precheck looks for.
    pub(crate) fn trigger_bytes(self) -> Option<&'static [u8]> {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        Some(match self {
            // '%', overlong UTF-8 lead bytes, full-width forms (0xEF ..).
            Transform::UrlDecode => b"%\xc0\xc1\xe0\xf0\xf8\xfc\xef",
            Transform::HtmlEntities => b"&",
            Transform::JsDecode | Transform::CssDecode => b"\\",
            Transform::Base64 => return None,
            Transform::Lowercase => UPPER,
            Transform::CompressWhitespace => b" \t\n\r\x0b\x0c\xa0",
            Transform::SqlComments => b"*",
            Transform::RemoveNulls => b"\0",
            Transform::NormalizePath => b"/\\",
            Transform::CmdLine => b"'\"^\\$`,;\t\n+\rABCDEFGHIJKLMNOPQRSTUVWXYZ",
        })
    }

    /// Writes the transformed value into `out`, reusing its capacity for
    /// the steps that change plain text (they run on most values); false,
    /// with `out` unspecified, if this step leaves the value unchanged.
    pub(crate) fn apply_into(self, v: &[u8], out: &mut Vec<u8>) -> bool {
        match self {
            Transform::Lowercase => text::lowercase_into(v, out),
            Transform::CompressWhitespace => text::compress_whitespace_into(v, out),
            Transform::CmdLine => cmdline::normalize_into(v, out),
            _ => match self.apply(v) {
                Some(next) => {
                    *out = next;
                    true
                }
                None => false,
            },
        }
    }

    /// The transformed value, or `None` if this step leaves it unchanged.
    pub(crate) fn apply(self, v: &[u8]) -> Option<Vec<u8>> {
        match self {
            Transform::UrlDecode => url::decode_repeated(v),
            Transform::HtmlEntities => entities::decode(v),
            Transform::JsDecode => escapes::js_decode(v),
            Transform::CssDecode => escapes::css_decode(v),
            Transform::Base64 => base64::decode_plain(v),
            Transform::Lowercase => text::lowercase(v),
            Transform::CompressWhitespace => text::compress_whitespace(v),
            Transform::SqlComments => text::sql_comments(v),
            Transform::RemoveNulls => text::remove_nulls(v),
            Transform::NormalizePath => path::normalize(v),
            Transform::CmdLine => cmdline::normalize(v),
        }
    }
}

/// Whether the `base64` step would change `v` (plainly base64 of text).
/// Shortcuts that take a value of letters and digits for one no step
/// decodes ask this first; random ids decode to binary and are refused,
/// and only mixed-case values of 12 bytes or more are decoded at all.
/// Out of line: the token and plain-value tests that ask it stay small.
#[inline(never)]
pub(crate) fn decodes_as_base64(v: &[u8]) -> bool {
    base64::decode_plain(v).is_some()
}

/// Applies a chain, borrowing the input until a step changes it.
#[cfg(test)]
pub(crate) fn apply_chain<'v>(chain: &[Transform], v: &'v [u8]) -> Cow<'v, [u8]> {
    let mut cur: Cow<'v, [u8]> = Cow::Borrowed(v);
    for t in chain {
        if let Some(next) = t.apply(&cur) {
            cur = Cow::Owned(next);
        }
    }
    cur
}

/// Runs every transform on arbitrary input (fuzzing entry point).
pub fn fuzz_all_transforms(data: &[u8]) {
    for t in Transform::ALL {
        if let Some(out) = t.apply(data) {
            // Decoders only ever shrink or keep size, except lowercase (same size).
            assert!(out.len() <= data.len() * 4 + 4, "{} grew input", t.name());
        }
    }
}

/// Value of an ASCII hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends a code point as UTF-8 (invalid ones become U+FFFD).
pub(crate) fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests;
