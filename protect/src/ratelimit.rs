//! Per-client rate limits (GCRA, governor) keyed by client address, one
//! limiter per route plus a global default, with burst. Keyed state stays
//! bounded: a periodic sweep drops idle keys (`retain_recent`) and resets a
//! limiter whose key count still exceeds `max_keys` (an address-spraying
//! flood), so memory cannot grow without bound.

use crate::invalid::Invalid;
use arc_swap::ArcSwap;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use rampart_ops::config::Bounds;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client_key::{ClientKey, KeyPrefixes};

/// A rate with burst: `requests` per `per_seconds`, up to `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(default = "one")]
    pub per_seconds: u32,
    /// Requests allowed back to back; defaults to `requests`.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Rate {
    pub const fn per_second(requests: u32, burst: u32) -> Self {
        Self {
            requests,
            per_seconds: 1,
            burst: Some(burst),
        }
    }

    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }

    /// Time between two conforming requests at the sustained rate.
    pub fn emission_interval(&self) -> Duration {
        let nanos = u64::from(self.per_seconds) * 1_000_000_000 / u64::from(self.requests.max(1));
        Duration::from_nanos(nanos.max(1))
    }

    /// `what` names the config field in the error message.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        REQUESTS.check(&format!("{what}.requests"), self.requests)?;
        PER_SECONDS.check(&format!("{what}.per_seconds"), self.per_seconds)?;
        REQUESTS.check(&format!("{what}.burst"), self.burst())?;
        // The limiter's bucket holds `burst` emission intervals (governor multiplies them in
        // nanoseconds): refilling it may take at most a year.
        let refill = u128::from(self.per_seconds) * u128::from(self.burst());
        if refill > u128::from(MAX_REFILL_SECS) * u128::from(self.requests) {
            return Err(format!(
                "{what}.burst = {}: a full bucket would take over a year to refill at {} per {} s",
                self.burst(),
                self.requests,
                self.per_seconds
            ));
        }
        Ok(())
    }

    fn quota(&self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.burst())?;
        Some(Quota::with_period(self.emission_interval())?.allow_burst(burst))
    }
}

/// `requests` and `burst`: 1 to a billion.
pub const REQUESTS: Bounds = Bounds::new(1, 1_000_000_000, "");
/// `per_seconds`: 1 s to one day.
pub const PER_SECONDS: Bounds = Bounds::new(1, 86_400, "s");
/// The longest a full bucket may take to refill (`burst` × `per_seconds` ÷ `requests`).
pub const MAX_REFILL_SECS: u64 = 365 * 86_400;
/// `max_keys`: 1 to ten million client keys.
pub const MAX_KEYS: Bounds = Bounds::new(1, 10_000_000, "");
/// `sweep_interval_secs`: 1 s to one hour.
pub const SWEEP_SECS: Bounds = Bounds::new(1, 3_600, "s");

/// `[rate_limit]` in the proxy config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Limit for routes without their own entry.
    pub default: Rate,
    /// Per-route limits by route name; they replace the default on that route.
    pub routes: BTreeMap<String, Rate>,
    pub ipv4_prefix: u8,
    /// IPv6 clients are keyed by this prefix (a /64 by default).
    pub ipv6_prefix: u8,
    /// Most client keys one limiter keeps after a sweep.
    pub max_keys: usize,
    /// How often idle keys are dropped.
    pub sweep_interval_secs: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let prefixes = KeyPrefixes::default();
        Self {
            enabled: true,
            default: Rate::per_second(100, 200),
            routes: BTreeMap::new(),
            ipv4_prefix: prefixes.ipv4_prefix,
            ipv6_prefix: prefixes.ipv6_prefix,
            max_keys: 100_000,
            sweep_interval_secs: 10,
        }
    }
}

