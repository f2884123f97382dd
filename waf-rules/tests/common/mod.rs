//! Set-up shared by the rule tests: the built-in rule set compiled once
//! (compiling is the slow part of a debug build), a request inspected
//! under a policy, and the placements the tests send values in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rampart_waf::{Policy, Request, RuleSet, Verdict};

pub fn rules() -> &'static RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(|| RuleSet::builtin().unwrap())
}

/// The verdict on one HTTP/1.1 request under `policy`.
pub fn inspect_with(
    policy: &Policy,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Verdict {
    let req = Request {
        method,
        path,
        query,
        headers,
        body,
        body_truncated: false,
        version: "HTTP/1.1",
    };
    rules().inspect(&req, policy)
}

pub fn blocked(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> bool {
    inspect_with(&Policy::default(), method, path, query, headers, body).block
}

/// A browser's request: a GET with `query`, or a POST of `body` typed `ct`.
pub fn verdict(query: &str, ct: Option<&str>, body: &[u8]) -> Verdict {
    let mut headers: Vec<(&str, &[u8])> =
        vec![("Host", b"shop.example"), ("User-Agent", b"Mozilla/5.0")];
    if let Some(ct) = ct {
        headers.push(("Content-Type", ct.as_bytes()));
    }
    let method = if body.is_empty() { "GET" } else { "POST" };
    inspect_with(&Policy::default(), method, "/search", query, &headers, body)
}

pub fn query_blocked(q: &str) -> bool {
    verdict(q, None, b"").block
}

pub fn form_blocked(body: &str) -> bool {
    verdict(
        "",
        Some("application/x-www-form-urlencoded"),
        body.as_bytes(),
    )
    .block
}

pub fn json_blocked(body: &str) -> bool {
    verdict("", Some("application/json"), body.as_bytes()).block
}

/// Asserts that every query is blocked (`expect`) or passes; names every one that is not.
pub fn assert_queries(expect: bool, queries: &[&str]) {
    let wrong: Vec<&str> = queries
        .iter()
        .copied()
        .filter(|q| query_blocked(q) != expect)
        .collect();
    let what = if expect { "passed" } else { "blocked" };
    assert!(wrong.is_empty(), "{what}: {wrong:?}");
}

/// Asserts that `name: value` is blocked (`expect`) or passes for every
/// value; names every one that is not.
pub fn assert_header(name: &str, expect: bool, values: &[&str]) {
    let wrong: Vec<&str> = values
        .iter()
        .copied()
        .filter(|v| header_blocked(name, v.as_bytes()) != expect)
        .collect();
    let what = if expect { "passed" } else { "blocked" };
    assert!(wrong.is_empty(), "{name}: {what}: {wrong:?}");
}

/// A GET of `/` carrying one extra header.
pub fn header_blocked(name: &str, value: &[u8]) -> bool {
    blocked(
        "GET",
        "/",
        "",
        &[("Host", b"shop.example"), (name, value)],
        b"",
    )
}

/// A multipart/form-data body of `(name, value)` fields.
pub fn multipart_blocked(fields: &[(&str, &str)]) -> bool {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str("--XyZ--\r\n");
    let h: [(&str, &[u8]); 2] = [
        ("Host", b"x"),
        ("Content-Type", b"multipart/form-data; boundary=XyZ"),
    ];
    blocked("POST", "/post", "", &h, body.as_bytes())
}

/// Every byte but unreserved ones percent-encoded, as a browser's form does.
pub fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where a value is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `GET /search?q=<value>`, percent-encoded.
    Query,
    /// A urlencoded form body `q=<value>`.
    Form,
    /// A JSON body `{"q": value}`.
    Json,
    /// A JSON body with the value two objects deep, in an array.
    JsonNested,
    /// A multipart/form-data field.
    Multipart,
    /// A cookie `c=<value>` (percent-encoded).
    Cookie,
    /// A form field after 20 KiB of text in the same field.
    AfterFiller,
}

/// The placements a value rule reads in every request part.
pub const EVERY_PLACE: &[Place] = &[
    Place::Query,
    Place::Form,
    Place::Json,
    Place::JsonNested,
    Place::Multipart,
    Place::Cookie,
    Place::AfterFiller,
];

/// `EVERY_PLACE` without `but`.
pub fn every_place_but(but: Place) -> Vec<Place> {
    EVERY_PLACE.iter().copied().filter(|&p| p != but).collect()
}

/// Whether `v` placed at `place` is blocked.
pub fn placed_blocked(place: Place, v: &str) -> bool {
    let enc = percent_encode(v);
    match place {
        Place::Query => query_blocked(&format!("q={enc}")),
        Place::Form => form_blocked(&format!("q={enc}")),
        Place::Json => json_blocked(&serde_json::json!({ "q": v }).to_string()),
        Place::JsonNested => {
            json_blocked(&serde_json::json!({ "order": { "items": [{ "note": v }] } }).to_string())
        }
        Place::Multipart => multipart_blocked(&[("note", v)]),
        Place::Cookie => header_blocked("Cookie", format!("theme=dark; c={enc}").as_bytes()),
        Place::AfterFiller => {
            let filler = "the quick brown fox jumps over the lazy dog "
                .repeat(20 * 1024 / 44)
                .replace(' ', "+");
            form_blocked(&format!("comment={filler}{enc}"))
        }
    }
}

/// Asserts that a class's `attacks` are blocked and its benign neighbours
/// pass at every one of `places`.
pub fn assert_class(places: &[Place], attacks: &[&str], benign: &[&str]) {
    assert_placed(true, places, attacks);
    assert_placed(false, places, benign);
}

/// Asserts that every value is blocked (`expect`) or passes at every one of
/// `places`; names each value and placement that does not.
pub fn assert_placed(expect: bool, places: &[Place], values: &[&str]) {
    let wrong: Vec<String> = values
        .iter()
        .flat_map(|v| places.iter().map(move |&p| (p, *v)))
        .filter(|&(p, v)| placed_blocked(p, v) != expect)
        .map(|(p, v)| format!("{p:?}: {v}"))
        .collect();
    let what = if expect { "passed" } else { "blocked" };
    assert!(wrong.is_empty(), "{what}: {wrong:#?}");
}
