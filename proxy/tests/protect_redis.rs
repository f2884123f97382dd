#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fleet-wide rate limits against a real redis-server on a loopback port:
//! the limit is shared between limiter instances, losing Redis falls back to
//! local limits and raises an alert, and Redis coming back is picked up.

use rampart_protect::alert::{AlertEvent, AlertSink};
use rampart_protect::ratelimit::{Decision, Rate};
use rampart_protect::redis_limit::{FleetLimiter, RedisLimitConfig, FALLBACK_METRIC};
use std::net::{IpAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--enable-debug-command",
                "local",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: run scripts/ensure-deps.sh");
        let redis = Redis { child, port };
        redis.wait_ready();
        redis
    }

    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Polls with PING until redis answers +PONG.
    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} not ready", self.port);
    }

    fn kill(mut self) -> u16 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<AlertEvent>>);

impl AlertSink for Recorded {
    fn raise(&self, event: AlertEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorded {
    fn kinds(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }
}

fn config(port: u16, burst: u32) -> RedisLimitConfig {
    let mut c: RedisLimitConfig = toml::from_str(&format!(
        "address = \"127.0.0.1:{port}\"\ntimeout_ms = 200\nbackoff_min_ms = 20\nbackoff_max_ms = 100\n"
    ))
    .unwrap();
    c.routes.insert(
        "api".into(),
        Rate {
            requests: 1,
            per_seconds: 60,
            burst: Some(burst),
        },
    );
    c
}

fn start(
    cfg: &RedisLimitConfig,
    alerts: Option<Arc<dyn AlertSink>>,
) -> (FleetLimiter, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let limiter = FleetLimiter::start(cfg, &registry, alerts).unwrap();
    (limiter, registry)
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn gauge(registry: &prometheus::Registry) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == FALLBACK_METRIC)
        .map(|f| f.get_metric()[0].get_gauge().get_value())
        .unwrap()
}

const CLIENT: &str = "198.51.100.7";

#[tokio::test]
async fn fleet_limit_is_shared_between_instances() {
    let redis = Redis::start();
    let cfg = config(redis.port, 6);
    let (a, _ra) = start(&cfg, None);
    let (b, _rb) = start(&cfg, None);
    wait_until("both connected", || !a.in_fallback() && !b.in_fallback()).await;

    let client: IpAddr = CLIENT.parse().unwrap();
    let mut allowed = 0;
    let mut denied = Vec::new();
    for i in 0..10 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        match limiter.check(Some("api"), client).await {
            Decision::Allow => allowed += 1,
            Decision::Deny { retry_after_secs } => denied.push(retry_after_secs),
        }
    }
    assert_eq!(allowed, 6, "burst 6 shared across two proxies");
    assert!(denied.iter().all(|&s| (1..=60).contains(&s)), "{denied:?}");
    assert_eq!(a.decisions("fallback") + b.decisions("fallback"), 0);
    // Other clients and routes without a fleet limit are not affected.
    assert!(a
        .check(Some("api"), "198.51.100.8".parse().unwrap())
        .await
        .is_allow());
    assert!(!a.applies_to(Some("static")));
    assert!(a.check(Some("static"), client).await.is_allow());
}