impl RateLimitConfig {
    pub fn prefixes(&self) -> KeyPrefixes {
        KeyPrefixes {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }

    /// Field-named errors for values serde accepts but that make no sense, with the key path
    /// apart (a route's name is one key).
    pub fn validate(&self) -> Result<(), Invalid> {
        let section = |e| Invalid::under(&["rate_limit"], e);
        self.default
            .validate("rate_limit.default")
            .map_err(section)?;
        for (name, rate) in &self.routes {
            rate.validate(&format!("rate_limit.routes.{name}"))
                .map_err(|e| Invalid::under(&["rate_limit", "routes", name], e))?;
        }
        self.prefixes().validate("rate_limit").map_err(section)?;
        MAX_KEYS
            .check("rate_limit.max_keys", self.max_keys)
            .map_err(section)?;
        // A tokio interval adds its period to each tick's time: bounded, it cannot overflow.
        SWEEP_SECS
            .check("rate_limit.sweep_interval_secs", self.sweep_interval_secs)
            .map_err(section)?;
        Ok(())
    }
}

/// The outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Answer 429 with `Retry-After: retry_after_secs`.
    Deny {
        retry_after_secs: u64,
    },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// One keyed GCRA limiter; swapped for a fresh one when it holds too many keys.
pub(crate) struct KeyedLimit {
    rate: Rate,
    quota: Quota,
    limiter: ArcSwap<DefaultKeyedRateLimiter<ClientKey>>,
}

impl KeyedLimit {
    pub(crate) fn new(rate: Rate, what: &str) -> Result<Self, String> {
        rate.validate(what)?;
        let quota = rate
            .quota()
            .ok_or_else(|| format!("{what}: invalid rate"))?;
        Ok(Self {
            rate,
            quota,
            limiter: ArcSwap::from_pointee(DefaultKeyedRateLimiter::keyed(quota)),
        })
    }

    pub(crate) fn check(&self, key: &ClientKey) -> Decision {
        let limiter = self.limiter.load();
        match limiter.check_key(key) {
            Ok(()) => Decision::Allow,
            Err(not_until) => Decision::Deny {
                retry_after_secs: retry_after_secs(not_until.wait_time_from(limiter.clock().now())),
            },
        }
    }

    /// Drops idle keys; resets the limiter if it still holds over `max_keys`.
    pub(crate) fn sweep(&self, max_keys: usize) -> (usize, bool) {
        let limiter = self.limiter.load();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let len = limiter.len();
        if len > max_keys {
            self.limiter
                .store(Arc::new(DefaultKeyedRateLimiter::keyed(self.quota)));
            return (0, true);
        }
        (len, false)
    }

    pub(crate) fn rate(&self) -> Rate {
        self.rate
    }
}

/// What one sweep did (for a log line and gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys kept across all limiters.
    pub keys: usize,
    /// Limiters reset because they held more than `max_keys`.
    pub resets: usize,
}

/// Per-client limits for the whole process: the settings of one config
/// generation. The per-client buckets of each limit are shared with the
/// generation before it when that limit is unchanged ([`Self::carry`]).
#[derive(derive_more::Debug)]
pub struct RateLimiter {
    enabled: bool,
    prefixes: KeyPrefixes,
    #[debug("{:?}", default.rate())]
    default: Arc<KeyedLimit>,
    #[debug("{:?}", routes.keys().collect::<Vec<_>>())]
    routes: HashMap<String, Arc<KeyedLimit>>,
    max_keys: usize,
    sweep_interval: Duration,
    #[debug(skip)]
    resets: AtomicU64,
}

impl RateLimiter {
    pub fn new(config: &RateLimitConfig) -> Result<Self, String> {
        Self::carry(config, None)
    }

