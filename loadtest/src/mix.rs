//! The built-in benign request mix: what a browser and an API client send to
//! a small shop (pages, assets, API reads, searches, a form and a JSON POST),
//! weighted roughly like real traffic (assets dominate).

use crate::http::Request;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn browser(mut r: Request, accept: &str) -> Request {
    r.headers.push(("User-Agent".into(), UA.into()));
    r.headers.push(("Accept".into(), accept.into()));
    r.headers
        .push(("Accept-Language".into(), "en-GB,en;q=0.8".into()));
    r.headers
        .push(("Accept-Encoding".into(), "gzip, deflate, br".into()));
    r.headers
        .push(("Cookie".into(), "session=7f3a9c2e1b4d; theme=dark".into()));
    r
}

fn post(target: &str, content_type: &str, body: &str) -> Request {
    let mut r = Request::get(target);
    r.method = "POST".into();
    r.headers.push(("Content-Type".into(), content_type.into()));
    r.body = body.as_bytes().to_vec();
    r
}

/// The mix, one entry per request in a cycle (weights by repetition).
pub fn benign_mix() -> Vec<Request> {
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let json = "application/json";
    let mut mix = Vec::new();
    let page = |p: &str| browser(Request::get(p), html);
    let asset = |p: &str| browser(Request::get(p), "*/*");
    let api = |p: &str| browser(Request::get(p), json);
    mix.push(page("/"));
    for p in [
        "/static/app.js",
        "/static/site.css",
        "/images/logo.png",
        "/static/vendor.js",
        "/favicon.ico",
    ] {
        mix.push(asset(p));
    }
    mix.push(page("/products/shoes?color=blue&size=42"));
    for p in ["/static/app.js", "/images/p/1234.jpg", "/images/p/1235.jpg"] {
        mix.push(asset(p));
    }
    mix.push(api("/api/items?page=2&per_page=20&sort=price"));
    mix.push(api("/api/cart"));
    mix.push(page("/search?q=running+shoes&category=sport"));
    mix.push(browser(
        post(
            "/api/cart/items",
            json,
            r#"{"sku":"SH-1234-42","quantity":1,"note":"gift wrap, please"}"#,
        ),
        json,
    ));
    mix.push(browser(
        post(
            "/account/login",
            "application/x-www-form-urlencoded",
            "email=ann%40example.com&password=correct+horse+battery",
        ),
        html,
    ));
    mix.push(page("/blog/2024/05/how-to-choose-running-shoes"));
    mix.push(api("/api/recommendations?item=1234"));
    mix
}

#[cfg(test)]
mod tests {
    #[test]
    fn mix_is_varied() {
        let mix = super::benign_mix();
        assert!(mix.len() >= 15);
        assert!(mix.iter().any(|r| r.method == "POST"));
        assert!(mix.iter().all(|r| r.target.starts_with('/')));
    }
}
