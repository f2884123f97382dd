//! WAF inspection cost: a typical benign request (≈1 KB of headers, 5 query
//! args, a 1 KB JSON body), an attack request, a 64 KiB body, and the time
//! to compile the built-in rule set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart_waf::{Policy, Request, RuleSet};
use typical_request::{headers, json_body};

#[path = "fixtures/typical_request.rs"]
mod typical_request;

fn bench(c: &mut Criterion) {
    let rules = RuleSet::builtin().unwrap();
    let policy = Policy::default();
    let h = headers();
    let body = json_body();
    assert!(body.len() > 900 && body.len() < 1400, "{}", body.len());

    let benign = typical_request::request(&h, &body);
    assert!(!rules.inspect(&benign, &policy).block);
    // Baseline run side by side: parsing the same 1 KB JSON body once with
    // serde_json. Report inspection as a ratio of it (the machine is shared).
    c.bench_function("waf/baseline_serde_json_body", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
    });
    c.bench_function("waf/benign_request", |b| {
        b.iter(|| rules.inspect(black_box(&benign), &policy))
    });

    let attack = Request {
        query: "step=2&currency=EUR&ref=1%27%20UNION%20SELECT%20password%20FROM%20users--&q=%3Cscript%3Ealert(1)%3C/script%3E&file=../../etc/passwd",
        ..benign
    };
    assert!(rules.inspect(&attack, &policy).block);
    c.bench_function("waf/attack_request", |b| {
        b.iter(|| rules.inspect(black_box(&attack), &policy))
    });

    let mut big = String::from("{\"docs\":[");
    while big.len() < 64 * 1024 - 200 {
        big.push_str("{\"title\":\"Quarterly report\",\"text\":\"Revenue grew in all regions; costs were flat.\",\"n\":12345},");
    }
    big.push_str("{}]}");
    let big_req = Request {
        body: big.as_bytes(),
        ..benign
    };
    assert!(!rules.inspect(&big_req, &policy).block);
    c.bench_function("waf/json_body_64k", |b| {
        b.iter(|| rules.inspect(black_box(&big_req), &policy))
    });

    let mut group = c.benchmark_group("waf/compile");
    group.sample_size(10);
    group.bench_function("builtin_rules", |b| b.iter(|| RuleSet::builtin().unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
