//! Chooses a body parser by content type (sniffing when it is missing).

use super::{json, multipart, query, xml, Class, Fields};
use crate::policy::Limits;

pub(crate) fn parse<'a>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
    limits: &Limits,
    f: &mut Fields<'a>,
) {
    let ct = content_type
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    let ct = ct.as_slice();
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    if contains(ct, b"json") || (ct.is_empty() && matches!(first, Some(b'{') | Some(b'['))) {
        if json::parse(body, limits, f) {
            return;
        }
    } else if contains(ct, b"x-www-form-urlencoded")
        || (ct.is_empty() && looks_like_form(body))
        || (ct.starts_with(b"text/plain") && looks_like_pairs(body))
    {
        query::pairs(body, "form", f);
        return;
    } else if contains(ct, b"multipart/") {
        if let Some(boundary) = multipart::boundary(ct_original(content_type)) {
            multipart::parse(body, &boundary, limits, f);
            return;
        }
    } else if contains(ct, b"xml") || (ct.is_empty() && first == Some(b'<')) {
        f.push_unnamed(Class::XmlRaw, "xml", body);
        xml::parse(body, limits, f);
        return;
    }
    f.push_unnamed(Class::RawBody, "body", body);
}

/// A body without a content type (or text/plain) that reads like a form.
fn looks_like_form(body: &[u8]) -> bool {
    // One line of printable ASCII: what a form (or a hand-made request)
    // sends, perhaps ended by a line break. Parsing it as a form decodes `+`
    // and `%XX` like the app will.
    let body = trim_line_end(body);
    !body.is_empty() && body.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// The body without the line break a hand-made request often ends with.
fn trim_line_end(body: &[u8]) -> &[u8] {
    let end = body
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |p| p + 1);
    &body[..end]
}

/// `name=value&...` with a plain first name: text that is really a form.
fn looks_like_pairs(body: &[u8]) -> bool {
    let body = trim_line_end(body);
    if body.contains(&b'\n') {
        return false;
    }
    let first = body.split(|&b| b == b'&').next().unwrap_or(b"");
    first.iter().position(|&b| b == b'=').is_some_and(|p| {
        p > 0
            && first[..p].iter().all(|&b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'%')
            })
    })
}

fn ct_original(ct: Option<&[u8]>) -> &[u8] {
    ct.unwrap_or(b"")
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
