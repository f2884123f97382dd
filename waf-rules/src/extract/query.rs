//! Query strings, url-encoded forms and cookies.

use super::{plain_token, Class, Fields, CHARSET_FIELD};
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
    pairs_with(raw, source, f, true);
}

/// `pairs`; `plain` false reads every pair the general way (the tests
/// hold the two to the same fields).
fn pairs_with<'a>(raw: &'a [u8], source: &'static str, f: &mut Fields<'a>, plain: bool) {
    let mut odd = false;
    for part in raw.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (&b""[..], part),
        };
        if plain && plain_pair(name, value, f) {
            continue;
        }
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

/// A pair the general path would only count: its name and value are
/// plain tokens that form-decoding leaves as they are, so both are
/// counted as plain (`Fields::push_at`) without decoding, building a
/// name or a field. Returns false, having done nothing, for any other.
///
/// Why the fields are the same: decoding changes only `+` and `%`, and a
/// plain token holds no `%` (no token class has it) and here no `+`; so
/// the decoded name and value are the raw bytes, ASCII (valid UTF-8, the
/// name borrowed as is). `push_at` counts a name or value without
/// listing it when it is a plain token within the value limit, unless
/// it is the value of a `_charset_` field: both hold here. A plain
/// token's bytes (letters, digits, `_ - . + ,`) hold none of the bytes
/// `odd_name` looks for, so the whole string is read again exactly when
/// it was. An empty name is not pushed on either path.
fn plain_pair(name: &[u8], value: &[u8], f: &mut Fields<'_>) -> bool {
    let max = f.max_value;
    let words = f.words;
    let kept = |v: &[u8]| v.len() <= max && !v.contains(&b'+') && plain_token(v, words);
    if !kept(value) || !kept(name) || name.eq_ignore_ascii_case(CHARSET_FIELD.as_bytes()) {
        return false;
    }
    if !name.is_empty() {
        count_plain(f);
    }
    count_plain(f);
    true
}

/// Counts a plain token that is not listed, as `Fields::push_at` does.
fn count_plain(f: &mut Fields<'_>) {
    if !f.full() {
        f.skipped += 1;
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
    cookies_with(raw, f, true);
}

/// `cookies`; `plain` false reads every cookie the general way (the
/// tests hold the two to the same fields).
fn cookies_with<'a>(raw: &'a [u8], f: &mut Fields<'a>, plain: bool) {
    for part in raw.split(|&b| b == b';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (&b""[..], part),
        };
        if plain && plain_cookie(name, value, f) {
            continue;
        }
        let name = cow_str(Cow::Borrowed(name));
        if !name.is_empty() {
            f.push(Class::CookieName, "cookie", name.clone(), name_bytes(&name));
        }
        f.push_cookie(name, value);
    }
}

