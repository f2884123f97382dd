//! The task that makes the Redis connection (a `redis::aio::ConnectionManager`),
//! watches its health and brings it back: a PING when a check failed, PINGs
//! with exponential backoff while it is down (each makes the manager
//! reconnect). Health changes flip the shared flag and the gauge, and raise
//! alerts.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::{RedisLimitConfig, Shared};
use crate::alert::{AlertEvent, Severity};
use crate::ratelimit::{retry_after_secs, Decision};

pub(super) const SCRIPT: &str = include_str!("gcra.lua");

/// The script's reply: `{1, 0}` allowed, `{0, retry_after_ms}` denied.
pub(super) fn decision((allowed, retry_ms): (i64, i64)) -> Option<Decision> {
    match allowed {
        1 => Some(Decision::Allow),
        0 => Some(Decision::Deny {
            retry_after_secs: retry_after_secs(Duration::from_millis(retry_ms.max(0) as u64)),
        }),
        _ => None,
    }
}

/// Why Redis is not usable right now.
#[derive(Debug, thiserror::Error)]
enum Trouble {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("no answer within {0} ms")]
    Slow(u128),
}

struct Probe {
    client: Client,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
    /// Deadline of one PING (and of every command on the connection).
    deadline: Duration,
    conn: Option<ConnectionManager>,
}

impl Probe {
    /// Makes the connection if there is none yet, then PINGs it.
    async fn ping(&mut self) -> Result<ConnectionManager, Trouble> {
        let mut conn = match &self.conn {
            Some(conn) => conn.clone(),
            None => {
                let connect =
                    ConnectionManager::new_with_config(self.client.clone(), self.config.clone());
                let conn = tokio::time::timeout(self.connect_timeout, connect)
                    .await
                    .map_err(|_| Trouble::Slow(self.connect_timeout.as_millis()))??;
                self.conn = Some(conn.clone());
                conn
            }
        };
        let cmd = redis::cmd("PING");
        tokio::time::timeout(self.deadline, cmd.query_async::<String>(&mut conn))
            .await
            .map_err(|_| Trouble::Slow(self.deadline.as_millis()))??;
        Ok(conn)
    }
}

pub(super) async fn run(
    config: RedisLimitConfig,
    shared: Arc<Shared>,
    mut suspect: mpsc::Receiver<()>,
) {
    let min = Duration::from_millis(config.backoff_min_ms);
    let max = Duration::from_millis(config.backoff_max_ms);
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    // A command slower than this marks the connection down (one check waits
    // only `timeout_ms` and then decides locally).
    let deadline = Duration::from_millis(config.timeout_ms.saturating_mul(4).max(50));
    let client = match Client::open(format!("redis://{}/", config.address)) {
        Ok(client) => client,
        Err(e) => {
            let why = format!("bad address {}: {e}", config.address);
            set_healthy(&shared, false, Some(&why));
            return;
        }
    };
    let mut probe = Probe {
        client,
        // Reconnects are driven by the probes below (one attempt each, with our backoff).
        config: ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(0),
        connect_timeout,
        deadline,
        conn: None,
    };
    let mut backoff = min;
    let mut announced_down = false;
    loop {
        match probe.ping().await {
            Ok(conn) => {
                backoff = min;
                shared.conn.store(Some(Arc::new(conn)));
                set_healthy(&shared, true, announced_down.then_some("connected again"));
                // Healthy until a failed check's probe fails too.
                let why = loop {
                    if suspect.recv().await.is_none() {
                        return; // every limiter handle dropped
                    }
                    if let Err(e) = probe.ping().await {
                        break e;
                    }
                };
                set_healthy(&shared, false, Some(&format!("connection lost: {why}")));
                announced_down = true;
            }
            Err(e) => {
                if !announced_down {
                    let why = format!("cannot connect to {}: {e}", config.address);
                    set_healthy(&shared, false, Some(&why));
                    announced_down = true;
                }
            }
        }
        // Back off; checks decide locally meanwhile.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                msg = suspect.recv() => if msg.is_none() { return },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replies() {
        assert_eq!(decision((1, 0)), Some(Decision::Allow));
        assert_eq!(
            decision((0, 1500)),
            Some(Decision::Deny {
                retry_after_secs: 2
            })
        );
        assert_eq!(decision((0, -5)).map(|d| d.is_allow()), Some(false));
        assert_eq!(decision((7, 0)), None);
    }
}
