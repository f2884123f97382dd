//! Leave one corpus out: which attack items share no normalised payload with the other
//! attack corpora of the run.
//!
//! The rules are written against some corpora; detection measured on the items of another
//! corpus that none of those contain says how the rules generalise. For each attack corpus C
//! of a run, the reference is every *other* attack corpus of the same run (for
//! PayloadsAllTheThings: HttpParams + CRS + whatever else was passed), and an item of C is
//! held out when none of its payloads, normalised, is a payload of the reference.
//!
//! A payload is what the item puts in the request: a value corpus item's value; for a request
//! (a CRS test), the path, the raw query and body as a whole, every query, form and cookie
//! value (and name), JSON string leaves, and the values of headers other than the ordinary
//! ones every test sends. Normalised = percent-decoded (`+` as a space) until stable, at most
//! three rounds, ASCII-lowercased, runs of whitespace as one space, trimmed: an encoded or
//! re-cased copy of a known payload is not new. Bare words (letters, digits, `.`, `_`, `-`,
//! spaces) and fragments with fewer than three letters or digits are not payloads: sharing
//! `1` or `admin` with another corpus shares no attack.

use super::corpus::{hash, percent_decode};
use super::owned::OwnedRequest;
use std::collections::HashMap;

/// Percent-decoding (and `+`) until stable (at most 3 rounds), lowercase, whitespace folded.
pub fn normalise(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..3 {
        let next = percent_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    let mut out = String::with_capacity(cur.len());
    for word in cur.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.to_ascii_lowercase()
}

/// A normalised string that could carry an attack: not a bare word, not a short fragment.
fn is_payload(n: &str) -> bool {
    let alnum = n.bytes().filter(u8::is_ascii_alphanumeric).count();
    if alnum < 3 && n.len() <= 8 {
        return false;
    }
    !n.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b' '))
}

/// The hashed normalised payloads of one item, without repeats.
pub fn keys(value: Option<&str>, request: &OwnedRequest) -> Vec<u64> {
    let mut raw: Vec<String> = Vec::new();
    match value {
        Some(v) => raw.push(v.to_string()),
        None => request_parts(request, &mut raw),
    }
    let mut keys: Vec<u64> = raw
        .iter()
        .map(|p| normalise(p))
        .filter(|n| is_payload(n))
        .map(|n| hash(n.as_bytes()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Headers every test client sends with ordinary values: not where a payload is put
/// (CRS tests also all send the same `User-Agent`).
pub const ORDINARY_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "content-type",
    "content-length",
    "connection",
    "cache-control",
    "keep-alive",
    "proxy-connection",
];

fn request_parts(r: &OwnedRequest, out: &mut Vec<String>) {
    let pairs = |s: &str, sep: char, out: &mut Vec<String>| {
        for p in s.split(sep) {
            match p.split_once('=') {
                Some((n, v)) => {
                    out.push(n.to_string());
                    out.push(v.to_string());
                }
                None => out.push(p.to_string()),
            }
        }
    };
    out.push(r.path.clone());
    out.push(r.path.trim_start_matches('/').to_string());
    if !r.query.is_empty() {
        out.push(r.query.clone());
        pairs(&r.query, '&', out);
    }
    if !r.body.is_empty() {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let t = body.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
                json_strings(&v, out);
            }
        } else {
            pairs(&body, '&', out);
        }
        out.push(body);
    }
    for (name, value) in &r.headers {
        let name = name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(value);
        if name == "cookie" {
            pairs(&value, ';', out);
        } else if !ORDINARY_HEADERS.contains(&name.as_str()) {
            out.push(value.into_owned());
        }
    }
}

fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            json_strings(x, out)
        }),
        _ => {}
    }
}

/// Which units (attack corpora, or sources with `--leave-out source`) hold each payload key.
#[derive(Default)]
pub struct Owners {
    units: HashMap<String, usize>,
    /// Key -> the first unit seen holding it, and whether a second unit holds it too.
    by_key: HashMap<u64, (usize, bool)>,
}

