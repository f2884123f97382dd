//! The guard on real loopback connections, with 1 s limits.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Seen = Arc<Mutex<Vec<Denial>>>;

fn config() -> SlowClientConfig {
    SlowClientConfig {
        header_timeout_secs: 1,
        min_body_rate: 1000,
        body_rate_grace_secs: 1,
        max_head_bytes: 4096,
    }
}

async fn pair() -> (SlowClientGuard<TcpStream>, TcpStream, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let peer = server.peer_addr().ok();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let guard = SlowClientGuard::new(
        server,
        config(),
        Arc::new(move |d| sink.lock().unwrap().push(d)),
    )
    .with_peer(peer);
    (guard, client, seen)
}

/// Reads until `n` bytes arrived (Ok) or the guard fails (Err).
async fn read_n(guard: &mut SlowClientGuard<TcpStream>, n: usize) -> std::io::Result<usize> {
    let mut total = 0;
    let mut buf = [0u8; 1024];
    while total < n {
        let got = guard.read(&mut buf).await?;
        if got == 0 {
            break;
        }
        total += got;
    }
    Ok(total)
}

/// The next read neither fails nor returns data within `wait`.
async fn stays_quiet(guard: &mut SlowClientGuard<TcpStream>, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    tokio::time::timeout(wait, guard.read(&mut buf))
        .await
        .is_err()
}

fn reasons(seen: &Seen) -> Vec<DenialReason> {
    seen.lock().unwrap().iter().map(|d| d.reason).collect()
}

#[tokio::test]
async fn slowloris_head_hits_the_whole_header_deadline() {
    let (mut guard, mut client, seen) = pair().await;
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Trickle: a header line every 300 ms never completes the head.
    let trickle = tokio::spawn(async move {
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if client
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let err = read_n(&mut guard, 1 << 20).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(is_header_timeout(&err), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "per-read, not whole-head, deadline"
    );
    assert_eq!(reasons(&seen), [DenialReason::HeaderTimeout]);
    let mut buf = [0u8; 8];
    assert!(guard.read(&mut buf).await.is_err(), "stays failed");
    assert_eq!(reasons(&seen).len(), 1, "reported once");
    trickle.abort();
}

#[tokio::test]
async fn complete_requests_and_idle_keepalive_are_fine() {
    let (mut guard, mut client, seen) = pair().await;
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(req).await.unwrap();
    assert_eq!(read_n(&mut guard, req.len()).await.unwrap(), req.len());
    guard
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    // Idle keep-alive longer than the header deadline: not a slow head.
    assert!(stays_quiet(&mut guard, Duration::from_millis(1300)).await);
    let post = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    client.write_all(post).await.unwrap();
    client.write_all(&[b'a'; 5000]).await.unwrap();
    assert_eq!(
        read_n(&mut guard, post.len() + 5000).await.unwrap(),
        post.len() + 5000
    );
    assert!(reasons(&seen).is_empty());
}

#[tokio::test]
async fn stalled_body_is_cut_at_the_minimum_rate() {
    let (mut guard, mut client, seen) = pair().await;
    let head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    client.write_all(head).await.unwrap();
    client.write_all(&[b'a'; 10]).await.unwrap();
    let err = read_n(&mut guard, 1 << 20).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(!is_header_timeout(&err), "a body-rate cut is not a 408");
    assert_eq!(reasons(&seen), [DenialReason::BodyRate]);
    drop(client);
}

#[tokio::test]
async fn chunked_bodies_and_http2_are_not_rated() {
    let (mut guard, mut client, seen) = pair().await;
    let head = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    client.write_all(head).await.unwrap();
    assert_eq!(read_n(&mut guard, head.len()).await.unwrap(), head.len());
    assert!(stays_quiet(&mut guard, Duration::from_millis(1300)).await);

    let (mut guard2, mut client2, seen2) = pair().await;
    client2.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert_eq!(read_n(&mut guard2, 16).await.unwrap(), 16);
    assert!(stays_quiet(&mut guard2, Duration::from_millis(1300)).await);
    assert!(reasons(&seen).is_empty() && reasons(&seen2).is_empty());
}

#[test]
fn framing_and_config() {
    assert!(matches!(
        framing(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Framing::None
    ));
    assert!(matches!(
        framing(b"POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n"),
        Framing::Length(12)
    ));
    assert!(matches!(
        framing(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        Framing::Unrated
    ));
    assert!(matches!(
        framing(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        Framing::Unrated
    ));
    assert!(toml::from_str::<SlowClientConfig>("header_timeout = 5").is_err());
    let c: SlowClientConfig = toml::from_str("header_timeout_secs = 0").unwrap();
    assert!(c.validate().unwrap_err().contains("header_timeout_secs"));
    assert!(SlowClientConfig::default().validate().is_ok());
}
