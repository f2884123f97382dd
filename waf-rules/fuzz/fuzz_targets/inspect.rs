#![no_main]
//! A whole inspection with the built-in rules: the first bytes pick the
//! content type, the rest is split into query, a header and the body.
use libfuzzer_sys::fuzz_target;
use rampart_waf::{Policy, Request, RuleSet};
use std::sync::OnceLock;

fn rules() -> &'static RuleSet {
    static R: OnceLock<RuleSet> = OnceLock::new();
    R.get_or_init(|| RuleSet::builtin().expect("built-in rules compile"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ct: &[u8] = match sel % 5 {
        0 => b"application/json",
        1 => b"application/x-www-form-urlencoded",
        2 => b"multipart/form-data; boundary=B",
        3 => b"text/xml",
        _ => b"application/octet-stream",
    };
    let third = rest.len() / 3;
    let query = String::from_utf8_lossy(&rest[..third]);
    let headers: [(&str, &[u8]); 3] = [
        ("Content-Type", ct),
        ("Cookie", &rest[third..2 * third]),
        ("User-Agent", &rest[third..2 * third]),
    ];
    let req = Request {
        method: "POST",
        path: "/p",
        query: &query,
        headers: &headers,
        body: &rest[2 * third..],
        body_truncated: false,
        version: "HTTP/1.1",
    };
    let v = rules().inspect(&req, &Policy::default());
    assert!(v.matches.len() <= 64);
});
