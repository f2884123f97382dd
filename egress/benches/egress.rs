//! Egress path cost per new connection, side by side with a direct connection, on loopback with
//! the rampart-dns lab (Knot behind a validating Unbound):
//! - `direct`: connect to the upstream, send a ClientHello, read one byte back;
//! - `egress_cached`: the same through `Egress::accept` (SNI read, decision, resolution from the
//!   cache, vetted dial, ClientHello forwarded, one byte relayed back);
//! - `egress_fresh_lookup`: the same with the answer cache cleared before each connection
//!   (A + AAAA through Unbound and DNSSEC validation by hickory every time).
//!
//! `cargo bench -p rampart-egress --bench egress`; report the ratio of each to `direct`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_dns::testlab::DnsLab;
use rampart_dns::Resolver;
use rampart_egress::{DialOptions, Egress, EgressPolicy, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LO10: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);

fn client_hello(server: &str) -> Vec<u8> {
    rampart_egress::testkit::client_hello(server).unwrap()
}

/// One connection: send the hello, wait for the one-byte reply.
async fn one(addr: SocketAddr, hello: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let lab = match DnsLab::start() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIP egress bench: {e}");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hello = client_hello("www.signed.test");
    let (upstream, proxy, egress) = rt.block_on(async {
        // Upstream: reads the hello, answers one byte.
        let up = TcpListener::bind((LO10, 0)).await.unwrap();
        let up_addr = up.local_addr().unwrap();
        let need = hello.len();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = up.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; need];
                    if s.read_exact(&mut buf).await.is_ok() {
                        let _ = s.write_all(b"k").await;
                    }
                });
            }
        });
        let policy = EgressPolicy::from_toml(
            &format!(
                "[[hosts]]\nhost = \"www.signed.test\"\nports = [{}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.10/32\"]\n",
                up_addr.port()
            ),
            "bench",
        )
        .unwrap();
        let mut rc = lab.resolver_config();
        rc.cache_floor = Duration::from_secs(300);
        rc.cache_ceiling = Duration::from_secs(300);
        let egress = Arc::new(Egress {
            policy: Arc::new(policy),
            resolver: Arc::new(Resolver::new(rc).unwrap()),
            options: DialOptions::default(),
        });
        // The egress listener: as the sidecar would run it.
        let px = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let px_addr = px.local_addr().unwrap();
        let e2 = egress.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = px.accept().await {
                let e = e2.clone();
                tokio::spawn(async move {
                    let mode = Mode::Transparent {
                        original_dst: up_addr,
                    };
                    if let Ok(mut c) = e.accept(&mut client, mode).await {
                        if c.upstream.write_all(&c.prefix).await.is_ok() {
                            let _ =
                                tokio::io::copy_bidirectional(&mut client, &mut c.upstream).await;
                        }
                    }
                });
            }
        });
        (up_addr, px_addr, egress)
    });
    // Warm the cache and prove the path works before measuring.
    rt.block_on(one(proxy, &hello));

    let mut g = c.benchmark_group("egress_connection");
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("direct", |b| b.iter(|| rt.block_on(one(upstream, &hello))));
    g.bench_function("egress_cached", |b| {
        b.iter(|| rt.block_on(one(proxy, &hello)))
    });
    g.bench_function("egress_fresh_lookup", |b| {
        b.iter(|| {
            egress.resolver.clear_cache();
            rt.block_on(one(proxy, &hello))
        })
    });
    g.finish();
    drop(lab);
}

criterion_group!(benches, bench);
criterion_main!(benches);
