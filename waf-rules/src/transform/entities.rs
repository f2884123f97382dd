//! HTML character references: named (common ones), decimal and hex, with or
//! without the closing ';' as browsers accept.

use super::push_char;

const NAMED: &[(&str, u32)] = &[
    ("lt", '<' as u32),
    ("gt", '>' as u32),
    ("quot", '"' as u32),
    ("apos", '\'' as u32),
    ("amp", '&' as u32),
    ("nbsp", ' ' as u32),
    ("colon", ':' as u32),
    ("semi", ';' as u32),
    ("tab", '\t' as u32),
    ("newline", '\n' as u32),
    ("lpar", '(' as u32),
    ("rpar", ')' as u32),
    ("sol", '/' as u32),
    ("bsol", '\\' as u32),
    ("excl", '!' as u32),
    ("num", '#' as u32),
    ("equals", '=' as u32),
    ("grave", '`' as u32),
    ("period", '.' as u32),
    ("comma", ',' as u32),
    ("lsqb", '[' as u32),
    ("rsqb", ']' as u32),
    ("lcub", '{' as u32),
    ("rcub", '}' as u32),
    ("plus", '+' as u32),
    ("dollar", '$' as u32),
    ("percnt", '%' as u32),
    ("ast", '*' as u32),
    ("quest", '?' as u32),
    ("commat", '@' as u32),
];

/// The longest name in `NAMED` (`newline`).
const NAME_MAX: usize = 7;

/// The `NAMED` entries (bit `k` for entry `k`) by name length, and by
/// lower-case first letter: a word after '&' is compared only with the
/// entries in both (`&size=` with `semi` alone, `&currency=` with none).
static BY_LENGTH: [u32; NAME_MAX + 1] = {
    let mut t = [0u32; NAME_MAX + 1];
    let mut k = 0;
    while k < NAMED.len() {
        t[NAMED[k].0.len()] |= 1 << k;
        k += 1;
    }
    t
};
static BY_FIRST: [u32; 26] = {
    let mut t = [0u32; 26];
    let mut k = 0;
    while k < NAMED.len() {
        let first = NAMED[k].0.as_bytes()[0];
        assert!(first.is_ascii_lowercase() && NAMED.len() <= 32);
        t[(first - b'a') as usize] |= 1 << k;
        k += 1;
    }
    t
};

/// The code point `NAMED` gives `name` (ASCII letters), case ignored.
fn named(name: &[u8]) -> Option<u32> {
    let first = usize::from((*name.first()? | 0x20) - b'a');
    let mut candidates = BY_LENGTH.get(name.len())? & BY_FIRST[first];
    while candidates != 0 {
        let (n, cp) = NAMED[candidates.trailing_zeros() as usize];
        if n.as_bytes().eq_ignore_ascii_case(name) {
            return Some(cp);
        }
        candidates &= candidates - 1;
    }
    None
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
