//! All protect building blocks assembled from one `[protect]` config, with
//! the request-path check the proxy calls in `request_filter` and one set of
//! background workers and sweepers ([`DefenceWorkers::into_tasks`], spawned
//! on a runtime that lives as long as the process).
//!
//! Settings and state are apart: [`DefenceSettings`] (limits, caps,
//! slow-client and alert settings) is built per config load and held by the
//! embedding process's config generation, so a reload swaps it with the rest
//! of the generation in one store; [`Defences`] holds what outlasts a reload
//! (counts of open connections and requests in flight, the Redis limiter,
//! the denial counter) and reads the settings of the request's generation,
//! or of the current one for a new connection.

use prometheus::Registry;
use serde::Deserialize;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::alert::{self, AlertConfig, AlertSink};
use super::conn_limit::{ConnCapFilter, ConnLimitConfig, ConnLimiter, ConnLimits};
use super::denial::{Denial, DenialReason, OnDenial};
use super::h2_flood::{self, H2Config};
use super::invalid::Invalid;
use super::ratelimit::{Decision, RateLimitConfig, RateLimiter};
use super::redis_limit::{FleetLimiter, RedisLimitConfig};
use super::report::{Denials, Reporting};
use super::shed::{InFlightGuard, LoadShedder, ShedConfig};
use super::slow_client::{SlowClientConfig, SlowClientGuard};
#[cfg(feature = "pingora")]
use pingora_core::protocols::{http::v2::server::H2Options, Stream, ALPN};

/// `[protect]` in the proxy config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectConfig {
    pub rate_limit: RateLimitConfig,
    /// Fleet-wide limits in Redis; absent = local limits only.
    pub fleet: Option<RedisLimitConfig>,
    pub connections: ConnLimitConfig,
    pub shed: ShedConfig,
    pub alerts: AlertConfig,
    pub h2: H2Config,
    pub slow_clients: SlowClientConfig,
}

impl ProtectConfig {
    /// Checks every section; `routes` are the route names of the config, so
    /// a limit for a route that does not exist is an error, not a no-op.
    /// The error carries the key path below `[protect]` apart from its message.
    pub fn validate(&self, routes: &[String]) -> Result<(), Invalid> {
        self.rate_limit.validate()?;
        let section = |name: &'static str| move |e| Invalid::under(&[name], e);
        self.connections
            .validate()
            .map_err(section("connections"))?;
        self.alerts.validate().map_err(section("alerts"))?;
        self.h2.validate().map_err(section("h2"))?;
        self.slow_clients
            .validate()
            .map_err(section("slow_clients"))?;
        self.shed.validate().map_err(section("shed"))?;
        let unknown = |section: [&str; 2], name: &String| -> Result<(), Invalid> {
            if routes.contains(name) {
                return Ok(());
            }
            let message = format!("{}.{name}: no route named {name:?}", section.join("."));
            Err(Invalid::under(&[section[0], section[1], name], message))
        };
        for name in self.rate_limit.routes.keys() {
            unknown(["rate_limit", "routes"], name)?;
        }
        if let Some(fleet) = &self.fleet {
            fleet.validate()?;
            for name in fleet.routes.keys() {
                unknown(["fleet", "routes"], name)?;
            }
        }
        Ok(())
    }
}

/// Why a request is refused, and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: DenialReason,
    /// 429 or 503.
    pub status: u16,
    /// Value of the `Retry-After` header.
    pub retry_after_secs: u64,
    /// Which limit: `shed`, `local` or `fleet`.
    pub scope: &'static str,
}

impl Refusal {
    fn limit(
        reason: DenialReason,
        status: u16,
        retry_after_secs: u64,
        scope: &'static str,
    ) -> Self {
        Refusal {
            reason,
            status,
            retry_after_secs,
            scope,
        }
    }

