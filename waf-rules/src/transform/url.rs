//! Percent-decoding, repeated until stable, with `%uXXXX` and overlong UTF-8.

use super::{hex_val, push_char};

/// Nested encodings decoded at most this many times.
const MAX_ROUNDS: usize = 3;

pub(crate) fn decode_repeated(v: &[u8]) -> Option<Vec<u8>> {
    let mut cur: Option<Vec<u8>> = None;
    // The classes of the current value's bytes (`CLASS`), known from the
    // round that made it: a round is not run on a value without a '%' or
    // an overlong lead byte (it would change nothing: `decode_once`'s own
    // first test), and the value is not read again to learn that.
    let mut seen = classes(v);
    for _ in 0..MAX_ROUNDS {
        if seen & (PERCENT | LEAD) == 0 {
            break;
        }
        match decode_round(cur.as_deref().unwrap_or(v)) {
            Some((next, next_seen)) => {
                cur = Some(next);
                seen = next_seen;
            }
            None => break,
        }
    }
    // Full-width forms all start with 0xEF.
    if seen & FULLWIDTH != 0 {
        if let Some(folded) = fold_fullwidth(cur.as_deref().unwrap_or(v)) {
            cur = Some(folded);
        }
    }
    cur
}

/// Byte classes for `classes`: '%', an overlong UTF-8 lead byte
/// (`has_overlong`), the lead byte of a full-width form (`fold_fullwidth`).
const PERCENT: u8 = 1;
const LEAD: u8 = 2;
const FULLWIDTH: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'%' as usize] = PERCENT;
    let leads = [0xc0, 0xc1, 0xe0, 0xf0, 0xf8, 0xfc];
    let mut i = 0;
    while i < leads.len() {
        t[leads[i]] = LEAD;
        i += 1;
    }
    t[0xef] = FULLWIDTH;
    t
};

/// The classes (`CLASS`) of the bytes of `v`, in one pass.
fn classes(v: &[u8]) -> u8 {
    v.iter().fold(0, |acc, &b| acc | CLASS[usize::from(b)])
}

