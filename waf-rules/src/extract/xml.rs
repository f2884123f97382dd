//! A tolerant XML scanner: text nodes and attribute values with their
//! element path. DTDs are left to the raw-XML rules.

use super::{Class, Fields};
use crate::policy::Limits;
use std::borrow::Cow;

pub(crate) fn parse<'a>(body: &'a [u8], limits: &Limits, f: &mut Fields<'a>) {
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'<' {
            let end = body[i..]
                .iter()
                .position(|&b| b == b'<')
                .map_or(body.len(), |p| i + p);
            let text = &body[i..end];
            if !text.trim_ascii().is_empty() {
                f.push(Class::Arg, "xml", Cow::Owned(path(&stack)), unescape(text));
            }
            i = end;
            continue;
        }
        let rest = &body[i..];
        if rest.starts_with(b"<![CDATA[") {
            let end = find(rest, b"]]>").unwrap_or(rest.len());
            f.push(
                Class::Arg,
                "xml",
                Cow::Owned(path(&stack)),
                Cow::Borrowed(&rest[9.min(end)..end]),
            );
            i += (end + 3).min(rest.len());
            continue;
        }
        if rest.starts_with(b"<!--") {
            i += find(rest, b"-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        let end = tag_end(rest);
        let tag = &rest[1..end.saturating_sub(1).max(1)];
        i += end;
        if tag.starts_with(b"/") {
            stack.pop();
            continue;
        }
        if tag.starts_with(b"?") || tag.starts_with(b"!") {
            continue;
        }
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        attributes(&tag[name_end..], &stack, name, f);
        if !tag.ends_with(b"/") {
            if stack.len() >= limits.max_depth {
                f.truncated = true;
                return;
            }
            stack.push(name);
        }
    }
}

/// Index just past the `>` that closes the tag at the start of `s`,
/// skipping quoted attribute values.
fn tag_end(s: &[u8]) -> usize {
    let mut quote = None;
    for (i, &b) in s.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"') | (None, b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn attributes<'a>(mut s: &'a [u8], stack: &[&[u8]], elem: &[u8], f: &mut Fields<'a>) {
    while let Some(eq) = s.iter().position(|&b| b == b'=') {
        let name = s[..eq].trim_ascii();
        let rest = s[eq + 1..].trim_ascii_start();
        let (val, next) = match rest.first() {
            Some(&q) if q == b'"' || q == b'\'' => {
                let end = rest[1..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(rest.len(), |p| p + 1);
                (&rest[1..end], &rest[(end + 1).min(rest.len())..])
            }
            _ => {
                let end = rest
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let label = format!(
            "{}/{}@{}",
            path(stack),
            String::from_utf8_lossy(elem),
            String::from_utf8_lossy(name)
        );
        f.push(Class::Arg, "xml", Cow::Owned(label), unescape(val));
        s = next;
    }
}

/// Text and attribute values as the application's XML parser sees them:
/// character and entity references resolved (`&#x7B;` is `{`), so rules
/// need not chase every spelling.
fn unescape(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.contains(&b'&') {
        return Cow::Borrowed(v);
    }
    match crate::transform::entities::decode(v) {
        Some(d) => Cow::Owned(d),
        None => Cow::Borrowed(v),
    }
}

fn path(stack: &[&[u8]]) -> String {
    let mut p = String::new();
    for s in stack {
        p.push('/');
        p.push_str(&String::from_utf8_lossy(s));
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