    /// Extra access-log fields for this refusal.
    pub fn log_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("rampart.denial.reason".into(), self.reason.as_str().into());
        m.insert("rampart.limit.scope".into(), self.scope.into());
        m.insert(
            "rampart.limit.retry_after".into(),
            self.retry_after_secs.into(),
        );
        m
    }
}

/// The settings of one `[protect]` config: limits, caps, slow-client and
/// alert settings, compiled once per load. They belong to the embedding
/// process's config generation (the edge's `Runtime`), so a reload changes
/// them together with everything else in one swap, and a request or
/// connection keeps the settings of the generation it started with.
///
/// The state the defences keep across reloads lives in [`Defences`] (open
/// connections, requests in flight, pending connection guards) or is shared
/// with the previous generation when the setting it belongs to is unchanged
/// (see [`Self::build`]).
#[derive(Debug)]
pub struct DefenceSettings {
    config: ProtectConfig,
    rate: Arc<RateLimiter>,
    conn: Arc<ConnLimits>,
    reporting: Arc<Reporting>,
}

impl DefenceSettings {
    /// Checks and compiles `config`; `routes` are the config's route names.
    /// With `previous` (a reload): `[h2]`, `[fleet]`, and the key prefixes
    /// and handshake grace of `[connections]` are bound at start (a change is
    /// an error naming the field); a rate limit whose rate is unchanged keeps
    /// its per-client buckets, a changed one starts fresh under its new rate
    /// (the same for the new-connection rate); an unchanged `[alerts]` keeps
    /// its alerter, a changed one gets a fresh one (windows and cool-downs
    /// start over). Returns the tasks to run once these settings are in force
    /// (the rate limiter's sweeper, a new alerter's worker); they end by
    /// themselves once the settings are dropped.
    pub fn build(
        config: &ProtectConfig,
        routes: Vec<String>,
        previous: Option<&DefenceSettings>,
    ) -> Result<(Arc<Self>, Vec<Task>), String> {
        config.validate(&routes).map_err(|e| e.message)?;
        if let Some(old) = previous.map(|p| &p.config) {
            if let Some(field) = h2_flood::changed_field(&old.h2, &config.h2) {
                return Err(format!(
                    "protect.h2.{field} is bound at start (the listeners' HTTP/2 settings): \
                     restart to change it"
                ));
            }
            if old.fleet != config.fleet {
                return Err(
                    "protect.fleet is bound at start (its Redis connection and metrics): \
                     restart to change it"
                        .into(),
                );
            }
            config.connections.check_bound_fields(&old.connections)?;
        }
        let rate = Arc::new(RateLimiter::carry(
            &config.rate_limit,
            previous.map(|p| &*p.rate),
        )?);
        let conn = Arc::new(ConnLimits::carry(
            &config.connections,
            previous.map(|p| &*p.conn),
        )?);
        let mut tasks: Vec<Task> = vec![Box::pin(rate.sweeper())];
        let kept = previous.filter(|p| p.config.alerts == config.alerts);
        let alerts = match kept.and_then(|p| p.reporting.alerts.clone()) {
            Some(alerts) => alerts,
            None => {
                let (alerts, worker) = alert::new(&config.alerts)?;
                tasks.push(Box::pin(worker.run()));
                alerts
            }
        };
        let settings = Self {
            config: config.clone(),
            rate,
            conn,
            reporting: Arc::new(Reporting::new(routes, Some(alerts))),
        };
        Ok((Arc::new(settings), tasks))
    }

    /// The `[protect]` these settings were built from.
    pub fn config(&self) -> &ProtectConfig {
        &self.config
    }

    /// The connection caps in force.
    pub fn conn_limits(&self) -> &Arc<ConnLimits> {
        &self.conn
    }

    /// Route names and alerter, for denial reporting.
    pub fn reporting(&self) -> &Arc<Reporting> {
        &self.reporting
    }
}

/// Where the defences read the settings in force for what has no request of
/// its own (a new connection, a denial to report): the embedding process's
/// current generation.
pub type SettingsSource = Arc<dyn Fn() -> Arc<DefenceSettings> + Send + Sync>;