    /// The limits of `config`; a limit whose rate (and the key prefixes) is
    /// the same in `previous` keeps its per-client buckets, a changed one
    /// starts with fresh buckets under its new rate.
    pub fn carry(config: &RateLimitConfig, previous: Option<&RateLimiter>) -> Result<Self, String> {
        config.validate().map_err(|e| e.message)?;
        let previous = previous.filter(|p| p.prefixes == config.prefixes());
        let limit = |rate: Rate, old: Option<&Arc<KeyedLimit>>, what: &str| match old {
            Some(old) if old.rate() == rate => Ok(old.clone()),
            _ => KeyedLimit::new(rate, what).map(Arc::new),
        };
        let mut routes = HashMap::new();
        for (name, rate) in &config.routes {
            let old = previous.and_then(|p| p.routes.get(name));
            let what = format!("rate_limit.routes.{name}");
            routes.insert(name.clone(), limit(*rate, old, &what)?);
        }
        Ok(Self {
            enabled: config.enabled,
            prefixes: config.prefixes(),
            default: limit(
                config.default,
                previous.map(|p| &p.default),
                "rate_limit.default",
            )?,
            routes,
            max_keys: config.max_keys,
            sweep_interval: Duration::from_secs(config.sweep_interval_secs),
            resets: AtomicU64::new(0),
        })
    }

    /// The key this client is counted under.
    pub fn key(&self, client: IpAddr) -> ClientKey {
        self.prefixes.key(client)
    }

    /// Checks one request from `client` on `route` (the route's own limit, or
    /// the default). Never blocks, never allocates.
    pub fn check(&self, route: Option<&str>, client: IpAddr) -> Decision {
        if !self.enabled {
            return Decision::Allow;
        }
        let limit = route
            .and_then(|r| self.routes.get(r))
            .unwrap_or(&self.default);
        limit.check(&self.key(client))
    }

