//! Where the edge's idle memory goes: resident anonymous memory of this process (`/proc/self/
//! smaps_rollup`) after each part of the edge's start-up is built and kept alive, with the same
//! allocator and build profile as `rampart-proxy`. Each line is the part's own growth; for the
//! WAF rules also the automata's own heap (`RuleSet::memory_parts`), so the difference is what
//! the compile left behind in the heap.
//!
//! ```sh
//! cargo build --profile dist -p rampart-proxy --example memory_parts
//! target/dist/examples/memory_parts examples/bench/edge-bench.toml          # as the edge does
//! target/dist/examples/memory_parts examples/bench/edge-bench.toml inline   # rules compiled on
//!                                                                          # the main thread
//! ```
//! The parts: the compiled WAF rules (one `RuleSet`, as each config generation holds: compiled
//! on a scratch thread as `Runtime` does, or with `inline` on this thread), one whole config
//! generation (`Runtime`: routes, upstreams, TLS configs; the rules shared with the first), and
//! the shared state `rampart-proxy run` builds before Pingora starts (metrics, access-log
//! thread, defences, its own first generation). What Pingora adds (its runtimes and threads) is
//! the rest of `rampart-proxy run`'s idle figure.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

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
        "{name:<40} anonymous {:>6} KiB (+{:>6})   file-backed {file:>6} KiB",
        anon,
        anon.saturating_sub(*last)
    );
    *last = anon;
    value
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: memory_parts CONFIG.toml [inline]");
        std::process::exit(2);
    };
    let inline = args.next().as_deref() == Some("inline");
    let config = match rampart_proxy::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memory_parts: {e}");
            std::process::exit(1);
        }
    };
    rampart_proxy::tls::install_crypto_provider();
    let mut last = resident().0;
    println!("{:<40} anonymous {last:>6} KiB", "start (config read)");
    let how = if inline {
        "this thread"
    } else {
        "scratch thread"
    };
    let rules = step(&format!("WAF rules (compiled on {how})"), &mut last, || {
        if inline {
            rampart_waf::RuleSet::builtin()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        } else {
            rampart_proxy::runtime::compile_waf_rules(&config, None).map_err(|e| e.to_string())
        }
    });
    let rules = match rules {
        Ok(r) => r,
        Err(e) => {
            eprintln!("memory_parts: {e}");
            std::process::exit(1);
        }
    };
    let automata: usize = rules
        .memory_parts(false)
        .iter()
        .filter(|p| !p.what.contains("caches"))
        .map(|p| p.bytes)
        .sum();
    println!(
        "  of which the automata's own heap       {:>6} KiB",
        automata / 1024
    );
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
