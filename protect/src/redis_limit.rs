//! Fleet-wide rate limits: GCRA in Redis through one atomic Lua script
//! (`redis::Script`: EVALSHA, loaded again when the script cache was
//! flushed), on one multiplexed connection (`redis::aio::ConnectionManager`:
//! concurrent checks are pipelined), for the routes that ask for it. The local limiter ([`super::ratelimit`]) stays in front; this
//! check runs only for requests it allowed.
//!
//! Failure policy (never fail open silently, never block everyone): while
//! Redis is unreachable, slow (no answer within `timeout_ms`) or answers
//! errors, each node enforces the fleet rate itself with a local keyed
//! limiter, sets the `rampart_ratelimit_redis_fallback` gauge to 1 and raises
//! a `redis_fallback` alert; a background worker probes (PING, which makes
//! the connection manager reconnect) with exponential backoff and raises
//! `redis_recovered` when it is back.

mod worker;

use crate::invalid::Invalid;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use rampart_ops::config::Bounds;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use redis::Script;

use super::alert::AlertSink;
use super::client_key::{ClientKey, KeyPrefixes};
use super::ratelimit::{Decision, KeyedLimit, Rate};

/// Gauge set to 1 while the fleet limiter runs on local limits only.
pub const FALLBACK_METRIC: &str = "rampart_ratelimit_redis_fallback";
/// Fleet decisions by source (`redis`, `fallback`) and result.
pub const DECISIONS_METRIC: &str = "rampart_ratelimit_fleet_decisions_total";

/// `[fleet]` of `[protect]` in the proxy config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisLimitConfig {
    /// `host:port` of the Redis server.
    pub address: String,
    /// Budget for one fleet check on the request path; slower = fallback.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Prefix of every key this proxy writes.
    pub key_prefix: String,
    /// Fleet limit for routes without their own entry; none = only the
    /// routes listed in `routes` are fleet-limited.
    pub default: Option<Rate>,
    pub routes: BTreeMap<String, Rate>,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Checks waiting for the Redis connection before new ones fall back.
    pub queue: usize,
}

impl Default for RedisLimitConfig {
    fn default() -> Self {
        let p = KeyPrefixes::default();
        Self {
            address: "127.0.0.1:6379".into(),
            timeout_ms: 25,
            connect_timeout_ms: 500,
            backoff_min_ms: 100,
            backoff_max_ms: 5_000,
            key_prefix: "rampart:rl:".into(),
            default: None,
            routes: BTreeMap::new(),
            ipv4_prefix: p.ipv4_prefix,
            ipv6_prefix: p.ipv6_prefix,
            queue: 4_096,
        }
    }
}

/// `timeout_ms`, `connect_timeout_ms`: 1 ms to one minute.
pub const TIMEOUT_MS: Bounds = Bounds::new(1, 60_000, "ms");
/// `backoff_min_ms`, `backoff_max_ms`: 1 ms to one hour (the backoff doubles up to the maximum).
pub const BACKOFF_MS: Bounds = Bounds::new(1, 3_600_000, "ms");
/// `queue`: 1 to a million checks in flight (a semaphore's permits).
pub const QUEUE: Bounds = Bounds::new(1, 1_000_000, "");

impl RedisLimitConfig {
    /// Field-named errors for values serde accepts but that make no sense, with the key path
    /// apart (a route's name is one key).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.check_fields()
            .map_err(|e| Invalid::under(&["fleet"], e))?;
        for (name, rate) in &self.routes {
            rate.validate(&format!("fleet.routes.{name}"))
                .map_err(|e| Invalid::under(&["fleet", "routes", name], e))?;
        }
        Ok(())
    }

    /// Every field but the routes' limits.
    fn check_fields(&self) -> Result<(), String> {
        let what = "fleet";
        if self
            .address
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("{what}.address must be host:port"));
        }
        TIMEOUT_MS.check(&format!("{what}.timeout_ms"), self.timeout_ms)?;
        TIMEOUT_MS.check(
            &format!("{what}.connect_timeout_ms"),
            self.connect_timeout_ms,
        )?;
        BACKOFF_MS.check(&format!("{what}.backoff_min_ms"), self.backoff_min_ms)?;
        BACKOFF_MS.check(&format!("{what}.backoff_max_ms"), self.backoff_max_ms)?;
        if self.backoff_max_ms < self.backoff_min_ms {
            return Err(format!(
                "{what}.backoff_min_ms must be >= 1 and <= backoff_max_ms"
            ));
        }
        if self
            .key_prefix
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err(format!(
                "{what}.key_prefix must not contain spaces or control characters"
            ));
        }
        QUEUE.check(&format!("{what}.queue"), self.queue)?;
        if let Some(rate) = &self.default {
            rate.validate(&format!("{what}.default"))?;
        }
        KeyPrefixes {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
        .validate(what)
    }
}

