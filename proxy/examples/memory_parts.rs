//! Where the edge's idle memory goes: resident anonymous memory of this process (`/proc/self/
//! smaps_rollup`) after each part of the edge's start-up is built and kept alive, with the same
//! allocator and build profile as `rampart-proxy`. Each line is the part's own growth.
//!
//! ```sh
//! cargo build --release -p rampart-proxy --example memory_parts
//! target/release/examples/memory_parts examples/bench/edge-bench.toml
//! ```
//! The parts: the compiled WAF rules (one `RuleSet`, as each config generation holds), one
//! whole config generation (`Runtime`: rules, routes, upstreams, TLS configs), and the shared
//! state `rampart-proxy run` builds before Pingora starts (metrics, access-log thread,
//! defences, the first generation). What Pingora adds (its runtimes and threads) is the rest of
//! `rampart-proxy run`'s idle figure.
#![forbid(unsafe_code)]

use std::path::PathBuf;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident anonymous and file-backed memory in KiB.
fn resident() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Anonymous:"), field("Rss:") - field("Anonymous:"))
}

fn step<T>(name: &str, last: &mut u64, build: impl FnOnce() -> T) -> T {
    let value = build();
    let (anon, file) = resident();
    println!(
        "{name:<34} anonymous {:>6} KiB (+{:>6})   file-backed {file:>6} KiB",
        anon,
        anon.saturating_sub(*last)
    );
    *last = anon;
    value
}

fn main() {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: memory_parts CONFIG.toml");
        std::process::exit(2);
    };
    let config = match rampart_proxy::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memory_parts: {e}");
            std::process::exit(1);
        }
    };
    rampart_proxy::tls::install_crypto_provider();
    let mut last = resident().0;
    println!("{:<34} anonymous {last:>6} KiB", "start (config read)");
    let rules = step("WAF rules (RuleSet::builtin)", &mut last, || {
        rampart_waf::RuleSet::builtin()
    });
    let runtime = step("one config generation (Runtime)", &mut last, || {
        rampart_proxy::runtime::Runtime::build(config.clone(), None)
    });
    let shared = step("shared state (prepare)", &mut last, || {
        rampart_proxy::control::server::prepare(&path, config)
    });
    if let Err(e) = runtime
        .as_ref()
        .map(|_| ())
        .and(shared.as_ref().map(|_| ()))
    {
        eprintln!("memory_parts: {e}");
        std::process::exit(1);
    }
    drop((rules, runtime, shared));
}
