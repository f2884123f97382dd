//! Decodes values that are plainly base64 (and decode to text).

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Shorter values are too ambiguous to call base64.
const MIN_LEN: usize = 12;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const LENIENT_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn decode_plain(v: &[u8]) -> Option<Vec<u8>> {
    let v = v.trim_ascii();
    if v.len() < MIN_LEN {
        return None;
    }
    // A JSON Web Token (dotted) is not base64 to this step: its claims are
    // read by `detect::jose`, and the quiet skip holds `.` for a byte no
    // value this step decodes holds (`engine::quiet::BASE64_BLOCKERS`).
    if !looks_base64(v) {
        return None;
    }
    // One try: the two alphabets differ only at `+/` against `-_` (a value holding both
    // decodes with neither), and the strict engines accept a subset of the lenient ones.
    let engine = if v.iter().any(|&b| b == b'-' || b == b'_') {
        &LENIENT_URL
    } else {
        &LENIENT
    };
    let decoded = engine.decode(v).ok()?;
    is_text(&decoded).then_some(decoded)
}

fn looks_base64(v: &[u8]) -> bool {
    let body = v
        .strip_suffix(b"==")
        .or_else(|| v.strip_suffix(b"="))
        .unwrap_or(v);
    let mut upper = false;
    let mut lower = false;
    let mut digit = false;
    for &b in body {
        match b {
            b'A'..=b'Z' => upper = true,
            b'a'..=b'z' => lower = true,
            b'0'..=b'9' => digit = true,
            b'+' | b'/' | b'-' | b'_' => {}
            _ => return false,
        }
    }
    // Real base64 of text mixes cases; plain words do not.
    upper && lower && (digit || body.len() >= 16)
}

/// Mostly printable ASCII: decoded binary (images, keys) is not text to match.
fn is_text(v: &[u8]) -> bool {
    if v.is_empty() {
        return false;
    }
    let printable = v
        .iter()
        .filter(|&&b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r' || b == b'\t')
        .count();
    printable * 100 >= v.len() * 95
}

/// Whether `v` is a JSON Web Token whose decoded parts hold anything but
/// JSON structure and plain text (`{"user":"alice","exp":1700000000}`
/// holds nothing more): only such a token needs its claims read. One test
/// of the first two bytes for anything else.
#[cfg(test)]
pub(crate) fn jose_needs_reading(v: &[u8]) -> bool {
    jose_head(v) && jose_needs_reading_with(v, dots(v))
}

/// `jose_needs_reading` of a token that starts as a JOSE header does
/// (`jose_head`) and holds `dots` dots (counted by the caller).
pub(crate) fn jose_needs_reading_with(v: &[u8], dots: usize) -> bool {
    // A compact JWS has three parts, a JWE five (RFC 7515, 7516); a
    // library refuses any other count, so the application reads no claim.
    if !matches!(dots, 2 | 4) {
        return false;
    }
    // One pass through a decoding table, no buffer (plain-token tests ask
    // this of every dotted id starting `ey`): the decoded bytes are
    // counted, not kept. A part is judged at the dot that ends it, so the
    // last part — the signature (or a JWE's tag), verified as bytes and
    // never read as text — is not judged.
    let (mut acc, mut bits) = (0u32, 0u32);
    let (mut len, mut printable, mut odd) = (0usize, 0usize, false);
    let (mut parts, mut padded, mut needs) = (1usize, false, false);
    // A part that is a JSON object (read whatever its script: a claim in
    // Cyrillic does not hide the others), and whether a byte is inside
    // one of its strings.
    let (mut json, mut in_str) = (false, false);
    for &c in v {
        if c == b'.' {
            // Read as `decode_jose` keeps it (JSON, or `is_text`), and a
            // byte beyond plain JSON.
            needs |= len > 0 && odd && (json || printable * 100 >= len * 95);
            parts += 1;
            if parts > MAX_JOSE_PARTS {
                return false;
            }
            (acc, bits, len, printable, odd, padded) = (0, 0, 0, 0, false, false);
            (json, in_str) = (false, false);
            continue;
        }
        let d = SEXTET[usize::from(c)];
        if d == PAD {
            padded = true;
            continue;
        }
        if d >= 64 || padded {
            return false;
        }
        acc = acc << 6 | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let b = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            // The first part is a JSON object.
            if parts == 1 && len == 0 && b != b'{' {
                return false;
            }
            json |= len == 0 && b == b'{';
            len += 1;
            let text = (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t');
            printable += usize::from(text);
            // Inside a string only a word is plain (`-1 union select a,b`
            // and `{uname,-a}` are not); JSON's own punctuation outside.
            let plain = if b == b'"' {
                in_str = !in_str;
                true
            } else if in_str {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'-' | b':')
            } else {
                jose_plain(b)
            };
            odd |= text && !plain;
        }
    }
    needs
}