/// One fleet limit: its Redis arguments and its local stand-in.
struct FleetLimit {
    name: String,
    interval_us: u64,
    capacity_us: u64,
    shadow: KeyedLimit,
}

impl FleetLimit {
    fn new(name: &str, rate: Rate, what: &str) -> Result<Self, String> {
        let interval_us = (rate.emission_interval().as_micros() as u64).max(1);
        Ok(Self {
            name: name.to_string(),
            interval_us,
            capacity_us: interval_us.saturating_mul(u64::from(rate.burst())),
            shadow: KeyedLimit::new(rate, what)?,
        })
    }
}

/// Shared state between the limiter and its worker.
pub(crate) struct Shared {
    healthy: AtomicBool,
    gauge: IntGauge,
    alerts: Option<Arc<dyn AlertSink>>,
    /// The connection, once the worker made it (a clone is a handle to the
    /// same multiplexed connection).
    conn: ArcSwapOption<ConnectionManager>,
}

/// The task that makes the Redis connection, watches its health and brings
/// it back; ends when the limiter is dropped.
pub struct FleetWorker {
    config: RedisLimitConfig,
    shared: Arc<Shared>,
    /// Checks that failed on Redis (error or too slow): probe the connection.
    suspect: mpsc::Receiver<()>,
}

impl FleetWorker {
    pub async fn run(self) {
        worker::run(self.config, self.shared, self.suspect).await
    }
}

/// The fleet-wide limiter; cheap to share (`Arc`).
pub struct FleetLimiter {
    shared: Arc<Shared>,
    script: Script,
    /// Checks waiting on Redis at once (`queue`); more fall back at once.
    in_flight: Semaphore,
    suspect: mpsc::Sender<()>,
    default: Option<FleetLimit>,
    routes: HashMap<String, FleetLimit>,
    prefixes: KeyPrefixes,
    key_prefix: String,
    timeout: Duration,
    decisions: IntCounterVec,
}

