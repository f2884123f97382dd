#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! A loopback TCP relay that changes how bytes travel, not which: it splits
//! each direction's stream at chosen byte offsets (write up to the offset,
//! pause, write the rest), can hold a direction at an offset until released,
//! and can delay passing on a close (the FIN) — the timing a peer, a
//! loaded machine or a middlebox may produce, made deterministic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the relay does to one direction of every connection.
#[derive(Clone, Default)]
pub struct Shape {
    /// Byte offsets (from the start of the direction's stream) after which
    /// the relay pauses for `pause` before writing on.
    pub splits: Vec<usize>,
    /// Pause at every split.
    pub pause: Duration,
    /// Pass the peer's close (FIN) on only after this long.
    pub fin_delay: Duration,
    /// Stop at this offset until `release` is notified.
    pub hold_at: Option<(usize, Arc<Notify>)>,
}

/// Client-to-server and server-to-client shapes.
#[derive(Clone, Default)]
pub struct Plan {
    pub up: Shape,
    pub down: Shape,
}

/// A running relay: its address and byte counters.
pub struct Relay {
    pub addr: SocketAddr,
    /// Bytes passed client → server and server → client (all connections).
    pub up_bytes: Arc<AtomicUsize>,
    pub down_bytes: Arc<AtomicUsize>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Length of every server → client stream that has ended (peer closed).
    pub down_streams: Arc<Mutex<Vec<usize>>>,
}

/// Starts a relay to `target` applying `plan()` (asked per connection).
pub async fn start(target: SocketAddr, plan: impl Fn() -> Plan + Send + Sync + 'static) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (up_bytes, down_bytes) = (Arc::default(), Arc::default());
    let connections = Arc::new(AtomicUsize::new(0));
    let down_streams = Arc::new(Mutex::new(Vec::new()));
    let relay = Relay {
        down_streams: Arc::clone(&down_streams),
        addr,
        up_bytes: Arc::clone(&up_bytes),
        down_bytes: Arc::clone(&down_bytes),
        connections: Arc::clone(&connections),
    };
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            connections.fetch_add(1, Ordering::Relaxed);
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let plan = plan();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, plan.up, Arc::clone(&up_bytes), None));
            tokio::spawn(pump(
                sr,
                cw,
                plan.down,
                Arc::clone(&down_bytes),
                Some(Arc::clone(&down_streams)),
            ));
        }
    });
    relay
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shape: Shape,
    counter: Arc<AtomicUsize>,
    ended: Option<Arc<Mutex<Vec<usize>>>>,
) {
    let mut offset = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            // The next stop inside this chunk: a split or the hold point.
            let end = offset + chunk.len();
            let stop = shape
                .splits
                .iter()
                .copied()
                .chain(shape.hold_at.as_ref().map(|(at, _)| *at))
                .filter(|&s| s > offset && s < end)
                .min();
            let take = stop.map_or(chunk.len(), |s| s - offset);
            if to.write_all(&chunk[..take]).await.is_err() {
                return;
            }
            counter.fetch_add(take, Ordering::Relaxed);
            offset += take;
            chunk = &chunk[take..];
            if let Some(s) = stop {
                if let Some((at, release)) = &shape.hold_at {
                    if *at == s {
                        release.notified().await;
                    }
                }
                if shape.splits.contains(&s) {
                    tokio::time::sleep(shape.pause).await;
                }
            }
        }
    }
    if let Some(ended) = ended {
        ended.lock().unwrap().push(offset);
    }
    tokio::time::sleep(shape.fin_delay).await;
    let _ = to.shutdown().await;
}