/// The defences' state, shared by every request (`Arc`): in-flight and
/// open-connection counts, the Redis limiter, the denial counter. Their
/// settings are not held here but read from a [`DefenceSettings`]: the
/// request's own (`admit_request`) or the current one ([`SettingsSource`]).
#[derive(derive_more::Debug)]
pub struct Defences {
    #[debug(skip)]
    current: SettingsSource,
    shed: LoadShedder,
    pub fleet: Option<FleetLimiter>,
    pub conn_filter: Arc<ConnCapFilter>,
    pub denials: Denials,
    /// Bound at start: the listeners' HTTP/2 settings.
    h2: H2Config,
    /// Counts a connection-level denial and writes its event line.
    #[debug(skip)]
    on_conn_denial: OnDenial,
}

/// Writes one connection-level denial event line (the proxy's log sink).
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A background task (worker or sweeper) to run on a tokio runtime.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The alert worker, the Redis worker and the sweepers: spawn
/// [`DefenceWorkers::into_tasks`] on a tokio runtime that lives as long as
/// the process (the edge's control plane, where a reload spawns the new
/// settings' tasks too).
pub struct DefenceWorkers {
    tasks: Vec<Task>,
}

impl Defences {
    /// Builds the defences' state once per process. `first`: the settings of
    /// the first generation (binds `[h2]`, `[fleet]` and the connection key
    /// prefixes); `current`: the settings in force from then on (the
    /// process's generation store); `events`: where connection-level denial
    /// event lines go. Run `first`'s tasks with the returned workers.
    pub fn new(
        first: &DefenceSettings,
        registry: &Registry,
        events: EventSink,
        current: SettingsSource,
    ) -> Result<(Arc<Self>, DefenceWorkers), String> {
        let config = &first.config;
        let reporting = current.clone();
        let denials = Denials::new(registry, Arc::new(move || reporting().reporting.clone()))
            .map_err(|e| format!("metrics: {e}"))?;
        let mut tasks: Vec<Task> = Vec::new();
        let fleet = match &config.fleet {
            Some(fleet_config) => {
                let sink: Arc<dyn AlertSink> = denials.alert_sink();
                let (fleet, worker) = FleetLimiter::new(fleet_config, registry, Some(sink))?;
                tasks.push(Box::pin(worker.run()));
                Some(fleet)
            }
            None => None,
        };
        let conn_denials = denials.clone();
        let on_conn_denial: OnDenial = Arc::new(move |denial: Denial| {
            conn_denials.record(&denial);
            events(&denial.event_line());
        });
        let caps = current.clone();
        let limiter = Arc::new(ConnLimiter::following(
            config.connections.prefixes(),
            Arc::new(move || caps().conn.clone()),
        ));
        let grace = Duration::from_secs(config.connections.handshake_grace_secs);
        let conn_filter = Arc::new(ConnCapFilter::new(limiter, grace, on_conn_denial.clone()));
        tasks.push(Box::pin(conn_filter.sweeper(Duration::from_secs(10))));
        let defences = Arc::new(Self {
            current,
            shed: LoadShedder::new(),
            fleet,
            conn_filter,
            denials,
            h2: config.h2,
            on_conn_denial,
        });
        Ok((defences, DefenceWorkers { tasks }))
    }

    /// Defences with one fixed `[protect]` for the life of the process (tests,
    /// tools without reloads): its settings and their tasks included.
    pub fn fixed(
        config: &ProtectConfig,
        registry: &Registry,
        routes: Vec<String>,
        events: EventSink,
    ) -> Result<(Arc<Self>, DefenceWorkers), String> {
        let (settings, tasks) = DefenceSettings::build(config, routes, None)?;
        let fixed = settings.clone();
        let (defences, mut workers) =
            Self::new(&settings, registry, events, Arc::new(move || fixed.clone()))?;
        workers.add(tasks);
        Ok((defences, workers))
    }

