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