impl std::fmt::Debug for FleetLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetLimiter")
            .field("fallback", &self.in_fallback())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FleetLimiter {
    /// [`Self::new`], with the worker spawned on the current tokio runtime.
    pub fn start(
        config: &RedisLimitConfig,
        registry: &Registry,
        alerts: Option<Arc<dyn AlertSink>>,
    ) -> Result<Self, String> {
        let (limiter, worker) = Self::new(config, registry, alerts)?;
        tokio::spawn(worker.run());
        Ok(limiter)
    }

    /// Validates and registers its metrics in `registry`. The limiter is in
    /// fallback until its worker (run it on any tokio runtime) connects.
    pub fn new(
        config: &RedisLimitConfig,
        registry: &Registry,
        alerts: Option<Arc<dyn AlertSink>>,
    ) -> Result<(Self, FleetWorker), String> {
        config.validate().map_err(|e| e.message)?;
        let gauge = IntGauge::new(
            FALLBACK_METRIC,
            "1 while fleet rate limits run on local limits only",
        )
        .map_err(|e| e.to_string())?;
        let decisions = IntCounterVec::new(
            Opts::new(
                DECISIONS_METRIC,
                "Fleet rate-limit decisions by source and result",
            ),
            &["source", "result"],
        )
        .map_err(|e| e.to_string())?;
        for metric in [
            Box::new(gauge.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(decisions.clone()),
        ] {
            registry
                .register(metric)
                .map_err(|e| format!("metrics: {e}"))?;
        }
        gauge.set(1);
        let default = match &config.default {
            Some(rate) => Some(FleetLimit::new("default", *rate, "fleet.default")?),
            None => None,
        };
        let mut routes = HashMap::new();
        for (name, rate) in &config.routes {
            routes.insert(
                name.clone(),
                FleetLimit::new(name, *rate, &format!("fleet.routes.{name}"))?,
            );
        }
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(false),
            gauge,
            alerts,
            conn: ArcSwapOption::empty(),
        });
        let (suspect, suspect_rx) = mpsc::channel(1);
        let worker = FleetWorker {
            config: config.clone(),
            shared: shared.clone(),
            suspect: suspect_rx,
        };
        let limiter = Self {
            shared,
            script: Script::new(worker::SCRIPT),
            in_flight: Semaphore::new(config.queue),
            suspect,
            default,
            routes,
            prefixes: KeyPrefixes {
                ipv4_prefix: config.ipv4_prefix,
                ipv6_prefix: config.ipv6_prefix,
            },
            key_prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            decisions,
        };
        Ok((limiter, worker))
    }

    /// True while decisions are made locally (Redis down or slow).
    pub fn in_fallback(&self) -> bool {
        !self.shared.healthy.load(Ordering::Acquire)
    }

    /// Whether `route` has a fleet limit at all (skip the call otherwise).
    pub fn applies_to(&self, route: Option<&str>) -> bool {
        self.limit_for(route).is_some()
    }

    fn limit_for(&self, route: Option<&str>) -> Option<&FleetLimit> {
        route
            .and_then(|r| self.routes.get(r))
            .or(self.default.as_ref())
    }

    /// Checks one request (call it after the local limiter allowed it).
    /// Waits at most `timeout_ms`; holds no lock across the wait.
    pub async fn check(&self, route: Option<&str>, client: IpAddr) -> Decision {
        let Some(limit) = self.limit_for(route) else {
            return Decision::Allow;
        };
        let key = self.prefixes.key(client);
        if let Some(decision) = self.ask_redis(limit, &key).await {
            self.count("redis", decision);
            return decision;
        }
        // Fallback, too many checks waiting, Redis error or too slow: decide locally.
        let decision = limit.shadow.check(&key);
        self.count("fallback", decision);
        decision
    }

    /// The fleet decision from Redis, or `None` to decide locally. A failed
    /// or late answer asks the worker to probe the connection.
    async fn ask_redis(&self, limit: &FleetLimit, key: &ClientKey) -> Option<Decision> {
        if self.in_fallback() {
            return None;
        }
        let mut conn = ConnectionManager::clone(self.shared.conn.load().as_deref()?);
        let _permit = self.in_flight.try_acquire().ok()?;
        let mut call = self
            .script
            .key(format!("{}{}:{}", self.key_prefix, limit.name, key));
        call.arg(limit.interval_us).arg(limit.capacity_us);
        let reply = tokio::time::timeout(self.timeout, call.invoke_async::<(i64, i64)>(&mut conn));
        let failure = match reply.await {
            Ok(Ok(reply)) => match worker::decision(reply) {
                Some(decision) => return Some(decision),
                None => format!("unexpected reply {reply:?} from the rate-limit script"),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        tracing::debug!(error = %failure, "fleet check decided locally");
        // Full: a probe is already asked for.
        let _ = self.suspect.try_send(());
        None
    }

    fn count(&self, source: &str, decision: Decision) {
        let result = if decision.is_allow() { "allow" } else { "deny" };
        self.decisions.with_label_values(&[source, result]).inc();
    }

    /// Decisions made so far by `source` (`redis` or `fallback`).
    pub fn decisions(&self, source: &str) -> u64 {
        ["allow", "deny"]
            .iter()
            .filter_map(|r| {
                self.decisions
                    .get_metric_with_label_values(&[source, r])
                    .ok()
            })
            .map(|c| c.get())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_fields() {
        assert!(toml::from_str::<RedisLimitConfig>("adress = \"x:1\"").is_err());
        let c: RedisLimitConfig = toml::from_str("address = \"nohost\"").unwrap();
        assert_eq!(c.validate().unwrap_err().path, ["fleet", "address"]);
        let c: RedisLimitConfig = toml::from_str("[routes.api]\nrequests = 0\n").unwrap();
        let e = c.validate().unwrap_err();
        assert!(
            e.message.starts_with("fleet.routes.api.requests = 0"),
            "{e}"
        );
        assert_eq!(e.path, ["fleet", "routes", "api", "requests"]);
        let c: RedisLimitConfig =
            toml::from_str("backoff_min_ms = 10\nbackoff_max_ms = 5").unwrap();
        assert!(c.validate().is_err());
        let c: RedisLimitConfig =
            toml::from_str("address = \"[::1]:6379\"\n[routes.api]\nrequests = 10\n").unwrap();
        assert!(c.validate().is_ok());
    }
}