    /// The settings in force now (for what has no request of its own).
    pub fn current(&self) -> Arc<DefenceSettings> {
        (self.current)()
    }

    /// The request-level admission check, for the start of `request_filter`
    /// (after the route is known): load shedding, then the local per-client
    /// limit, then the fleet limit. Keep the guard in the request context
    /// until the request ends. A refusal is already counted and alerted;
    /// the caller answers `status` with `Retry-After` and logs
    /// [`Refusal::log_fields`].
    ///
    /// `settings`: those of the generation the request runs under.
    ///
    /// The two halves can be called apart ([`Self::admit_local`], then
    /// [`Self::admit_fleet`] only when [`Self::has_fleet`]), so a caller
    /// without a fleet limit awaits nothing.
    pub async fn admit_request(
        &self,
        settings: &DefenceSettings,
        route: Option<&str>,
        client: IpAddr,
    ) -> Result<InFlightGuard, Refusal> {
        let guard = self.admit_local(settings, route, client)?;
        if self.has_fleet() {
            // Boxed: the Redis round trip's state would otherwise sit in every caller's future,
            // made and moved per request, fleet configured or not.
            Box::pin(self.admit_fleet(settings, route, client)).await?;
        }
        Ok(guard)
    }

    /// The local half of [`Self::admit_request`], which awaits nothing: load
    /// shedding, then the local per-client limit.
    pub fn admit_local(
        &self,
        settings: &DefenceSettings,
        route: Option<&str>,
        client: IpAddr,
    ) -> Result<InFlightGuard, Refusal> {
        let guard = match self.shed.try_acquire(&settings.config.shed) {
            Ok(g) => g,
            Err(shed) => {
                let refusal =
                    Refusal::limit(DenialReason::LoadShed, 503, shed.retry_after_secs, "shed");
                return Err(self.refuse(settings, route, client, refusal));
            }
        };
        if let Decision::Deny { retry_after_secs } = settings.rate.check(route, client) {
            let refusal = Refusal::limit(DenialReason::RateLimit, 429, retry_after_secs, "local");
            return Err(self.refuse(settings, route, client, refusal));
        }
        Ok(guard)
    }

    /// Whether a fleet limit is configured ([`Self::admit_fleet`] has work).
    pub fn has_fleet(&self) -> bool {
        self.fleet.is_some()
    }

    /// The fleet half of [`Self::admit_request`], after [`Self::admit_local`]
    /// admitted the request (drop its guard on a refusal); `Ok` at once
    /// without a fleet limit.
    pub async fn admit_fleet(
        &self,
        settings: &DefenceSettings,
        route: Option<&str>,
        client: IpAddr,
    ) -> Result<(), Refusal> {
        let Some(fleet) = &self.fleet else {
            return Ok(());
        };
        if let Decision::Deny { retry_after_secs } = fleet.check(route, client).await {
            let refusal = Refusal::limit(DenialReason::RateLimit, 429, retry_after_secs, "fleet");
            return Err(self.refuse(settings, route, client, refusal));
        }
        Ok(())
    }

    /// The `[h2]` section (bound at start): stream limits and the reset-flood threshold.
    pub fn h2_config(&self) -> &H2Config {
        &self.h2
    }

    /// h2 server settings: set `HttpProxy::h2_options = Some(defences.h2_options())`.
    #[cfg(feature = "pingora")]
    pub fn h2_options(&self) -> H2Options {
        h2_flood::h2_options(&self.h2)
    }

    /// Wraps a plaintext downstream stream (after TLS, before Pingora's HTTP
    /// layer) so an HTTP/2 rapid-reset flood closes the connection and is
    /// counted and logged as `h2_reset_flood`.
    #[cfg(feature = "pingora")]
    pub fn guard_h2(&self, stream: Stream) -> Stream {
        Box::new(h2_flood::ResetGuard::new(
            stream,
            self.h2.max_resets_per_sec,
            self.on_conn_denial.clone(),
        ))
    }