    /// Drops idle keys in every limiter; call periodically ([`Self::spawn_sweeper`]).
    pub fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        for limit in std::iter::once(&self.default).chain(self.routes.values()) {
            let (keys, reset) = limit.sweep(self.max_keys);
            report.keys += keys;
            report.resets += usize::from(reset);
        }
        self.resets
            .fetch_add(report.resets as u64, Ordering::Relaxed);
        report
    }

    /// Limiters reset so far because of `max_keys`.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }

    /// Runs [`Self::sweep`] every `sweep_interval_secs` until the limiter is
    /// dropped (the future holds only a weak ref, so a reload that replaces
    /// the limiter ends the old sweeper). Run it on any tokio runtime.
    pub fn sweeper(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak = Arc::downgrade(self);
        let period = self.sweep_interval;
        async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else {
                    return;
                };
                let report = limiter.sweep();
                if report.resets > 0 {
                    tracing::warn!(
                        resets = report.resets,
                        "rate limiter held more client keys than max_keys and was reset"
                    );
                }
            }
        }
    }

    /// [`Self::sweeper`] spawned on the current tokio runtime.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.sweeper())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn config(toml_text: &str) -> RateLimitConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn burst_then_deny_with_retry_after() {
        let rl = RateLimiter::new(&config(
            "default = { requests = 1, per_seconds = 10, burst = 3 }",
        ))
        .unwrap();
        for _ in 0..3 {
            assert_eq!(rl.check(None, ip("10.0.0.1")), Decision::Allow);
        }
        match rl.check(None, ip("10.0.0.1")) {
            Decision::Deny { retry_after_secs } => {
                assert!((9..=10).contains(&retry_after_secs), "{retry_after_secs}")
            }
            Decision::Allow => panic!("fourth request within burst 3 allowed"),
        }
        // Another client is not affected.
        assert!(rl.check(None, ip("10.0.0.2")).is_allow());
    }

    #[test]
    fn route_limit_replaces_default() {
        let rl = RateLimiter::new(&config(
            "default = { requests = 100, burst = 100 }\n\
             [routes.login]\nrequests = 1\nper_seconds = 60\nburst = 1\n",
        ))
        .unwrap();
        assert!(rl.check(Some("login"), ip("10.0.0.1")).is_allow());
        assert!(!rl.check(Some("login"), ip("10.0.0.1")).is_allow());
        // Unknown route and no route use the default.
        assert!(rl.check(Some("other"), ip("10.0.0.1")).is_allow());
        assert!(rl.check(None, ip("10.0.0.1")).is_allow());
    }

    #[test]
    fn ipv6_clients_in_one_64_share_a_limit() {
        let rl = RateLimiter::new(&config(
            "default = { requests = 1, per_seconds = 60, burst = 1 }",
        ))
        .unwrap();
        assert!(rl.check(None, ip("2001:db8:0:1::1")).is_allow());
        assert!(!rl.check(None, ip("2001:db8:0:1::ffff")).is_allow());
        assert!(rl.check(None, ip("2001:db8:0:2::1")).is_allow());
    }

    #[test]
    fn sweep_evicts_idle_keys_and_caps_key_count() {
        // 1000/s: a key is idle again 1 ms after its only request.
        let rl = RateLimiter::new(&config(
            "default = { requests = 1000, burst = 1 }\nmax_keys = 10",
        ))
        .unwrap();
        for i in 0..5u8 {
            rl.check(None, IpAddr::from([10, 0, 0, i]));
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(rl.sweep().keys, 0, "idle keys kept");

        // 50 keys still active (slow rate, used): over max_keys → reset.
        let slow = RateLimiter::new(&config(
            "default = { requests = 1, per_seconds = 60, burst = 2 }\nmax_keys = 10",
        ))
        .unwrap();
        for i in 0..50u8 {
            slow.check(None, IpAddr::from([10, 0, 1, i]));
        }
        let report = slow.sweep();
        assert_eq!(report.resets, 1);
        assert_eq!(slow.resets(), 1);
        // Under the cap, active keys survive the sweep.
        for i in 0..5u8 {
            slow.check(None, IpAddr::from([10, 0, 2, i]));
        }
        assert_eq!(slow.sweep(), SweepReport { keys: 5, resets: 0 });
    }

    #[test]
    fn disabled_allows_everything() {
        let rl = RateLimiter::new(&config(
            "enabled = false\ndefault = { requests = 1, per_seconds = 60, burst = 1 }",
        ))
        .unwrap();
        for _ in 0..10 {
            assert!(rl.check(None, ip("10.0.0.1")).is_allow());
        }
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(toml::from_str::<RateLimitConfig>("defualt = {requests = 1}").is_err());
        let bad = config("[routes.api]\nrequests = 0\n");
        let err = RateLimiter::new(&bad).unwrap_err();
        assert!(err.contains("rate_limit.routes.api.requests"), "{err}");
        let bad = config("ipv6_prefix = 0");
        assert!(RateLimiter::new(&bad).unwrap_err().contains("ipv6_prefix"));
        let bad = config("default = { requests = 5, burst = 0 }");
        assert!(RateLimiter::new(&bad).unwrap_err().contains("burst"));
    }

    #[test]
    fn carry_keeps_the_buckets_of_unchanged_limits_only() {
        let text = "default = { requests = 1, per_seconds = 60, burst = 1 }\n\
                    [routes.login]\nrequests = 1\nper_seconds = 60\nburst = 1\n";
        let old = RateLimiter::new(&config(text)).unwrap();
        assert!(old.check(None, ip("10.0.0.1")).is_allow());
        assert!(old.check(Some("login"), ip("10.0.0.1")).is_allow());
        let mut next = config(text);
        next.routes.get_mut("login").unwrap().burst = Some(2);
        let new = RateLimiter::carry(&next, Some(&old)).unwrap();
        // Default unchanged: its spent bucket carries over.
        assert!(!new.check(None, ip("10.0.0.1")).is_allow());
        // Login changed: fresh buckets under the new burst of 2.
        assert!(new.check(Some("login"), ip("10.0.0.1")).is_allow());
        assert!(new.check(Some("login"), ip("10.0.0.1")).is_allow());
        assert!(!new.check(Some("login"), ip("10.0.0.1")).is_allow());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[tokio::test]
    async fn sweeper_task_ends_with_its_limiter() {
        let rl = Arc::new(RateLimiter::new(&config("sweep_interval_secs = 1")).unwrap());
        let task = rl.spawn_sweeper();
        drop(rl);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
