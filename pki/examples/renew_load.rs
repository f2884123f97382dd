//! Renewal load against a running `rampart-pki serve` (release build), by
//! a Rust client, every renewal a full TLS 1.3 handshake with a client
//! certificate (a new rustls config per call: no resumption). Reports
//! renewals per *server* CPU-second, read from /proc/PID/stat of the
//! service, so the client's own cost does not count.
//!
//! ```sh
//! cargo build --release -p rampart-pki --bin rampart-pki --example renew_load
//! # CA in /tmp/ca with [rate_limit] per_minute = 10000000, burst = 1000000
//! target/release/rampart-pki serve --config pki.toml &        # note the port and the pid
//! target/release/examples/renew_load 127.0.0.1:PORT /tmp/ca PID 16 8 10
//! #                                  CA address     CA dir  pid ids concurrency seconds
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_pki::client::{SourceSettings, SvidSource};
use rampart_pki::spiffe::SpiffeId;
use rampart_pki::token::TokenStore;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server pid");
    // Fields after the ")" of the command name: utime is the 14th field, stime the 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        eprintln!("usage: renew_load CA_ADDR CA_DIR SERVER_PID IDS CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let addr: std::net::SocketAddr = a[1].parse().unwrap();
    let dir = std::path::PathBuf::from(&a[2]);
    let pid: u32 = a[3].parse().unwrap();
    let (ids, conc, secs): (usize, usize, u64) = (
        a[4].parse().unwrap(),
        a[5].parse().unwrap(),
        a[6].parse().unwrap(),
    );
    let roots = rampart_pki::client::certs_from_pem(
        &std::fs::read_to_string(dir.join("bundle.pem")).unwrap(),
    )
    .unwrap();
    let td = rampart_pki::ca::Ca::trust_domain_of(&dir).unwrap();
    let tokens = TokenStore::open(&dir).unwrap();
    let mut sources = Vec::new();
    for i in 0..ids {
        let id = SpiffeId::parse(&format!("{}ns/load/sa/w{i}", td.id_prefix())).unwrap();
        let token = tokens.create(&id, Duration::from_secs(600)).unwrap();
        let mut s = SourceSettings::new(addr, id);
        s.ttl = Some(Duration::from_secs(3600));
        sources.push(
            SvidSource::bootstrap(s, roots.clone(), &token)
                .await
                .unwrap(),
        );
    }
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    let deadline = t0 + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conc)
        .map(|w| {
            let (done, failed) = (done.clone(), failed.clone());
            let mine: Vec<_> = sources.iter().skip(w).step_by(conc).cloned().collect();
            tokio::spawn(async move {
                let mut i = 0usize;
                while Instant::now() < deadline && !mine.is_empty() {
                    let s = &mine[i % mine.len()];
                    i += 1;
                    match tokio::time::timeout(Duration::from_secs(10), s.renew_now()).await {
                        Ok(Ok(())) => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - c0) as f64 / 100.0; // USER_HZ
    let n = done.load(Ordering::Relaxed);
    println!(
        "renewals {n} failed {} wall {wall:.2}s server_cpu {cpu:.2}s -> {:.0}/s wall, {:.0} per server CPU-second, {:.1} us server CPU per renewal",
        failed.load(Ordering::Relaxed),
        n as f64 / wall,
        n as f64 / cpu,
        cpu * 1e6 / n as f64
    );
}