impl Owners {
    /// The unit's index.
    pub fn corpus(&mut self, name: &str) -> usize {
        let n = self.units.len();
        *self.units.entry(name.to_string()).or_insert(n)
    }

    pub fn add(&mut self, unit: usize, keys: &[u64]) {
        for k in keys {
            let e = self.by_key.entry(*k).or_insert((unit, false));
            if e.0 != unit {
                e.1 = true;
            }
        }
    }

    /// True when no key of the item occurs in a unit other than its own.
    pub fn held_out(&self, unit: usize, keys: &[u64]) -> bool {
        keys.iter().all(|k| {
            self.by_key
                .get(k)
                .is_none_or(|&(first, shared)| first == unit && !shared)
        })
    }
}

/// Attack types named differently by different corpora, folded for the per-family table.
pub fn family(attack_type: &str) -> &str {
    match attack_type {
        "rce" => "cmdi",
        "nosql-injection" => "nosql",
        "ldap-injection" => "ldap",
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_case_and_spacing_do_not_make_a_payload_new() {
        assert_eq!(normalise("%2527%20OR%201=1--"), "' or 1=1--");
        assert_eq!(normalise("'  OR\t1=1--"), "' or 1=1--");
        assert_eq!(normalise("a+b"), "a b");
        assert_eq!(normalise("100%"), "100%");
        assert_eq!(normalise("%zz%4"), "%zz%4");
    }

    #[test]
    fn bare_words_and_fragments_are_not_payloads() {
        for s in ["1", "admin", "java.lang.runtime", "';", "%21"] {
            assert!(!is_payload(&normalise(s)), "{s}");
        }
        for s in ["' or 1=1--", "../../etc/passwd", "<script>", ";id;ls -la"] {
            assert!(is_payload(&normalise(s)), "{s}");
        }
    }

    #[test]
    fn an_item_is_held_out_only_when_no_other_corpus_has_its_payload() {
        let crs = OwnedRequest {
            method: "GET".into(),
            path: "/".into(),
            query: "var=1%27%20or%201%3D1--&x=1".into(),
            headers: vec![("Host".into(), b"localhost".to_vec())],
            ..Default::default()
        };
        let crs_keys = keys(None, &crs);
        let shared = keys(Some("1' OR 1=1--"), &OwnedRequest::default());
        let novel = keys(Some("1' or 2>1--"), &OwnedRequest::default());
        let words = keys(Some("admin"), &OwnedRequest::default());
        let mut o = Owners::default();
        let (c, p) = (o.corpus("crs"), o.corpus("patt"));
        o.add(c, &crs_keys);
        o.add(p, &shared);
        o.add(p, &novel);
        assert!(
            !o.held_out(p, &shared),
            "the CRS test carries the same payload"
        );
        assert!(o.held_out(p, &novel));
        assert!(o.held_out(p, &words), "no payload, nothing shared");
        assert!(!o.held_out(c, &crs_keys), "shared both ways");
        // Its own corpus never counts against an item.
        o.add(p, &crs_keys);
        assert!(!o.held_out(c, &crs_keys));
        assert!(o.held_out(p, &novel));
    }

    #[test]
    fn request_payloads_come_from_path_query_body_cookies_and_odd_headers() {
        let r = OwnedRequest {
            method: "POST".into(),
            path: "/../../etc/passwd".into(),
            query: String::new(),
            headers: vec![
                ("Accept".into(), b"text/html, */*;q=0.8".to_vec()),
                ("Referer".into(), b"<svg onload=alert(1)>".to_vec()),
                ("Cookie".into(), b"a=$(cat /etc/passwd); b=c".to_vec()),
            ],
            body: br#"{"q":"{{config.items()}}"}"#.to_vec(),
            ..Default::default()
        };
        let k = keys(None, &r);
        for p in [
            "../../etc/passwd",
            "<svg onload=alert(1)>",
            "$(cat /etc/passwd)",
            "{{config.items()}}",
        ] {
            assert!(k.contains(&hash(normalise(p).as_bytes())), "{p}");
        }
        assert!(!k.contains(&hash(normalise("text/html, */*;q=0.8").as_bytes())));
    }
}
