#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Inspection cost of the benign bench request, as wall time and as time
//! this thread actually ran on a CPU (`/proc/thread-self/schedstat`), so a
//! loaded, shared machine does not inflate the figure:
//! `cargo run --release -p rampart-waf --example profile`.
use rampart_waf::{Policy, Request, RuleSet};
use std::time::Instant;

fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let ua: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36";
    let h: Vec<(&str, &[u8])> = vec![
        ("Host", b"shop.example.com"),
        ("User-Agent", ua),
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
        ("Cookie", b"_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; session=eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoidXNlciJ9.ZmFrZXNpZ25hdHVyZQ; theme=dark; consent=%7B%22ads%22%3Afalse%2C%22stats%22%3Atrue%7D; cart=3f2a9c; lang=en-US"),
    ];
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
    let body = format!(
        r#"{{"customer":{{"id":48213,"email":"alice@example.com","name":"Alice O'Neil"}},"items":[{items}],"note":"Please leave at the door, thanks!","coupon":"SUMMER-24"}}"#
    );
    let req = Request {
        method: "POST",
        path: "/api/cart/checkout",
        query: "step=2&currency=EUR&ref=summer-sale&utm_source=newsletter&session_id=a81f3c9d2e",
        headers: &h,
        body: body.as_bytes(),
        body_truncated: false,
        version: "HTTP/1.1",
    };
    // RULES_DIR=dir profiles another rule set (e.g. an older one) with the same binary.
    let rs = match std::env::var("RULES_DIR") {
        Ok(d) => RuleSet::load_dir(std::path::Path::new(&d)).unwrap(),
        Err(_) => RuleSet::builtin().unwrap(),
    };
    let p = Policy::default();
    for _ in 0..2000 {
        std::hint::black_box(rs.inspect(&req, &p));
    }
    let n = 50_000;
    let (t, c) = (Instant::now(), on_cpu_ns());
    for _ in 0..n {
        std::hint::black_box(rs.inspect(&req, &p));
    }
    let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let cpu = (on_cpu_ns() - c) as f64 / 1e3 / f64::from(n);
    println!("benign request: {wall:.2} us wall, {cpu:.2} us on CPU per inspection ({n} runs)");
}