    /// Wraps a plaintext downstream stream with the whole-header deadline
    /// and minimum body rate (`header_timeout`, `body_rate` denials).
    #[cfg(feature = "pingora")]
    pub fn guard_slow_client(&self, stream: Stream) -> Stream {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().copied()));
        Box::new(self.slow_client_guard(stream, peer))
    }

    /// The whole-header deadline and minimum body rate around any plaintext
    /// stream. Inside a tracked connection (`conn_limit::slot::CURRENT`), the
    /// guard reports the connection's state to its slot under the per-IP cap
    /// (stalled connections are evicted first).
    /// `peer` is named in the denial events.
    pub fn slow_client_guard<S>(&self, stream: S, peer: Option<SocketAddr>) -> SlowClientGuard<S> {
        SlowClientGuard::new(
            stream,
            self.current().config.slow_clients,
            self.on_conn_denial.clone(),
        )
        .with_slot(super::conn_limit::slot::current())
        .with_peer(peer)
    }

    /// Counts a connection-level denial and writes its event line.
    pub fn on_conn_denial(&self) -> &OnDenial {
        &self.on_conn_denial
    }

    /// The stream guards for the plaintext stream of every new downstream
    /// connection (after TLS, before Pingora's HTTP layer): the slow-client
    /// guard always, the h2 reset-flood guard when ALPN chose h2. Pingora
    /// serves HTTP/2 only there unless h2c is turned on (the edge leaves it
    /// off; a server that turns it on adds `guard_h2` itself), and the flood
    /// watch follows HTTP/2 frames alone, so every other connection's reads
    /// and writes cross one stream layer fewer.
    #[cfg(feature = "pingora")]
    pub fn guard_stream(&self, stream: Stream) -> Stream {
        match stream.selected_alpn_proto() {
            Some(ALPN::H2) => self.guard_slow_client(self.guard_h2(stream)),
            _ => self.guard_slow_client(stream),
        }
    }

    /// Counts and alerts a refusal; returns it for the caller to answer.
    fn refuse(
        &self,
        settings: &DefenceSettings,
        route: Option<&str>,
        client: IpAddr,
        refusal: Refusal,
    ) -> Refusal {
        let mut denial = Denial::new(refusal.reason).detail(format!(
            "{} limit, client key {}",
            refusal.scope,
            settings.rate.key(client)
        ));
        denial.route = route.map(str::to_string);
        self.denials.record(&denial);
        refusal
    }
}

impl DefenceWorkers {
    /// More tasks to run (a generation's, see [`DefenceSettings::build`]).
    pub fn add(&mut self, tasks: Vec<Task>) {
        self.tasks.extend(tasks);
    }

    /// The tasks, to spawn on a runtime of the caller's; they end by themselves
    /// once the defences are dropped (a sweeper at its next tick).
    pub fn into_tasks(self) -> Vec<Task> {
        self.tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;
    use std::sync::Mutex;

    const CONFIG: &str = r#"
[rate_limit]
default = { requests = 100, burst = 100 }
[rate_limit.routes.login]
requests = 1
per_seconds = 60
burst = 2
[connections]
max_per_ip = 1
[shed]
max_in_flight = 2
[alerts.rules.rate_limit]
threshold = 100
window_secs = 60
cooldown_secs = 60
"#;

    fn routes() -> Vec<String> {
        vec!["login".into(), "api".into()]
    }

    /// Defences following a settings store of the test's own (the edge's is
    /// its generation), with the first settings' tasks among the workers.
    fn following(
        config: &ProtectConfig,
        events: EventSink,
    ) -> (Arc<Defences>, Arc<ArcSwap<DefenceSettings>>, DefenceWorkers) {
        let (first, tasks) = DefenceSettings::build(config, routes(), None).unwrap();
        let store = Arc::new(ArcSwap::new(first.clone()));
        let current = store.clone();
        let (d, mut workers) = Defences::new(
            &first,
            &Registry::new(),
            events,
            Arc::new(move || current.load_full()),
        )
        .unwrap();
        workers.add(tasks);
        (d, store, workers)
    }

    #[tokio::test]
    async fn admits_sheds_and_limits_in_order() {
        let config: ProtectConfig = toml::from_str(CONFIG).unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let (d, workers) = Defences::fixed(
            &config,
            &Registry::new(),
            routes(),
            Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())),
        )
        .unwrap();
        for task in workers.into_tasks() {
            tokio::spawn(task);
        }
        let s = d.current();

