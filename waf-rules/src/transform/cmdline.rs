//! Shell de-obfuscation so `c''a"t" /e\tc/pa??wd` reads like `cat /etc/pa??wd`.

pub(crate) fn normalize(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    normalize_into(v, &mut out).then_some(out)
}

/// As `normalize`, writing into `out` (reused across values); false and
/// `out` unspecified when the value is unchanged.
pub(crate) fn normalize_into(v: &[u8], out: &mut Vec<u8>) -> bool {
    if !v.iter().any(|&b| NEEDS[usize::from(b)]) {
        return false;
    }
    out.clear();
    out.reserve(v.len());
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        // ${IFS}, $IFS, ${IFS%??}: a space in disguise.
        if b == b'$' {
            if let Some(used) = ifs_len(&v[i..]) {
                push_space(out);
                i += used;
                continue;
            }
            // $@ and $* expand to nothing in most injected contexts.
            if matches!(v.get(i + 1), Some(b'@') | Some(b'*')) {
                i += 2;
                continue;
            }
        }
        match b {
            b'\'' | b'"' | b'^' => {}
            b'\\' => {
                if v.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            // '+' is a form-encoded space that survived one decode.
            b'\t' | b'\r' | b' ' | b'+' => push_space(out),
            _ => out.push(b.to_ascii_lowercase()),
        }
        i += 1;
    }
    out[..] != v[..]
}

/// Bytes without which normalizing can change nothing: quotes, carets,
/// escapes, `$`, `` ` ``, `,`, `;`, tab, newline, CR, `+` and upper-case
/// letters.
pub(super) static NEEDS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_uppercase()
            || matches!(
                c,
                b'\''
                    | b'"'
                    | b'^'
                    | b'\\'
                    | b'$'
                    | b'`'
                    | b','
                    | b';'
                    | b'\t'
                    | b'\n'
                    | b'+'
                    | b'\r'
            );
        b += 1;
    }
    t
};

fn push_space(out: &mut Vec<u8>) {
    if out.last() != Some(&b' ') {
        out.push(b' ');
    }
}

fn ifs_len(v: &[u8]) -> Option<usize> {
    if v.len() >= 4 && v[1..4].eq_ignore_ascii_case(b"IFS") {
        return Some(4);
    }
    if v.len() >= 6 && v[1] == b'{' && v[2..5].eq_ignore_ascii_case(b"IFS") {
        let close = v.iter().take(16).position(|&b| b == b'}')?;
        return Some(close + 1);
    }
    None
}
