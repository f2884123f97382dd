//! Case, whitespace, comment and null-byte folding.

pub(crate) fn lowercase(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    lowercase_into(v, &mut out).then_some(out)
}

/// As `lowercase`, writing into `out` (reused across values).
pub(crate) fn lowercase_into(v: &[u8], out: &mut Vec<u8>) -> bool {
    if !v.iter().any(u8::is_ascii_uppercase) {
        return false;
    }
    out.clear();
    out.extend_from_slice(v);
    out.make_ascii_lowercase();
    true
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

pub(crate) fn compress_whitespace(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress_whitespace_into(v, &mut out).then_some(out)
}

/// As `compress_whitespace`, writing into `out` (reused across values).
pub(crate) fn compress_whitespace_into(v: &[u8], out: &mut Vec<u8>) -> bool {
    if !compressible(v) {
        return false;
    }
    out.clear();
    out.reserve(v.len());
    let mut prev_space = false;
    for &b in v {
        if is_space(b) {
            if !prev_space {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
    true
}

/// Whether `v` holds two blanks in a row or a blank other than a space:
/// without either, folding changes nothing. One pass.
pub(super) fn compressible(v: &[u8]) -> bool {
    let mut prev = false;
    for &b in v {
        let space = is_space(b);
        if space && (prev || b != b' ') {
            return true;
        }
        prev = space;
    }
    false
}

/// `/* ... */` becomes a space; MySQL `/*!50000 x */` keeps `x` (it runs).
/// An unterminated comment is dropped to the end.
pub(crate) fn sql_comments(v: &[u8]) -> Option<Vec<u8>> {
    if !v.windows(2).any(|w| w == b"/*") {
        return None;
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            let body_start = i + 2;
            let end = v[body_start..]
                .windows(2)
                .position(|w| w == b"*/")
                .map(|p| body_start + p);
            if v.get(body_start) == Some(&b'!') {
                let mut j = body_start + 1;
                while j < v.len() && v[j].is_ascii_digit() {
                    j += 1;
                }
                out.push(b' ');
                out.extend_from_slice(&v[j..end.unwrap_or(v.len())]);
            }
            out.push(b' ');
            i = end.map_or(v.len(), |e| e + 2);
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    Some(out)
}

pub(crate) fn remove_nulls(v: &[u8]) -> Option<Vec<u8>> {
    v.contains(&0)
        .then(|| v.iter().copied().filter(|&b| b != 0).collect())
}
