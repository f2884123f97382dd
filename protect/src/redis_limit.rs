//! Fleet-wide rate limits: GCRA in Redis through one atomic Lua script
//! (EVALSHA, EVAL when the script cache was flushed), for the routes that
//! ask for it. The local limiter ([`super::ratelimit`]) stays in front; this
//! check runs only for requests it allowed.
//!
//! Failure policy (never fail open silently, never block everyone): while
//! Redis is unreachable, slow (no answer within `timeout_ms`) or answers
//! errors, each node enforces the fleet rate itself with a local keyed
//! limiter, sets the `rampart_ratelimit_redis_fallback` gauge to 1 and raises
//! a `redis_fallback` alert; a background worker reconnects with exponential
//! backoff and raises `redis_recovered` when it is back.

mod resp;
mod worker;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::alert::AlertSink;
use super::client_key::KeyPrefixes;
use super::ratelimit::{Decision, KeyedLimit, Rate};

/// Gauge set to 1 while the fleet limiter runs on local limits only.
pub const FALLBACK_METRIC: &str = "rampart_ratelimit_redis_fallback";
/// Fleet decisions by source (`redis`, `fallback`) and result.
pub const DECISIONS_METRIC: &str = "rampart_ratelimit_fleet_decisions_total";

/// `[rate_limit.fleet]` in the proxy config.
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

impl RedisLimitConfig {
    pub fn validate(&self) -> Result<(), String> {
        let what = "rate_limit.fleet";
        if self
            .address
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("{what}.address must be host:port"));
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(format!(
                "{what}.timeout_ms and connect_timeout_ms must be at least 1"
            ));
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
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
        if self.queue == 0 {
            return Err(format!("{what}.queue must be at least 1"));
        }
        if let Some(rate) = &self.default {
            rate.validate(&format!("{what}.default"))?;
        }
        for (name, rate) in &self.routes {
            rate.validate(&format!("{what}.routes.{name}"))?;
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

pub(crate) struct Job {
    key: String,
    interval_us: u64,
    capacity_us: u64,
    reply: oneshot::Sender<Decision>,
}

/// Shared state between the limiter and its worker.
pub(crate) struct Shared {
    healthy: AtomicBool,
    gauge: IntGauge,
    alerts: Option<Arc<dyn AlertSink>>,
}

/// The task that owns the Redis connection; ends when the limiter is dropped.
pub struct FleetWorker {
    config: RedisLimitConfig,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Job>,
}

impl FleetWorker {
    pub async fn run(self) {
        worker::run(self.config, self.shared, self.rx).await
    }
}

/// The fleet-wide limiter; cheap to share (`Arc`).
pub struct FleetLimiter {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
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
        config.validate()?;
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
            Some(rate) => Some(FleetLimit::new(
                "default",
                *rate,
                "rate_limit.fleet.default",
            )?),
            None => None,
        };
        let mut routes = HashMap::new();
        for (name, rate) in &config.routes {
            routes.insert(
                name.clone(),
                FleetLimit::new(name, *rate, &format!("rate_limit.fleet.routes.{name}"))?,
            );
        }
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(false),
            gauge,
            alerts,
        });
        let (tx, rx) = mpsc::channel(config.queue);
        let worker = FleetWorker {
            config: config.clone(),
            shared: shared.clone(),
            rx,
        };
        let limiter = Self {
            tx,
            shared,
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
        if !self.in_fallback() {
            let (reply, rx) = oneshot::channel();
            let job = Job {
                key: format!("{}{}:{}", self.key_prefix, limit.name, key),
                interval_us: limit.interval_us,
                capacity_us: limit.capacity_us,
                reply,
            };
            if self.tx.try_send(job).is_ok() {
                if let Ok(Ok(decision)) = tokio::time::timeout(self.timeout, rx).await {
                    self.count("redis", decision);
                    return decision;
                }
            }
            // Queue full, worker gone, Redis error or too slow: decide locally.
        }
        let decision = limit.shadow.check(&key);
        self.count("fallback", decision);
        decision
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
        assert!(c.validate().unwrap_err().contains("address"));
        let c: RedisLimitConfig = toml::from_str("[routes.api]\nrequests = 0\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .contains("rate_limit.fleet.routes.api"));
        let c: RedisLimitConfig =
            toml::from_str("backoff_min_ms = 10\nbackoff_max_ms = 5").unwrap();
        assert!(c.validate().is_err());
        let c: RedisLimitConfig =
            toml::from_str("address = \"[::1]:6379\"\n[routes.api]\nrequests = 10\n").unwrap();
        assert!(c.validate().is_ok());
    }
}
