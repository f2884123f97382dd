#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Times the benign bench request per rule file (which family costs what).
use rampart_waf::{Policy, Request, RuleSet};
use std::time::Instant;

fn main() {
    let h: Vec<(&str, &[u8])> = vec![
        ("Host", b"shop.example.com"),
        ("User-Agent", b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36"),
        ("Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Referer", b"https://shop.example.com/catalog/shoes?color=red&size=42"),
        ("Content-Type", b"application/json"),
        ("Cookie", b"_ga=GA1.2.1234567890.1700000000; session=eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoidXNlciJ9.ZmFrZXNpZ25hdHVyZQ; consent=%7B%22ads%22%3Afalse%7D"),
    ];
    let body = br#"{"customer":{"id":48213,"email":"alice@example.com","name":"Alice O'Neil"},"items":[{"sku":"SKU-1","name":"Trail running shoe, model 1","qty":2,"price":41.99}],"note":"Please leave at the door, thanks!"}"#;
    let req = Request {
        method: "POST",
        path: "/api/cart",
        query: "step=2&ref=summer-sale&utm_source=newsletter",
        headers: &h,
        body,
        body_truncated: false,
    };
    if std::env::args().nth(1).as_deref() == Some("full") {
        let rs = RuleSet::builtin().unwrap();
        let p = Policy::default();
        let t = Instant::now();
        let n = 20000;
        for _ in 0..n {
            std::hint::black_box(rs.inspect(&req, &p));
        }
        println!(
            "full {:>8.2} us",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let tmp = std::env::temp_dir().join(format!(
            "wafprof-{}",
            f.file_stem().unwrap().to_str().unwrap()
        ));
        let _ = std::fs::create_dir_all(&tmp);
        std::fs::copy(&f, tmp.join("r.toml")).unwrap();
        let rs = RuleSet::load_dir(&tmp).unwrap();
        let p = Policy::default();
        for _ in 0..200 {
            rs.inspect(&req, &p);
        }
        let t = Instant::now();
        let n = 2000;
        for _ in 0..n {
            std::hint::black_box(rs.inspect(&req, &p));
        }
        println!(
            "{:<16} {:>8.2} us",
            f.file_name().unwrap().to_str().unwrap(),
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
