//! The task that owns the Redis connection: pipelines checks, loads the
//! script, and reconnects with exponential backoff. Health changes flip the
//! shared flag, the gauge, and raise alerts.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::resp::{self, Value};
use super::{Job, RedisLimitConfig, Shared};
use crate::alert::{AlertEvent, Severity};
use crate::ratelimit::{retry_after_secs, Decision};

pub(super) const SCRIPT: &str = include_str!("gcra.lua");
/// Most checks sent in one pipelined write.
const BATCH: usize = 128;

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    sha: String,
    /// Read deadline for one batch of replies.
    timeout: Duration,
}

pub(super) async fn run(
    config: RedisLimitConfig,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Job>,
) {
    let min = Duration::from_millis(config.backoff_min_ms);
    let max = Duration::from_millis(config.backoff_max_ms);
    let mut backoff = min;
    let mut announced_down = false;
    loop {
        match connect(&config).await {
            Ok(conn) => {
                backoff = min;
                set_healthy(&shared, true, announced_down.then_some("connected again"));
                let err = serve(conn, &mut rx).await;
                let Err(e) = err else { return }; // every limiter handle dropped
                set_healthy(&shared, false, Some(&format!("connection lost: {e}")));
                announced_down = true;
            }
            Err(e) => {
                if !announced_down {
                    set_healthy(
                        &shared,
                        false,
                        Some(&format!("cannot connect to {}: {e}", config.address)),
                    );
                    announced_down = true;
                }
            }
        }
        // Back off, failing queued checks so their callers decide locally.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                job = rx.recv() => if job.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(max);
    }
}

fn set_healthy(shared: &Shared, healthy: bool, why: Option<&str>) {
    shared.healthy.store(healthy, Ordering::Release);
    shared.gauge.set(i64::from(!healthy));
    let Some(why) = why else { return };
    let (kind, severity, message) = if healthy {
        (
            "redis_recovered",
            Severity::Info,
            format!("fleet rate limits use Redis again ({why})"),
        )
    } else {
        (
            "redis_fallback",
            Severity::Critical,
            format!("fleet rate limits fell back to local limits: {why}"),
        )
    };
    tracing::warn!(alert = kind, "{message}");
    if let Some(alerts) = &shared.alerts {
        alerts.raise(AlertEvent {
            kind: kind.into(),
            severity,
            message,
        });
    }
}

async fn connect(config: &RedisLimitConfig) -> io::Result<Conn> {
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(config.address.as_str()))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    let mut conn = Conn {
        reader: BufReader::new(r),
        writer: w,
        sha: String::new(),
        timeout: connect_timeout,
    };
    conn.sha = load_script(&mut conn).await?;
    conn.timeout = Duration::from_millis(config.timeout_ms.saturating_mul(4).max(50));
    Ok(conn)
}

async fn load_script(conn: &mut Conn) -> io::Result<String> {
    let mut out = Vec::new();
    resp::encode(&[b"SCRIPT", b"LOAD", SCRIPT.as_bytes()], &mut out);
    match round_trip(conn, &out, 1).await?.pop() {
        Some(Value::Bulk(Some(sha))) => String::from_utf8(sha).map_err(|_| bad("sha")),
        other => Err(bad(&format!("SCRIPT LOAD answered {other:?}"))),
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Writes `out` and reads `replies` values, all within the read deadline.
async fn round_trip(conn: &mut Conn, out: &[u8], replies: usize) -> io::Result<Vec<Value>> {
    let timeout = conn.timeout;
    let io = async {
        conn.writer.write_all(out).await?;
        conn.writer.flush().await?;
        let mut values = Vec::with_capacity(replies);
        for _ in 0..replies {
            values.push(resp::read_value(&mut conn.reader).await?);
        }
        Ok(values)
    };
    tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "redis answered too slowly"))?
}

fn encode_check(job: &Job, sha_or_script: &str, eval: bool, out: &mut Vec<u8>) {
    let interval = job.interval_us.to_string();
    let capacity = job.capacity_us.to_string();
    let cmd: &[u8] = if eval { b"EVAL" } else { b"EVALSHA" };
    resp::encode(
        &[
            cmd,
            sha_or_script.as_bytes(),
            b"1",
            job.key.as_bytes(),
            interval.as_bytes(),
            capacity.as_bytes(),
        ],
        out,
    );
}

/// Serves checks until the connection fails (Err) or the channel closes (Ok).
async fn serve(mut conn: Conn, rx: &mut mpsc::Receiver<Job>) -> io::Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let Some(first) = rx.recv().await else {
            return Ok(());
        };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = run_batch(&mut conn, &mut batch).await;
        // Jobs still in the batch got no answer; dropping them makes their
        // callers fall back.
        batch.clear();
        result?;
    }
}

async fn run_batch(conn: &mut Conn, batch: &mut Vec<Job>) -> io::Result<()> {
    let mut out = Vec::new();
    for job in batch.iter() {
        encode_check(job, &conn.sha, false, &mut out);
    }
    let replies = round_trip(conn, &out, batch.len()).await?;
    let mut retry = Vec::new();
    for (job, reply) in batch.drain(..).zip(replies) {
        match reply {
            Value::Error(e) if e.starts_with("NOSCRIPT") => retry.push(job),
            other => answer(job, &other),
        }
    }
    if retry.is_empty() {
        return Ok(());
    }
    // The script cache was flushed (restart, SCRIPT FLUSH): EVAL the source,
    // which also caches it again for the next EVALSHA.
    let mut out = Vec::new();
    for job in &retry {
        encode_check(job, SCRIPT, true, &mut out);
    }
    let replies = round_trip(conn, &out, retry.len()).await?;
    for (job, reply) in retry.into_iter().zip(replies) {
        answer(job, &reply);
    }
    Ok(())
}

/// Sends the decision; a reply we cannot read sends nothing (caller falls back).
fn answer(job: Job, reply: &Value) {
    let decision = match reply {
        Value::Array(Some(items)) => match items.as_slice() {
            [Value::Int(1), _] => Some(Decision::Allow),
            [Value::Int(0), Value::Int(ms)] => Some(Decision::Deny {
                retry_after_secs: retry_after_secs(Duration::from_millis((*ms).max(0) as u64)),
            }),
            _ => None,
        },
        _ => None,
    };
    match decision {
        Some(d) => {
            let _ = job.reply.send(d);
        }
        None => tracing::warn!(reply = ?reply, "unexpected reply from the Redis rate-limit script"),
    }
}
