//! Query strings, url-encoded forms and cookies.

use super::{Class, Fields};
use crate::transform::url::decode_form_component;
use std::borrow::Cow;

/// `a=1&b=2` pairs: names and values, form-decoded once. A part without '='
/// is a value with an empty name (`?/etc/passwd` is still inspected).
///
/// When a name is not name-shaped (see `odd_name`), the split itself is
/// suspect: `?' OR '1'='1' --` and `?<meta http-equiv=x content=y>` are one
/// payload cut at its own `=`, and neither half shows it. The whole
/// string, form-decoded, is then inspected once more as one value.
pub(crate) fn pairs<'a>(raw: &'a [u8], source: &'static str, f: &mut Fields<'a>) {
    let mut odd = false;
    for part in raw.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (&b""[..], part),
        };
        let name = decode_form_component(name);
        odd |= odd_name(&name);
        let name_str = cow_str(name);
        if !name_str.is_empty() {
            f.push(
                Class::ArgName,
                source,
                name_str.clone(),
                name_bytes(&name_str),
            );
        }
        f.push_arg(source, name_str, decode_form_component(value));
    }
    if odd {
        f.push(
            super::Class::Arg,
            source,
            Cow::Borrowed(WHOLE),
            decode_form_component(raw),
        );
    }
}

/// The name of the field holding a whole query string or form body.
pub(crate) const WHOLE: &str = "(whole)";

/// A decoded name no application would choose: one holding a quote,
/// markup, a parenthesis, a statement or shell separator, a backslash or a
/// control byte. Names real forms use (`filter[price][gte]`, `utm_source`,
/// `$top`, `fields.name`, `first name`, `a:b`, `x-y`, `q[]`) are not odd.
fn odd_name(n: &[u8]) -> bool {
    n.iter().any(|&b| {
        matches!(
            b,
            b'\'' | b'"' | b'<' | b'>' | b'(' | b')' | b';' | b'`' | b'|' | b'\\' | b'{' | b'}'
        ) || b < 0x20
            || b == 0x7f
    })
}

/// `Cookie: a=1; b=2`: names and raw values.
pub(crate) fn cookies<'a>(raw: &'a [u8], f: &mut Fields<'a>) {
    for part in raw.split(|&b| b == b';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (&b""[..], part),
        };
        let name = cow_str(Cow::Borrowed(name));
        if !name.is_empty() {
            f.push(Class::CookieName, "cookie", name.clone(), name_bytes(&name));
        }
        f.push_cookie(name, value);
    }
}

/// A name as an inspected value: borrowed from the request when it is.
fn name_bytes<'a>(name: &Cow<'a, str>) -> Cow<'a, [u8]> {
    match name {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.as_bytes().to_vec()),
    }
}

/// Bytes as text for a label; invalid UTF-8 is replaced (labels only).
pub(crate) fn cow_str(b: Cow<'_, [u8]>) -> Cow<'_, str> {
    match b {
        // `from_utf8` checks ASCII a word at a time; lossy only when needed.
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        },
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}