        let client: IpAddr = "10.1.1.1".parse().unwrap();
        let g1 = d.admit_request(&s, Some("login"), client).await.unwrap();
        let _g2 = d.admit_request(&s, Some("login"), client).await.unwrap();
        // Third in flight: shed before any limit is spent.
        let shed = d
            .admit_request(&s, Some("login"), client)
            .await
            .unwrap_err();
        assert_eq!(
            (shed.reason, shed.status, shed.scope),
            (DenialReason::LoadShed, 503, "shed")
        );
        drop(g1);
        // Burst 2 on login is spent: 429 with Retry-After.
        let limited = d
            .admit_request(&s, Some("login"), client)
            .await
            .unwrap_err();
        assert_eq!(
            (limited.reason, limited.status, limited.scope),
            (DenialReason::RateLimit, 429, "local")
        );
        assert!(limited.retry_after_secs >= 1);
        assert_eq!(limited.log_fields()["rampart.denial.reason"], "rate_limit");
        assert_eq!(d.denials.count(DenialReason::RateLimit, "login", "none"), 1);
        assert_eq!(d.denials.count(DenialReason::LoadShed, "login", "none"), 1);

        // Connection-level denial: counted and written as an event line.
        let peer = "10.1.1.1:1000".parse().unwrap();
        assert!(d.conn_filter.admit(peer));
        // Being served: not evictable, so the cap refuses the next one.
        let served = d.conn_filter.claim(peer).unwrap();
        served.slot().established();
        assert!(!d.conn_filter.admit("10.1.1.1:1001".parse().unwrap()));
        assert_eq!(
            d.denials.count(DenialReason::ConnCapPerIp, "none", "none"),
            1
        );
        let line = lines.lock().unwrap()[0].clone();
        assert!(
            line.contains(r#""rampart.denial.reason":"conn_cap_per_ip""#),
            "{line}"
        );
    }

    #[tokio::test]
    async fn a_request_keeps_its_generations_limits_and_state_carries_over() {
        let config: ProtectConfig = toml::from_str(CONFIG).unwrap();
        let (d, store, _workers) = following(&config, Arc::new(|_: &str| {}));
        let old = d.current();
        let client: IpAddr = "10.2.2.2".parse().unwrap();
        let held = d.admit_request(&old, Some("api"), client).await.unwrap();
        let peer: std::net::SocketAddr = "10.2.2.2:1000".parse().unwrap();
        assert!(d.conn_filter.admit(peer));
        let open = d.conn_filter.claim(peer).unwrap();
        open.slot().established();

        // Shedding at 1 in flight, login burst 3, and two connections per IP (was one).
        let mut next = config.clone();
        next.shed.max_in_flight = 1;
        next.rate_limit.routes.get_mut("login").unwrap().burst = Some(3);
        next.connections.max_per_ip = 2;
        let (new, tasks) = DefenceSettings::build(&next, routes(), Some(&old)).unwrap();
        assert_eq!(
            tasks.len(),
            1,
            "the new limiter's sweeper, the alerter kept"
        );
        // Not in force yet: the defences read nothing of it.
        assert!(!d.conn_filter.admit("10.2.2.2:1001".parse().unwrap()));
        store.store(new.clone());
        // The open connection counts under the new cap: one more, not two.
        let second: std::net::SocketAddr = "10.2.2.2:1001".parse().unwrap();
        assert!(d.conn_filter.admit(second));
        let second = d.conn_filter.claim(second).unwrap();
        second.slot().established();
        assert!(!d.conn_filter.admit("10.2.2.2:1002".parse().unwrap()));
        // The held request stays counted under the new shedding limit...
        let shed = d
            .admit_request(&new, Some("api"), client)
            .await
            .unwrap_err();
        assert_eq!(shed.reason, DenialReason::LoadShed);
        // ...while a request of the old generation still runs under its limit.
        drop(d.admit_request(&old, Some("api"), client).await.unwrap());
        drop(held);
        for _ in 0..3 {
            drop(d.admit_request(&new, Some("login"), client).await.unwrap());
        }
        let limited = d
            .admit_request(&new, Some("login"), client)
            .await
            .unwrap_err();
        assert_eq!(limited.reason, DenialReason::RateLimit);

        // Unchanged [rate_limit]: its buckets carry over (login is spent).
        let (same, tasks) = DefenceSettings::build(&next, routes(), Some(&new)).unwrap();
        assert_eq!(tasks.len(), 1, "the sweeper of the new generation");
        assert!(d.admit_request(&same, Some("login"), client).await.is_err());
        drop((open, second));
    }

