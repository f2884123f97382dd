//! JavaScript and CSS escape decoding.

use super::{hex_val, push_char};

/// Decodes a value's backslash escapes (None without a backslash):
/// `escape` reads what follows a backslash (never empty), writes what it
/// stands for and returns how many bytes of it the escape used. A
/// backslash that ends the value is kept.
fn unescape(v: &[u8], escape: impl Fn(&[u8], &mut Vec<u8>) -> usize) -> Option<Vec<u8>> {
    if !v.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' || i + 1 >= v.len() {
            out.push(v[i]);
            i += 1;
            continue;
        }
        i += 1 + escape(&v[i + 1..], &mut out);
    }
    Some(out)
}

/// `\xHH`, `\uHHHH`, `\u{H..}`, octal `\ooo` and single-char escapes.
pub(crate) fn js_decode(v: &[u8]) -> Option<Vec<u8>> {
    unescape(v, |rest, out| {
        let (cp, used) = match rest[0] {
            b'x' => match hex_n(&rest[1..], 2) {
                Some(cp) => (cp, 3),
                None => (u32::from(b'x'), 1),
            },
            b'u' if rest.get(1) == Some(&b'{') => {
                let close = rest.iter().take(10).position(|&b| b == b'}');
                match close.and_then(|c| hex_n(&rest[2..c], c - 2).map(|cp| (cp, c + 1))) {
                    Some(x) => x,
                    None => (u32::from(b'u'), 1),
                }
            }
            b'u' => match hex_n(&rest[1..], 4) {
                Some(cp) => (cp, 5),
                None => (u32::from(b'u'), 1),
            },
            b'0'..=b'7' => {
                let n = rest
                    .iter()
                    .take(3)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count();
                let cp = rest[..n]
                    .iter()
                    .fold(0u32, |a, &b| a * 8 + u32::from(b - b'0'));
                (cp, n)
            }
            b'n' => (10, 1),
            b't' => (9, 1),
            b'r' => (13, 1),
            b'f' => (12, 1),
            b'v' => (11, 1),
            b'b' => (8, 1),
            other => (u32::from(other), 1),
        };
        push_char(out, cp);
        used
    })
}

/// CSS: `\` followed by 1-6 hex digits and an optional space, or any char.
pub(crate) fn css_decode(v: &[u8]) -> Option<Vec<u8>> {
    unescape(v, |rest, out| {
        let n = rest
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if n > 0 {
            let cp = rest[..n]
                .iter()
                .fold(0u32, |a, &b| a * 16 + u32::from(hex_val(b).unwrap_or(0)));
            push_char(out, cp);
            // One space after the hex digits ends the escape.
            n + usize::from(rest.get(n).is_some_and(|b| b.is_ascii_whitespace()))
        } else if rest[0] == b'\n' {
            // A line continuation.
            1
        } else {
            out.push(rest[0]);
            1
        }
    })
}

fn hex_n(v: &[u8], n: usize) -> Option<u32> {
    if n == 0 || v.len() < n || n > 6 {
        return None;
    }
    v[..n]
        .iter()
        .try_fold(0u32, |a, &b| Some(a * 16 + u32::from(hex_val(b)?)))
}