#[tokio::test]
async fn redis_down_falls_back_to_local_and_alerts_then_recovers() {
    let redis = Redis::start();
    let cfg = config(redis.port, 3);
    let recorded = Arc::new(Recorded::default());
    let (limiter, registry) = start(&cfg, Some(recorded.clone()));
    wait_until("connected", || !limiter.in_fallback()).await;
    assert_eq!(gauge(&registry), 0.0);
    let client: IpAddr = CLIENT.parse().unwrap();
    assert!(limiter.check(Some("api"), client).await.is_allow());

    let port = redis.kill();
    // The next checks notice the dead connection; then decisions are local.
    for _ in 0..3 {
        limiter.check(Some("api"), client).await;
    }
    wait_until("fallback", || limiter.in_fallback()).await;
    assert_eq!(gauge(&registry), 1.0);
    assert!(
        recorded.kinds().contains(&"redis_fallback".to_string()),
        "{:?}",
        recorded.kinds()
    );

    // Local limits still apply (burst 3 per client), not fail-open, not fail-closed.
    let fresh: IpAddr = "198.51.100.9".parse().unwrap();
    let results = limiter_checks(&limiter, fresh, 5).await;
    assert_eq!(results, [true, true, true, false, false]);
    assert!(limiter.decisions("fallback") >= 5);

    let _redis = Redis::start_on(port);
    wait_until("recovery", || !limiter.in_fallback()).await;
    assert_eq!(gauge(&registry), 0.0);
    assert_eq!(
        recorded.kinds().last().map(String::as_str),
        Some("redis_recovered")
    );
    // Fresh Redis (state lost): the shared limit is enforced again from Redis.
    let before = limiter.decisions("redis");
    assert!(limiter.check(Some("api"), fresh).await.is_allow());
    assert_eq!(limiter.decisions("redis"), before + 1);
}

#[tokio::test]
async fn unreachable_at_start_is_fallback_with_alert() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let recorded = Arc::new(Recorded::default());
    let (limiter, registry) = start(&config(port, 2), Some(recorded.clone()));
    wait_until("alert", || !recorded.kinds().is_empty()).await;
    assert_eq!(recorded.kinds(), ["redis_fallback"]);
    assert!(limiter.in_fallback());
    assert_eq!(gauge(&registry), 1.0);
    let client: IpAddr = CLIENT.parse().unwrap();
    assert!(limiter.check(Some("api"), client).await.is_allow());
    assert!(limiter.check(Some("api"), client).await.is_allow());
    assert!(!limiter.check(Some("api"), client).await.is_allow());
}

/// Blocks the redis server for `secs` (DEBUG SLEEP) from a side connection.
fn stall(port: u16, secs: f64) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cmd = format!("DEBUG SLEEP {secs}\r\n");
    s.write_all(cmd.as_bytes()).unwrap();
    // Return only once the server is really stalled (a PING goes unanswered): on a loaded
    // machine the DEBUG SLEEP may not have started yet when the caller's next check runs.
    let mut probe = TcpStream::connect(("127.0.0.1", port)).unwrap();
    probe
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut stalled = false;
    for _ in 0..100 {
        probe.write_all(b"PING\r\n").unwrap();
        let mut pong = [0u8; 7];
        if probe.read_exact(&mut pong).is_err() {
            stalled = true;
            break;
        }
    }
    assert!(stalled, "redis never stalled");
    std::thread::spawn(move || {
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap(); // +OK\r\n once the sleep is over
    })
}

#[tokio::test]
async fn slow_redis_falls_back_instead_of_waiting() {
    let redis = Redis::start();
    let recorded = Arc::new(Recorded::default());
    let (limiter, _registry) = start(&config(redis.port, 5), Some(recorded.clone()));
    wait_until("connected", || !limiter.in_fallback()).await;
    let client: IpAddr = CLIENT.parse().unwrap();
    assert!(limiter.check(Some("api"), client).await.is_allow());
    assert_eq!(limiter.decisions("fallback"), 0);

    let stalled = stall(redis.port, 1.5);
    // Answered locally after timeout_ms instead of waiting for Redis.
    assert!(limiter.check(Some("api"), client).await.is_allow());
    assert_eq!(limiter.decisions("fallback"), 1);
    wait_until("fallback alert", || {
        recorded.kinds().contains(&"redis_fallback".to_string())
    })
    .await;
    stalled.join().unwrap();
    wait_until("recovery", || !limiter.in_fallback()).await;
    assert_eq!(
        recorded.kinds().last().map(String::as_str),
        Some("redis_recovered")
    );
}

async fn limiter_checks(limiter: &FleetLimiter, client: IpAddr, n: usize) -> Vec<bool> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(limiter.check(Some("api"), client).await.is_allow());
    }
    out
}