    #[test]
    fn a_reload_that_changes_a_bound_field_is_refused() {
        let config: ProtectConfig = toml::from_str(CONFIG).unwrap();
        let (old, _) = DefenceSettings::build(&config, routes(), None).unwrap();
        let build = |c: &ProtectConfig, routes: Vec<String>| {
            DefenceSettings::build(c, routes, Some(&old)).err().unwrap()
        };
        let mut bad = config.clone();
        bad.connections.ipv4_prefix = 24;
        let err = build(&bad, routes());
        assert!(err.contains("protect.connections.ipv4_prefix"), "{err}");
        let mut bad = config.clone();
        bad.h2.max_resets_per_sec += 1;
        let err = build(&bad, routes());
        assert!(err.contains("protect.h2.max_resets_per_sec"), "{err}");
        let err = build(&config, vec!["api".into()]);
        assert!(err.contains("rate_limit.routes.login"), "{err}");
    }

    #[test]
    fn config_errors_name_the_field() {
        let c: ProtectConfig =
            toml::from_str("[rate_limit.routes.nosuch]\nrequests = 1\n").unwrap();
        assert!(c
            .validate(&routes())
            .unwrap_err()
            .message
            .contains("rate_limit.routes.nosuch"));
        assert!(toml::from_str::<ProtectConfig>("[ratelimit]\n").is_err());
        let c: ProtectConfig = toml::from_str(
            "[fleet]\naddress = \"127.0.0.1:1\"\n[fleet.routes.api]\nrequests = 5\n",
        )
        .unwrap();
        assert!(c.validate(&routes()).is_ok());
        assert!(ProtectConfig::default().validate(&[]).is_ok());
    }

    /// Route names are the operator's own strings: a dotted one stays one key of the path.
    #[test]
    fn config_errors_keep_a_dotted_route_name_whole_in_the_path() {
        let names = ["api.v1".to_string()];
        let path = |text: &str| {
            let c: ProtectConfig = toml::from_str(text).unwrap();
            let e = c.validate(&names).unwrap_err();
            assert!(e.message.starts_with(&e.path.join(".")), "{e:?}");
            e.path
        };
        let limit = "[rate_limit.routes.\"api.v1\"]\nrequests = 0\n";
        assert_eq!(path(limit), ["rate_limit", "routes", "api.v1", "requests"]);
        let unknown = "[rate_limit.routes.\"a.b\"]\nrequests = 5\n";
        assert_eq!(path(unknown), ["rate_limit", "routes", "a.b"]);
        let fleet = "[fleet]\naddress = \"127.0.0.1:1\"\n[fleet.routes.\"api.v1\"]\nrequests = 5\nburst = 0\n";
        assert_eq!(path(fleet), ["fleet", "routes", "api.v1", "burst"]);
        let unknown = "[fleet]\naddress = \"127.0.0.1:1\"\n[fleet.routes.\"a.b\"]\nrequests = 5\n";
        assert_eq!(path(unknown), ["fleet", "routes", "a.b"]);
        assert_eq!(path("[fleet]\naddress = \"x\"\n"), ["fleet", "address"]);
        assert_eq!(
            path("[h2]\nmax_resets_per_sec = 0\n"),
            ["h2", "max_resets_per_sec"]
        );
    }

