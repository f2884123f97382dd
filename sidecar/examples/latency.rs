//! Added latency at one connection, robust to a noisy shared machine: one keep-alive HTTP/1.1
//! connection per target, and the requests *alternate* between the targets (direct, our pair,
//! the HAProxy pair, …) one by one, so every target sees the same moments of load. Prints each
//! target's p50 / p90 / p99 and its p50 minus the first target's (the direct upstream).
//! With `NAME=ADDR=PID[,PID…]`, also the CPU those processes spent per request over the run
//! (utime + stime from `/proc`): a figure the load of a shared machine moves much less than
//! latency does.
//!
//! ```text
//! cargo run --release -p rampart-sidecar --example latency -- [--seconds 10] NAME=127.0.0.1:PORT[=PID,…] ...
//! ```
//! Run it pinned to the core the servers are not on (`taskset -c 1`); see
//! `sidecar/bench/latency.sh`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;
use common::{clock_ticks, cpu_seconds};

const MAX_SECONDS: u64 = 120;
const TIMEOUT: Duration = Duration::from_secs(5);

struct Target {
    name: String,
    addr: SocketAddr,
    conn: TcpStream,
    buf: Vec<u8>,
    samples: Vec<u32>,
    /// Processes whose CPU is counted for this target.
    pids: Vec<u32>,
    cpu_before: f64,
}

fn cpu_of(pids: &[u32], ticks: f64) -> Result<f64, String> {
    pids.iter().map(|&p| cpu_seconds(p, ticks)).sum()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("latency: {e}");
        std::process::exit(2);
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let conn = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn run() -> Result<(), String> {
    let mut seconds = 10u64;
    let mut targets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds N")?
            }
            t => {
                let (name, rest) = t.split_once('=').ok_or(format!("{t}: NAME=ADDR"))?;
                let (addr, pids) = rest.split_once('=').unwrap_or((rest, ""));
                let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
                let pids = pids
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse::<u32>().map_err(|e| format!("pid {p}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                if !addr.ip().is_loopback() {
                    return Err(format!("{addr}: loopback only"));
                }
                targets.push(Target {
                    name: name.to_string(),
                    addr,
                    conn: connect(addr)?,
                    buf: vec![0; 64 * 1024],
                    samples: Vec::new(),
                    pids,
                    cpu_before: 0.0,
                });
            }
        }
    }
    if targets.is_empty() || seconds == 0 || seconds > MAX_SECONDS {
        return Err(format!(
            "usage: latency [--seconds 1..={MAX_SECONDS}] NAME=127.0.0.1:PORT ..."
        ));
    }
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    // Warm-up: a few hundred requests each, not counted.
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        for t in &mut targets {
            exchange(t, request)?;
        }
    }
    let ticks = clock_ticks();
    for t in &mut targets {
        t.cpu_before = cpu_of(&t.pids, ticks)?;
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        for t in &mut targets {
            let started = Instant::now();
            exchange(t, request)?;
            let us = started.elapsed().as_nanos() / 1000;
            t.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    let mut cpu = Vec::new();
    for t in &targets {
        cpu.push(cpu_of(&t.pids, ticks)? - t.cpu_before);
    }
    let base = p(&mut targets[0].samples.clone(), 50.0);
    println!(
        "# {} requests per target, alternating; loadavg {}",
        targets[0].samples.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (t, cpu) in targets.iter_mut().zip(cpu) {
        let (p50, p90, p99) = (
            p(&mut t.samples, 50.0),
            p(&mut t.samples, 90.0),
            p(&mut t.samples, 99.0),
        );
        let cpu = if t.pids.is_empty() {
            String::new()
        } else {
            format!(
                " cpu_per_request_us={:.1}",
                cpu / t.samples.len().max(1) as f64 * 1e6
            )
        };
        println!(
            "LATENCY name={} p50_us={p50} p90_us={p90} p99_us={p99} added_p50_us={}{cpu}",
            t.name,
            i64::from(p50) - i64::from(base)
        );
    }
    Ok(())
}

fn p(samples: &mut [u32], pct: f64) -> u32 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * pct / 100.0).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// One request and its whole answer (head, then a Content-Length body).
fn exchange(t: &mut Target, request: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{} ({}): {e}", t.name, t.addr);
    t.conn.write_all(request).map_err(fail)?;
    let mut have = 0;
    loop {
        let n = t.conn.read(&mut t.buf[have..]).map_err(fail)?;
        if n == 0 {
            return Err(format!("{}: connection closed", t.name));
        }
        have += n;
        if let Some(head_end) = find(&t.buf[..have], b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&t.buf[..head_end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("{}: {}", t.name, head.lines().next().unwrap_or("")));
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or(format!("{}: no content-length", t.name))?;
            let want = head_end + 4 + length;
            if want > t.buf.len() {
                return Err(format!("{}: answer too large", t.name));
            }
            while have < want {
                let n = t.conn.read(&mut t.buf[have..want]).map_err(fail)?;
                if n == 0 {
                    return Err(format!("{}: connection closed", t.name));
                }
                have += n;
            }
            return Ok(());
        }
        if have == t.buf.len() {
            return Err(format!("{}: head too large", t.name));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
