//! HTML character references: named (common ones), decimal and hex, with or
//! without the closing ';' as browsers accept.

use super::push_char;
use crate::word_index::WordIndex;

const NAMED: &[(&[u8], u32)] = &[
    (b"lt", '<' as u32),
    (b"gt", '>' as u32),
    (b"quot", '"' as u32),
    (b"apos", '\'' as u32),
    (b"amp", '&' as u32),
    (b"nbsp", ' ' as u32),
    (b"colon", ':' as u32),
    (b"semi", ';' as u32),
    (b"tab", '\t' as u32),
    (b"newline", '\n' as u32),
    (b"lpar", '(' as u32),
    (b"rpar", ')' as u32),
    (b"sol", '/' as u32),
    (b"bsol", '\\' as u32),
    (b"excl", '!' as u32),
    (b"num", '#' as u32),
    (b"equals", '=' as u32),
    (b"grave", '`' as u32),
    (b"period", '.' as u32),
    (b"comma", ',' as u32),
    (b"lsqb", '[' as u32),
    (b"rsqb", ']' as u32),
    (b"lcub", '{' as u32),
    (b"rcub", '}' as u32),
    (b"plus", '+' as u32),
    (b"dollar", '$' as u32),
    (b"percnt", '%' as u32),
    (b"ast", '*' as u32),
    (b"quest", '?' as u32),
    (b"commat", '@' as u32),
];

/// The longest name in `NAMED` (`newline`).
const NAME_MAX: usize = 7;

/// `NAMED` by name length and first letter: a word after '&' is compared
/// only with the entries of both (`&size=` with `semi` alone, `&currency=`
/// with none).
static NAMED_INDEX: WordIndex<{ NAME_MAX + 1 }> = WordIndex::new(NAMED);

/// The code point `NAMED` gives `name`, case ignored.
fn named(name: &[u8]) -> Option<u32> {
    NAMED_INDEX.find(NAMED, name)
}

pub(crate) fn decode(v: &[u8]) -> Option<Vec<u8>> {
    // Up to the first '&' that starts a reference the value is kept as it
    // is: found without copying, and a value without one (`a=1&b=2`)
    // allocates nothing.
    let mut from = 0;
    let (at, cp, used) = loop {
        let at = from + v[from..].iter().position(|&b| b == b'&')?;
        if let Some((cp, used)) = reference(&v[at + 1..]) {
            break (at, cp, used);
        }
        from = at + 1;
    };
    let mut out = Vec::with_capacity(v.len());
    out.extend_from_slice(&v[..at]);
    push_char(&mut out, cp);
    let mut i = at + 1 + used;
    while i < v.len() {
        if v[i] == b'&' {
            if let Some((cp, used)) = reference(&v[i + 1..]) {
                push_char(&mut out, cp);
                i += 1 + used;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    Some(out)
}

/// A reference after '&': code point and bytes consumed (including ';').
fn reference(v: &[u8]) -> Option<(u32, usize)> {
    if v.first() == Some(&b'#') {
        let (radix, start) = match v.get(1) {
            Some(b'x') | Some(b'X') => (16, 2),
            _ => (10, 1),
        };
        let mut cp: u32 = 0;
        let mut j = start;
        while j < v.len() && j - start < 8 {
            let d = match (v[j] as char).to_digit(radix) {
                Some(d) => d,
                None => break,
            };
            cp = cp.saturating_mul(radix).saturating_add(d);
            j += 1;
        }
        if j == start {
            return None;
        }
        if v.get(j) == Some(&b';') {
            j += 1;
        }
        return Some((cp.min(0x10ffff), j));
    }
    let end = v
        .iter()
        .take(10)
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(v.len().min(10));
    let cp = named(&v[..end])?;
    let used = if v.get(end) == Some(&b';') {
        end + 1
    } else {
        end
    };
    Some((cp, used))
}

#[cfg(test)]
mod tests {
    /// Every name decodes in any case (`named` finds each through its index).
    #[test]
    fn every_name_decodes_in_any_case() {
        for &(n, cp) in super::NAMED {
            let n = String::from_utf8_lossy(n);
            let mut capital = n.to_string();
            capital[..1].make_ascii_uppercase();
            for name in [n.to_string(), n.to_ascii_uppercase(), capital] {
                let mut want = String::new();
                want.push(char::from_u32(cp).unwrap_or('?'));
                want.push('x');
                let v = format!("&{name};x");
                assert_eq!(super::decode(v.as_bytes()), Some(want.into_bytes()), "{v}");
            }
        }
    }
}
