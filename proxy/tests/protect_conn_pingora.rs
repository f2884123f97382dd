#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Connection caps on Pingora's own listener stack: a real
//! `pingora_core::services::listening::Service` with our `ConnectionFilter`
//! and `ConnTracked` app, accepting real loopback connections. Proves the
//! filter is called with the peer address before the app, and that slots
//! come back when Pingora drops the connection.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::listening::Service;
use pingora_core::services::Service as _;
use rampart_protect::conn_limit::pingora::ConnTracked;
use rampart_protect::conn_limit::{ConnCapFilter, ConnLimitConfig, ConnLimiter};
use rampart_protect::denial::{Denial, DenialReason};
use rampart_protect::ratelimit::Rate;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One "request" per read, answered `ok`; keep-alive until EOF.
struct KeepAlive;

#[async_trait]
impl ServerApp for KeepAlive {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        _: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => {
                // Served: established, so the per-IP cap refuses rather than
                // evicts it (the slot is reachable on the first request).
                if let Some(slot) = rampart_protect::conn_limit::slot::current() {
                    slot.established();
                }
                stream.write_all(b"ok").await.ok()?;
                stream.flush().await.ok()?;
                Some(stream)
            }
            _ => None,
        }
    }
}

async fn served(c: &mut TcpStream) -> bool {
    if c.write_all(b"hi").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 2];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await,
        Ok(Ok(_))
    )
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingora_listener_enforces_per_ip_cap_and_releases_on_close() {
    let config = ConnLimitConfig {
        max_per_ip: 2,
        new_per_ip: Rate::per_second(1000, 1000),
        ..ConnLimitConfig::default()
    };
    let limiter = Arc::new(ConnLimiter::new(&config).unwrap());
    let denials = Arc::new(Mutex::new(Vec::<Denial>::new()));
    let seen = denials.clone();
    let filter = Arc::new(ConnCapFilter::new(
        limiter.clone(),
        Duration::from_secs(65),
        Arc::new(move |d| seen.lock().unwrap().push(d)),
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut service = Service::new(
        "protect-test".into(),
        ConnTracked::new(KeepAlive, filter.clone()),
    );
    service.add_tcp(&addr);
    service.set_connection_filter(filter.clone());
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { service.start_service(None, shutdown, 1).await });

    // Readiness: poll until the listener accepts and serves.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut a = loop {
        if let Ok(mut c) = TcpStream::connect(&addr).await {
            if served(&mut c).await {
                break c;
            }
        }
        assert!(Instant::now() < deadline, "pingora listener never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut b = TcpStream::connect(&addr).await.unwrap();
    assert!(served(&mut b).await);
    assert!(served(&mut a).await, "keep-alive round trip");
    let ip = "127.0.0.1".parse().unwrap();
    assert_eq!(limiter.active_for(ip), 2);

    let mut c = TcpStream::connect(&addr).await.unwrap();
    assert!(!served(&mut c).await, "third concurrent connection served");
    let reasons: Vec<_> = denials.lock().unwrap().iter().map(|d| d.reason).collect();
    assert!(reasons.contains(&DenialReason::ConnCapPerIp), "{reasons:?}");

    drop(a);
    wait_until("slot released when pingora drops the connection", || {
        limiter.active_for(ip) == 1
    })
    .await;
    let mut d = TcpStream::connect(&addr).await.unwrap();
    assert!(served(&mut d).await);
    drop((b, c, d));
    wait_until("all slots released", || limiter.active() == 0).await;
    assert_eq!(filter.pending_count(), 0);
}