/// A cookie the general path would only count: its name and value are
/// plain tokens within the value limit, so both are counted as plain
/// (`Fields::push_at`) without building a name or a field. Returns
/// false, having done nothing, for any other.
///
/// Why the fields are the same: a plain token is ASCII (its name
/// borrowed as is); `push_at` counts a cookie name or value without
/// listing it when it is a plain token within the value limit (the
/// `_charset_` exception is for arguments only); and the JSON reading of
/// a cookie (`structured::cookie_json`) starts only at a `{`, `[` or `%`,
/// none of which a plain token holds. An empty name is not pushed on
/// either path.
fn plain_cookie(name: &[u8], value: &[u8], f: &mut Fields<'_>) -> bool {
    let max = f.max_value;
    let words = f.words;
    let kept = |v: &[u8]| v.len() <= max && plain_token(v, words);
    if !kept(value) || !kept(name) {
        return false;
    }
    if !name.is_empty() {
        count_plain(f);
    }
    count_plain(f);
    true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Limits;

    /// The fields and counts a reading left, comparable.
    fn listed(f: &Fields<'_>) -> String {
        format!("{:?} {} {}", f.list, f.skipped, f.truncated)
    }

    /// A reading with its plain shortcut on (true) or off.
    type Reading = for<'a> fn(&'a [u8], &mut Fields<'a>, bool);

    /// Reads 20,000 seeded strings of `parts` joined as `name=value`
    /// pairs by `sep` (doubled now and then, a blank before a pair now
    /// and then), with limits small enough to cut, with the shortcut and
    /// without: the same fields, counts and truncation. Returns how many
    /// readings took the shortcut for most of their parts.
    fn same_fields_with_and_without(parts: &[&str], sep: &str, seed: u64, read: Reading) -> usize {
        let mut x = seed;
        let mut fast = 0;
        for round in 0..20_000 {
            let mut q = String::new();
            for _ in 0..crate::test_support::xorshift(&mut x) % 6 {
                let r = crate::test_support::xorshift(&mut x);
                let pick = |k: u64| parts[((r >> k) % parts.len() as u64) as usize];
                q.push_str(if r.is_multiple_of(13) { " " } else { "" });
                q.push_str(pick(0));
                if !r.is_multiple_of(5) {
                    q.push('=');
                    q.push_str(pick(8));
                    q.push_str(if r.is_multiple_of(7) { pick(16) } else { "" });
                }
                q.push_str(sep);
                q.push_str(if r.is_multiple_of(11) { sep } else { "" });
            }
            let limits = Limits {
                max_fields: 1 + round % 9,
                max_value_bytes: 2 + round % 30,
                ..Limits::default()
            };
            let (mut a, mut b) = (Fields::new(&limits), Fields::new(&limits));
            a.sql_words = Some(crate::detect::sqli::shaping_word);
            b.sql_words = Some(crate::detect::sqli::shaping_word);
            read(q.as_bytes(), &mut a, true);
            read(q.as_bytes(), &mut b, false);
            assert_eq!(listed(&a), listed(&b), "{q}");
            fast += usize::from(a.list.len() < a.skipped);
        }
        fast
    }

    /// Plain pairs counted without decoding leave the fields, counts and
    /// truncation the general reading leaves: seeded query strings over
    /// token bytes, `%` escapes, `+`, odd name bytes and `_charset_`.
    #[test]
    fn plain_pairs_counted_at_once_leave_the_same_fields() {
        const PARTS: [&str; 16] = [
            "a",
            "id",
            "_charset_",
            "_CHARSET_",
            "q",
            "1.5",
            "x-y",
            "%41",
            "a+b",
            "+",
            "v1,2",
            "'",
            "(",
            "aGVsbG8gd29ybGQgaGVsbG8",
            "GA1.2.3",
            "..",
        ];
        let read: Reading = |q, f, plain| pairs_with(q, "args", f, plain);
        let fast = same_fields_with_and_without(&PARTS, "&", 0x0bad_cafe_0000_0011, read);
        assert!(fast > 1000, "{fast}");
    }

    /// Plain cookies counted at once leave the fields, counts and
    /// truncation the general reading leaves: seeded cookie headers over
    /// tokens, JSON documents (raw and percent-encoded, plain and not),
    /// odd bytes, blanks, empty parts and names.
    #[test]
    fn plain_cookies_counted_at_once_leave_the_same_fields() {
        const PARTS: [&str; 18] = [
            "a",
            "_ga",
            "GA1.2.3",
            "_charset_",
            "en-US",
            "3f2a9c",
            "",
            "x y",
            "%41",
            "%7B%22a%22%3A1%7D",
            "{\"a\":\"b\"}",
            "[\"or\"]",
            "{\"k\":\"<b>\"}",
            "'",
            "a=b",
            "..",
            "eyJ1c2VyIjoiYWxpY2UifQ.c2ln",
            "aGVsbG8gd29ybGQgaGVsbG8",
        ];
        let fast = same_fields_with_and_without(&PARTS, "; ", 0xc00c_1e00_0000_0013, cookies_with);
        assert!(fast > 1000, "{fast}");
    }
}
