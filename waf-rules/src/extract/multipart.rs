//! multipart/form-data: field values, file names and part headers.

use super::{Class, Fields};
use crate::policy::Limits;
use std::borrow::Cow;

/// The boundary parameter of a multipart content type.
pub(crate) fn boundary(ct: &[u8]) -> Option<Vec<u8>> {
    let lower = ct.to_ascii_lowercase();
    let pos = lower.windows(9).position(|w| w == b"boundary=")?;
    let mut b = &ct[pos + 9..];
    if let Some(end) = b.iter().position(|&c| c == b';') {
        b = &b[..end];
    }
    let b = b.trim_ascii();
    let b = b
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .unwrap_or(b);
    (!b.is_empty() && b.len() <= 200).then(|| b.to_vec())
}

pub(crate) fn parse<'a>(body: &'a [u8], boundary: &[u8], _limits: &Limits, f: &mut Fields<'a>) {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut parts = split(body, &delim).into_iter();
    let preamble = parts.next();
    if preamble.is_some_and(|p| !p.trim_ascii().is_empty()) {
        f.truncated = true;
    }
    for part in parts {
        if part.starts_with(b"--") {
            break;
        }
        let part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(p) => (&part[..p], &part[p + 4..]),
            None => match find(part, b"\n\n") {
                Some(p) => (&part[..p], &part[p + 2..]),
                None => (part, &b""[..]),
            },
        };
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let mut name: Cow<'a, str> = Cow::Borrowed("");
        let mut is_file = false;
        for line in head.split(|&b| b == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with(b"content-disposition:") {
                if let Some(n) = param(line, b"name") {
                    name = Cow::Owned(String::from_utf8_lossy(n).into_owned());
                    // A field's name is attack surface like a query's
                    // (`args_names`); a plain word is counted, not listed
                    // (`Fields::push_at`), as a query's name is.
                    if !n.is_empty() {
                        f.push(Class::ArgName, "multipart", name.clone(), Cow::Borrowed(n));
                    }
                }
                if let Some(fname) = param(line, b"filename") {
                    is_file = true;
                    f.push(
                        Class::Filename,
                        "filename",
                        name.clone(),
                        Cow::Borrowed(fname),
                    );
                }
            }
            f.push(
                Class::Header,
                "part-header",
                name.clone(),
                Cow::Borrowed(line),
            );
        }
        // File contents are data (images, archives), not parameters.
        if !is_file {
            f.push_arg("multipart", name, Cow::Borrowed(content));
        }
    }
}

/// `name="value"` (or unquoted) inside a header line.
fn param<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let lower = line.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = find(&lower[from..], key) {
        let at = from + p;
        let before_ok = at == 0 || matches!(lower[at - 1], b' ' | b';' | b'\t');
        let after = at + key.len();
        if before_ok && lower.get(after) == Some(&b'=') {
            let rest = &line[after + 1..];
            if let Some(r) = rest.strip_prefix(b"\"") {
                let end = r.iter().position(|&b| b == b'"').unwrap_or(r.len());
                return Some(&r[..end]);
            }
            let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
            return Some(rest[..end].trim_ascii());
        }
        from = after;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(body: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(p) = find(rest, delim) {
        out.push(&rest[..p]);
        rest = &rest[p + delim.len()..];
    }
    out.push(rest);
    out
}