/// Full-width ASCII (U+FF01..FF5E, e.g. `＜script＞`) folded to ASCII.
fn fold_fullwidth(v: &[u8]) -> Option<Vec<u8>> {
    let is_fw = |w: &[u8]| {
        w[0] == 0xef && ((w[1] == 0xbc && w[2] >= 0x81) || (w[1] == 0xbd && w[2] <= 0x9e))
    };
    if !v.windows(3).any(is_fw) {
        return None;
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if i + 2 < v.len() && is_fw(&v[i..i + 3]) {
            let cp = (u32::from(v[i + 1] & 0x3f) << 6 | u32::from(v[i + 2] & 0x3f)) + 0xf000;
            out.push((cp - 0xfee0) as u8);
            i += 3;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

/// One round of `%XX` / `%uXXXX` decoding; `None` if nothing was decoded.
/// `+` is left alone: the parser already turned form `+` into spaces.
pub(crate) fn decode_once(v: &[u8]) -> Option<Vec<u8>> {
    if classes(v) & (PERCENT | LEAD) == 0 {
        return None;
    }
    decode_round(v).map(|(out, _)| out)
}

/// `decode_once` on a value holding a '%' or an overlong lead byte, with
/// the classes (`CLASS`) of the bytes of what it returns.
fn decode_round(v: &[u8]) -> Option<(Vec<u8>, u8)> {
    let mut out = Vec::with_capacity(v.len());
    let mut changed = false;
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b == b'%' {
            if let Some((c, used)) = iis_overlong(&v[i + 1..]) {
                out.push(c);
                i += 1 + used;
                changed = true;
                continue;
            }
            if let Some((cp, used)) = unicode_escape(&v[i + 1..]) {
                push_char(&mut out, cp);
                i += 1 + used;
                changed = true;
                continue;
            }
            if let (Some(h), Some(l)) = (
                v.get(i + 1).copied().and_then(hex_val),
                v.get(i + 2).copied().and_then(hex_val),
            ) {
                out.push(h << 4 | l);
                i += 3;
                changed = true;
                continue;
            }
            // An invalid escape between letters or markup (`un%ion`,
            // `<%script>`): IIS / classic ASP drop the '%', so a keyword
            // split by one is read whole behind us. After a digit it is
            // a percentage (`50%off`) and kept.
            if invalid_separator(v.get(i.wrapping_sub(1)).copied(), v.get(i + 1).copied()) {
                i += 1;
                changed = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    let seen = classes(&out);
    // Without a lead byte there is no overlong form to fold.
    if seen & LEAD != 0 {
        if let Some(folded) = fold_overlong(&out) {
            let seen = classes(&folded);
            return Some((folded, seen));
        }
    }
    changed.then_some((out, seen))
}

/// Whether a '%' that starts no escape, between `before` and `after`, is
/// an IIS separator to drop: inside a word (`un%ion`) or right after the
/// `<` or `/` of a tag (`<%script>`), before a letter. After a digit or a
/// space it is a percentage or prose (`50%off`, `100% sure`) and kept.
fn invalid_separator(before: Option<u8>, after: Option<u8>) -> bool {
    after.is_some_and(|a| a.is_ascii_alphabetic())
        && before.is_some_and(|b| b.is_ascii_alphabetic() || b == b'<' || b == b'/')
}

/// IIS's loose hex: a letter past `f` still counts, by its distance from
/// `a` plus ten (`v` = 31), and only the low bits survive.
fn loose_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'z' => Some(b - b'a' + 10),
        b'A'..=b'Z' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `c0%9v`, `c1%1c`, `bg%qf` after a '%': a two-byte overlong lead and
/// continuation written with IIS's loose hex digits (the IIS unicode
/// traversal: `..%c0%9v..` and `..%bg%qf..` are `../..`). The ASCII byte
/// and bytes consumed, for `/`, `\` and `.`.
fn iis_overlong(v: &[u8]) -> Option<(u8, usize)> {
    let digits = v.get(..5)?;
    if digits[2] != b'%' {
        return None;
    }
    let loose = |i: usize| loose_hex(digits[i]).map(u32::from);
    // IIS adds the digits (`g` = 16 carries into the high one).
    let lead = (loose(0)? * 16 + loose(1)?) & 0xff;
    let second = (loose(3)? * 16 + loose(4)?) & 0xff;
    let cont = second & 0x3f;
    // A strict, valid overlong (`%c0%af`) is `fold_overlong`'s; IIS also
    // reads an invalid second byte by its low six bits (`%c1%1c` = `\`).
    let strict = [0, 1, 3, 4].iter().all(|&i| hex_val(digits[i]).is_some());
    if (strict && (0x80..0xc0).contains(&second)) || !matches!(lead, 0xc0 | 0xc1) {
        return None;
    }
    // Only the path bytes the traversal hides: read plainly, `%c0%5c` is
    // also a `\` after a stray lead byte, which the path rules see.
    let b = ((lead & 0x1f) << 6 | cont) as u8;
    matches!(b, b'/' | b'\\' | b'.').then_some((b, 5))
}

/// `uXXXX` after a '%': the code point and bytes consumed.
fn unicode_escape(v: &[u8]) -> Option<(u32, usize)> {
    if v.len() < 5 || !(v[0] == b'u' || v[0] == b'U') {
        return None;
    }
    let mut cp = 0u32;
    for &b in &v[1..5] {
        cp = cp << 4 | u32::from(hex_val(b)?);
    }
    // Full-width ASCII (U+FF01..FF5E) is folded to ASCII, as IIS does.
    if (0xff01..=0xff5e).contains(&cp) {
        cp -= 0xfee0;
    }
    // Slash look-alikes (division slash, fraction slash, set minus).
    cp = match cp {
        0x2215 | 0x2044 => u32::from(b'/'),
        0x2216 => u32::from(b'\\'),
        other => other,
    };
    Some((cp, 5))
}

fn has_overlong(v: &[u8]) -> bool {
    v.windows(2).any(|w| {
        matches!(w[0], 0xc0 | 0xc1 | 0xe0 | 0xf0 | 0xf8 | 0xfc) && (0x80..0xc0).contains(&w[1])
    })
}

/// An overlong encoding of an ASCII byte at the start of `v`: (byte, length).
fn overlong_at(v: &[u8]) -> Option<(u8, usize)> {
    let len = match v.first()? {
        0xc0 | 0xc1 => 2,
        0xe0 => 3,
        0xf0 => 4,
        0xf8 => 5,
        0xfc => 6,
        _ => return None,
    };
    let seq = v.get(..len)?;
    if !seq[1..].iter().all(|b| (0x80..0xc0).contains(b)) {
        return None;
    }
    let mut cp: u32 = u32::from(seq[0]) & (0x7f >> len);
    for b in &seq[1..] {
        cp = cp << 6 | u32::from(b & 0x3f);
    }
    (cp < 0x80).then_some((cp as u8, len))
}

/// Overlong two-byte UTF-8 (`C0 AE` = '.') folded to the ASCII it hides.
fn fold_overlong(v: &[u8]) -> Option<Vec<u8>> {
    if !has_overlong(v) {
        return None;
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if let Some((b, len)) = overlong_at(&v[i..]) {
            out.push(b);
            i += len;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Form/query decoding for the parser: `+` is a space, `%XX` once.
pub(crate) fn decode_form_component(v: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !v.iter().any(|&b| b == b'%' || b == b'+') {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                v.get(i + 1).copied().and_then(hex_val),
                v.get(i + 2).copied().and_then(hex_val),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}
