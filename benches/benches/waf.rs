//! WAF inspection cost: a typical benign request (≈1 KB of headers, 5 query
//! args, a 1 KB JSON body), an attack request, a 64 KiB body, and the time
//! to compile the built-in rule set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart_waf::{Policy, Request, RuleSet};

const UA: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36";
const COOKIE: &[u8] = b"_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; session=eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoidXNlciJ9.ZmFrZXNpZ25hdHVyZQ; theme=dark; consent=%7B%22ads%22%3Afalse%2C%22stats%22%3Atrue%7D; cart=3f2a9c; lang=en-US";

fn headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("Host", b"shop.example.com"),
        ("User-Agent", UA),
        ("Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Accept-Language", b"en-US,en;q=0.9,de;q=0.8"),
        ("Accept-Encoding", b"gzip, deflate, br, zstd"),
        ("Referer", b"https://shop.example.com/catalog/shoes?color=red&size=42"),
        ("Content-Type", b"application/json"),
        ("Origin", b"https://shop.example.com"),
        ("Sec-Fetch-Site", b"same-origin"),
        ("Sec-Fetch-Mode", b"cors"),
        ("Sec-Ch-Ua", b"\"Chromium\";v=\"127\", \"Not)A;Brand\";v=\"99\""),
        ("X-Requested-With", b"XMLHttpRequest"),
        ("Cookie", COOKIE),
    ]
}

fn json_body() -> Vec<u8> {
    let mut items = String::new();
    for i in 0..8 {
        if i > 0 {
            items.push(',');
        }
        items.push_str(&format!(
            r#"{{"sku":"SKU-{i:05}","name":"Trail running shoe, model {i}","qty":{},"price":{}.99,"tags":["outdoor","sale"]}}"#,
            i % 3 + 1,
            40 + i
        ));
    }
    format!(
        r#"{{"customer":{{"id":48213,"email":"alice@example.com","name":"Alice O'Neil"}},"items":[{items}],"note":"Please leave at the door, thanks!","coupon":"SUMMER-24"}}"#
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::builtin().unwrap();
    let policy = Policy::default();
    let h = headers();
    let body = json_body();
    assert!(body.len() > 900 && body.len() < 1400, "{}", body.len());

    let benign = Request {
        method: "POST",
        path: "/api/cart/checkout",
        query: "step=2&currency=EUR&ref=summer-sale&utm_source=newsletter&session_id=a81f3c9d2e",
        headers: &h,
        body: &body,
        body_truncated: false,
        version: "HTTP/1.1",
    };
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
