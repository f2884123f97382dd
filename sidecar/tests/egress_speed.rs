//! Measurement, not a test (ignored by default; it asserts only that every connection worked):
//! new connections per second and latency per connection through the sidecar's egress path,
//! side by side with direct connections, on loopback against the DNSSEC lab. Each connection
//! sends a ClientHello and reads the destination's answer until it closes.
//!
//! - `direct`: the client connects to the destination itself;
//! - `sidecar`: `CONNECT` through the sidecar's explicit proxy (decision, our resolver's
//!   cached answer, vetted dial, relay);
//! - `gateway`: the same sidecar sending its egress to the egress gateway (mTLS handshake to the
//!   gateway, its own decision and cached lookup, dial from its fixed source address).
//!
//! Rounds alternate the three paths so load changes hit them alike; the figures are medians.
//!
//! `cargo test --release -p rampart-sidecar --test egress_speed -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod egress_support;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use egress_support::*;
use support::Sidecar;

const ROUNDS: usize = 7;
const PER_ROUND: usize = 100;

fn direct(dest: SocketAddr, hello: &[u8]) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(dest).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(hello).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"pong");
}

fn proxied(proxy: SocketAddr, target: &str, hello: &[u8]) {
    let got = connect_via(proxy, target, hello);
    assert_eq!(got.rest, b"pong", "{got:?}");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture (release build)"]
fn egress_connections_per_second_vs_direct() {
    let Some(s) = GatewaySetup::start("egress_connections_per_second_vs_direct", &[]) else {
        return;
    };
    let (lab, dest, port, gw_port, mesh) = (s.lab, s.dest, s.port, s.gw_port, s.mesh);
    let rule = format!("host = \"www.signed.test\"\nports = [{port}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.10/32\"]\n");
    mesh.write(
        "frontend-policy.toml",
        &format!("[egress]\n[[egress.hosts]]\n{rule}"),
    );
    mesh.write(
        "gateway-policy.toml",
        &format!("[gateway.frontend]\n[[gateway.frontend.hosts]]\n{rule}"),
    );
    let resolver = lab_resolver(&lab, "cache_floor_secs = 600\ncache_ceiling_secs = 600\n");
    let gateway_cfg = mesh.config(
        "gateway",
        "egress-gateway",
        &format!("[egress]\n{resolver}[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\nsource = \"127.0.0.2\"\n"),
    );
    let direct_cfg = mesh.config(
        "frontend",
        "frontend",
        &format!("[egress]\n{resolver}proxy_listen = \"127.0.0.1:0\"\n"),
    );
    let via_gw_cfg = mesh.write(
        "frontend-gw.toml",
        &std::fs::read_to_string(&direct_cfg).unwrap().replace(
            &resolver,
            "gateway = { service = \"egress-gateway\", port = 15443 }\n",
        ),
    );
    let _gateway = Sidecar::start(&gateway_cfg);
    let sidecar = Sidecar::start(&direct_cfg);
    let sidecar_gw = Sidecar::start(&via_gw_cfg);
    let (p1, p2) = (
        sidecar.addr("egress:proxy"),
        sidecar_gw.addr("egress:proxy"),
    );
    let target = format!("www.signed.test:{port}");
    let hello = client_hello("www.signed.test");
    // Warm up: the answer cached in both resolvers, the code paths touched.
    for _ in 0..20 {
        direct(dest.addr, &hello);
        proxied(p1, &target, &hello);
        proxied(p2, &target, &hello);
    }
    let mut lat: [Vec<f64>; 3] = Default::default();
    let mut rate: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, run) in [
            &(|| direct(dest.addr, &hello)) as &dyn Fn(),
            &|| proxied(p1, &target, &hello),
            &|| proxied(p2, &target, &hello),
        ]
        .iter()
        .enumerate()
        {
            let round = Instant::now();
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                run();
                lat[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
            rate[i].push(PER_ROUND as f64 / round.elapsed().as_secs_f64());
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "egress speed, {ROUNDS} rounds x {PER_ROUND} sequential connections per path, load average {}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let base_lat = median(lat[0].clone());
    let base_rate = median(rate[0].clone());
    for (i, name) in ["direct", "sidecar", "sidecar+gateway"].iter().enumerate() {
        let l = median(lat[i].clone());
        let r = median(rate[i].clone());
        println!(
            "{name:<16} median {l:>8.0} µs/connection ({:.2}x, +{:.0} µs)   median {r:>7.0} connections/s ({:.2}x)",
            l / base_lat,
            l - base_lat,
            r / base_rate
        );
    }
    let from_gateway = dest
        .seen()
        .iter()
        .filter(|(peer, _)| peer.ip() == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .count();
    assert_eq!(
        from_gateway,
        20 + ROUNDS * PER_ROUND,
        "every gateway connection came from its source address"
    );
}