/// Whether `v` starts as a JOSE header does: base64 of `{"` or `{ `
/// (`ey`), or of `{` then a tab, a line feed or a carriage return (`ew`),
/// all of which JSON parsers accept. (A blank before the `{` — base64
/// `I`, `C` or `D` first — would need a 3-byte decode to tell; not read.)
pub(crate) fn jose_head(v: &[u8]) -> bool {
    v.starts_with(b"ey") || v.starts_with(b"ew")
}

/// The number of dots in `v` (a JOSE token's parts less one).
fn dots(v: &[u8]) -> usize {
    v.iter().filter(|&&b| b == b'.').count()
}

/// The 6-bit value of a base64 or base64url character; `PAD` for `=`,
/// 0xff for any other byte.
const SEXTET: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0u8;
    while i < 26 {
        t[(b'A' + i) as usize] = i;
        t[(b'a' + i) as usize] = 26 + i;
        i += 1;
    }
    let mut d = 0u8;
    while d < 10 {
        t[(b'0' + d) as usize] = 52 + d;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t[b'=' as usize] = PAD;
    t
};
const PAD: u8 = 64;

/// Bytes of a JSON text of plain words: what a token's claims hold when
/// there is nothing in them to read.
fn jose_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'_'
                | b','
                | b'@'
                | b'!'
                | b'?'
                | b'{'
                | b'}'
                | b'['
                | b']'
                | b'"'
                | b':'
                | b'.'
                | b'-'
        )
}

/// At most this many dot-separated parts: a compact JWE has five.
const MAX_JOSE_PARTS: usize = 5;

