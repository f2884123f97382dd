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
    if v.len() < MIN_LEN || !looks_base64(v) {
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
