//! Path normalization: backslashes, `//`, `./` and `../` (resolved where a
//! parent exists; leading `../` kept, they are the traversal signal).

pub(crate) fn normalize(v: &[u8]) -> Option<Vec<u8>> {
    if !suspicious(v) {
        return None;
    }
    let s: Vec<u8> = v
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    let absolute = s.first() == Some(&b'/');
    let trailing = s.last() == Some(&b'/');
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in s.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.last().is_some_and(|l| *l != b"..") {
                    segs.pop();
                } else {
                    segs.push(seg);
                }
            }
            _ => segs.push(seg),
        }
    }
    let mut out = Vec::with_capacity(s.len());
    if absolute {
        out.push(b'/');
    }
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(seg);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    (out != v).then_some(out)
}

/// Whether `v` holds a backslash, `//`, `./` or `/.`: without one the
/// path is already normal. One pass, each byte against the one before.
pub(super) fn suspicious(v: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in v {
        if b == b'\\' || matches!((prev, b), (b'/', b'/' | b'.') | (b'.', b'/')) {
            return true;
        }
        prev = b;
    }
    false
}
