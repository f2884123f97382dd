#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Inspection cost of the benign bench request, as wall time and as time
//! this thread actually ran on a CPU (`/proc/thread-self/schedstat`), so a
//! loaded, shared machine does not inflate the figure:
//! `cargo run --release -p rampart-waf --example profile`.
use rampart_waf::{Policy, RuleSet};
use std::time::Instant;

// The criterion bench's request, so both measure the same thing.
#[path = "../../benches/benches/fixtures/typical_request.rs"]
mod typical_request;

fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The timed loop, apart so callgrind can count it alone (without the
/// warm-up's one-time initialisation):
/// `valgrind --tool=callgrind --toggle-collect='profile::measured' …`.
#[inline(never)]
fn measured(rs: &RuleSet, req: &rampart_waf::Request<'_>, p: &Policy, n: u32) {
    for _ in 0..n {
        std::hint::black_box(rs.inspect(req, p));
    }
}

fn main() {
    let mut h = typical_request::headers();
    let mut body = typical_request::json_body();
    // PROFILE_PART=headers|query|body: only that part of the request (the
    // request line always), to see what each part costs.
    let part = std::env::var("PROFILE_PART").unwrap_or_default();
    if !part.is_empty() && part != "body" {
        body.clear();
    }
    if !part.is_empty() && part != "headers" {
        h.retain(|(name, _)| *name == "Content-Type");
    }
    // PROFILE_DROP=name,name: leave these headers out (the cost of one
    // header is the difference).
    if let Ok(drop) = std::env::var("PROFILE_DROP") {
        h.retain(|(name, _)| !drop.split(',').any(|d| d.eq_ignore_ascii_case(name)));
    }
    // PROFILE_SET='Name:value': that header's value replaced (or added),
    // to see what one value costs (e.g. `Cookie:consent=%7B…`).
    let set = std::env::var("PROFILE_SET").unwrap_or_default();
    if let Some((name, value)) = set.split_once(':') {
        h.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        let (name, value): (&'static str, &'static [u8]) = (
            String::leak(name.to_string()),
            String::leak(value.to_string()).as_bytes(),
        );
        h.push((name, value));
    }
    if let Ok(b) = std::env::var("PROFILE_BODY") {
        body = b.into_bytes();
    }
    let mut req = typical_request::request(&h, &body);
    // PROFILE_GET=1: the edge benchmark's request instead (`GET /`, Host only).
    let get_headers: [(&str, &[u8]); 1] = [("Host", b"localhost:8443")];
    if std::env::var_os("PROFILE_GET").is_some() {
        req = rampart_waf::Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &get_headers,
            body: b"",
            ..req
        };
    }
    if !part.is_empty() && part != "query" {
        req.query = "";
    }
    // RULES_DIR=dir profiles another rule set (e.g. an older one) with the same binary.
    let rs = match std::env::var("RULES_DIR") {
        Ok(d) => RuleSet::load_dir(std::path::Path::new(&d)).unwrap(),
        Err(_) => RuleSet::builtin().unwrap(),
    };
    let p = Policy::default();
    // PROFILE_RUNS=n: fewer runs (e.g. under callgrind); warm-up is min(n, 2000) more.
    let n: u32 = std::env::var("PROFILE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    for _ in 0..n.min(2000) {
        std::hint::black_box(rs.inspect(&req, &p));
    }
    let (t, c) = (Instant::now(), on_cpu_ns());
    measured(&rs, &req, &p, n);
    let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let cpu = (on_cpu_ns() - c) as f64 / 1e3 / f64::from(n);
    println!("benign request: {wall:.2} us wall, {cpu:.2} us on CPU per inspection ({n} runs)");
}