/// A JSON Web Token (compact JWS or JWE: `header.payload.signature`, three
/// parts, or five; each part
/// base64url without padding) whose header is a JSON object (`eyJ` /
/// `eyA`… is base64 of `{"` / `{ `): each part decoded on its own (the
/// concatenation would be misaligned), the parts that are text joined by
/// line breaks. The application behind us decodes the claims (`kid`,
/// `sub`, `role`…) and uses them in queries, paths and commands; the
/// signature (binary) is dropped. `None` for any other dotted value: one
/// test of its first two bytes.
pub(crate) fn decode_jose(v: &[u8]) -> Option<Vec<u8>> {
    if !jose_head(v) || !matches!(dots(v), 2 | 4) {
        return None;
    }
    let mut out = Vec::new();
    for (n, part) in v.split(|&b| b == b'.').enumerate() {
        if n >= MAX_JOSE_PARTS
            || !part
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
        {
            return None;
        }
        if part.is_empty() {
            continue;
        }
        // base64url as the standard says; the standard alphabet as lenient
        // libraries also accept.
        let engine = if part.iter().any(|&b| b == b'+' || b == b'/') {
            &LENIENT
        } else {
            &LENIENT_URL
        };
        let Ok(decoded) = engine.decode(part) else {
            // The header must decode; a signature of odd length need not.
            if n == 0 {
                return None;
            }
            continue;
        };
        if n == 0 && decoded.first() != Some(&b'{') {
            return None;
        }
        // Text, or a JSON object in any script (UTF-8).
        if is_text(&decoded)
            || (decoded.first() == Some(&b'{') && std::str::from_utf8(&decoded).is_ok())
        {
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(&decoded);
        }
    }
    // A header alone (no dot) is not a token.
    (v.contains(&b'.') && !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode_jose, decode_plain};

    /// The table decoder of `jose_needs_reading` agrees with the base64
    /// engine: a token needs reading exactly when a decoded text part
    /// holds a byte beyond plain JSON.
    #[test]
    fn jose_needs_reading_agrees_with_decoding() {
        use super::jose_needs_reading;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        for (claims, needs) in [
            (r#"{"user":"alice","role":"user"}"#, false),
            (r#"{"sub":"1234567890","iat":1516239022}"#, false),
            (r#"{"sub":"' or 1=1--"}"#, true),
            (r#"{"kid":"../../etc/passwd"}"#, true),
            (r#"{"n":"<b>"}"#, true),
            (r#"{"a":"b"}x"#, false),
            // Words inside a string, any script; SQL of words is not plain.
            (r#"{"name":"Иван Петров"}"#, true),
            (r#"{"n":"Иван","sub":"' or 1=1--"}"#, true),
            (r#"{"n":"ИванПетров"}"#, false),
            (r#"{"sub":"-1 union select a,b from t"}"#, true),
            (r#"{"kid":"{uname,-a}"}"#, true),
            (r#"{"sub":"auth0|x"}"#, true),
            (
                r#"{"email":"a.b-c@example.com","scope":"read:orders"}"#,
                false,
            ),
        ] {
            let p = URL_SAFE_NO_PAD.encode(claims.as_bytes());
            for sig in ["", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"] {
                let t = format!("{h}.{p}.{sig}");
                assert_eq!(jose_needs_reading(t.as_bytes()), needs, "{claims} {sig}");
            }
        }
        // Two parts (a signed cookie, not a JOSE token) are not read.
        assert!(!jose_needs_reading(
            b"eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoidXNlciJ9.ZmFrZXNpZ25hdHVyZQ"
        ));
        for v in [
            "GA1.2.3.4",
            "eyes.open",
            "ey",
            "eyJhbGciOiJub25lIn0",
            "eyJ.a.b.c.d.e",
        ] {
            assert!(!jose_needs_reading(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn jwt_parts_are_decoded_one_by_one() {
        // {"alg":"none"} . {"sub":"<script>alert(1)</script>"} . (empty)
        let t = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiI8c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+In0.";
        let d = decode_jose(t).unwrap();
        assert_eq!(
            d,
            b"{\"alg\":\"none\"}\n{\"sub\":\"<script>alert(1)</script>\"}".to_vec()
        );
        // A signed token: the binary signature is dropped.
        let t = b"eyJhbGciOiJIUzI1NiJ9.eyJraWQiOiIuLi8uLi9ldGMvcGFzc3dkIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let d = decode_jose(t).unwrap();
        assert!(d.ends_with(b"{\"kid\":\"../../etc/passwd\"}"), "{d:?}");
        // Not a token: no header object, a blank, six parts, no `ey` header.
        for v in [
            &b"dGhpcyBpcyBub3Q.YSB0b2tlbg"[..],
            b"eyJhbGciOiJub25lIn0.eyJz dWIi.x",
            b"eyJhbGciOiJub25lIn0.a.b.c.d.e",
            b"GA1.2.1234567890.1700000000",
        ] {
            assert_eq!(decode_jose(v), None, "{v:?}");
        }
        // The `base64` step leaves a token as it is (`detect::jose` reads
        // it): a `.` stops it, as the quiet skip takes for granted.
        let t = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiI8c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+In0.";
        assert_eq!(decode_plain(t), None);
    }
}
