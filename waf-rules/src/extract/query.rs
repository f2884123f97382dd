//! Query strings, url-encoded forms and cookies.

use super::{Class, Fields};
use crate::transform::url::decode_form_component;
use std::borrow::Cow;

/// `a=1&b=2` pairs: names and values, form-decoded once. A part without '='
/// is a value with an empty name (`?/etc/passwd` is still inspected).
pub(crate) fn pairs<'a>(raw: &'a [u8], source: &'static str, f: &mut Fields<'a>) {
    for part in raw.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (&b""[..], part),
        };
        let name = decode_form_component(name);
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
        f.push(Class::Cookie, "cookie", name, Cow::Borrowed(value));
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