    /// Every number of `[protect]` at its extremes (0, i64::MAX, u64::MAX): accepted (0
    /// where it means "off") or refused with a message naming the field — never kept to
    /// overflow a deadline, a tokio interval or a semaphore later.
    #[test]
    fn every_number_at_its_extremes_is_refused_by_name_or_accepted() {
        // `[name]` with `base` (its required fields), `kv` replacing the one it names.
        fn table(name: &'static str, base: &'static [&'static str]) -> impl Fn(&str) -> String {
            move |kv: &str| {
                let key = kv.split(' ').next().unwrap_or_default();
                let mut fields: Vec<&str> = base
                    .iter()
                    .copied()
                    .filter(|f| f.split(' ').next() != Some(key))
                    .collect();
                fields.push(kv);
                format!("[{name}]\n{}\n", fields.join("\n"))
            }
        }
        let rule = || {
            table(
                "alerts.default_rule",
                &["threshold = 5", "window_secs = 60", "cooldown_secs = 60"],
            )
        };
        let section = |name: &'static str| table(name, &[]);
        let rate = |name: &'static str| table(name, &["requests = 10"]);
        let fleet = || table("fleet", &["address = \"127.0.0.1:6379\""]);
        type Place = Box<dyn Fn(&str) -> String>;
        let groups: [(Place, &str); 10] = [
            (Box::new(rate("rate_limit.default")), "requests per_seconds burst"),
            (Box::new(section("rate_limit")), "ipv4_prefix ipv6_prefix max_keys sweep_interval_secs"),
            (Box::new(fleet()), "timeout_ms connect_timeout_ms backoff_min_ms backoff_max_ms queue"),
            (Box::new(section("connections")), "max_connections max_per_ip handshake_grace_secs"),
            (Box::new(rate("connections.new_per_ip")), "requests burst"),
            (Box::new(section("shed")), "max_in_flight retry_after_secs"),
            (Box::new(section("alerts")), "timeout_ms queue event_cooldown_secs"),
            (Box::new(rule()), "threshold window_secs cooldown_secs"),
            (Box::new(section("h2")), "max_concurrent_streams max_header_list_size max_resets_per_sec max_pending_accept_reset_streams max_local_error_reset_streams"),
            (Box::new(section("slow_clients")), "header_timeout_secs min_body_rate body_rate_grace_secs max_head_bytes"),
        ];
        let cases = groups
            .iter()
            .flat_map(|(place, keys)| keys.split(' ').map(move |k| (k, place)));
        for (key, place) in cases {
            for value in ["0", "9223372036854775807", "18446744073709551615"] {
                let text = place(&format!("{key} = {value}"));
                let result = toml::from_str::<ProtectConfig>(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.validate(&[]).map_err(|e| e.message));
                match result {
                    Ok(()) => assert_eq!(value, "0", "{text} was accepted"),
                    Err(e) => assert!(e.contains(key), "{text}: {e}"),
                }
            }
        }
        // The bucket that would overflow the limiter's arithmetic (a year per token, a burst
        // of a billion) is refused by name, not built.
        let c: ProtectConfig = toml::from_str(
            "[rate_limit.default]\nrequests = 1\nper_seconds = 86400\nburst = 1000000000\n",
        )
        .unwrap();
        let e = c.validate(&[]).unwrap_err();
        assert!(e.message.contains("rate_limit.default.burst"), "{e}");
        assert_eq!(e.path, ["rate_limit", "default", "burst"]);
    }
}
