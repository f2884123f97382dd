//! All protect building blocks assembled from one `[protect]` config, with
//! the request-path check the proxy calls in `request_filter` and one set of
//! background workers and sweepers ([`DefenceWorkers::run`]; a Pingora
//! background service with feature `pingora`).

use arc_swap::ArcSwap;
use prometheus::Registry;
use serde::Deserialize;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::alert::{self, AlertConfig, AlertHandle, AlertSink};
use super::conn_limit::{ConnCapFilter, ConnLimitConfig, ConnLimiter};
use super::denial::{Denial, DenialReason, OnDenial};
use super::h2_flood::{self, H2Config};
use super::ratelimit::{Decision, KeyedLimit, RateLimitConfig, RateLimiter};
use super::redis_limit::{FleetLimiter, RedisLimitConfig};
use super::report::Denials;
use super::shed::{InFlightGuard, LoadShedder, ShedConfig};
use super::slow_client::{SlowClientConfig, SlowClientGuard};
#[cfg(feature = "pingora")]
use pingora_core::protocols::{http::v2::server::H2Options, Stream};

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
    pub fn validate(&self, routes: &[String]) -> Result<(), String> {
        self.rate_limit.validate()?;
        self.connections.validate()?;
        self.alerts.validate()?;
        self.h2.validate()?;
        self.slow_clients.validate()?;
        let unknown = |section: &str, name: &String| -> Result<(), String> {
            if routes.contains(name) {
                Ok(())
            } else {
                Err(format!("{section}.{name}: no route named {name:?}"))
            }
        };
        for name in self.rate_limit.routes.keys() {
            unknown("rate_limit.routes", name)?;
        }
        if let Some(fleet) = &self.fleet {
            fleet.validate()?;
            for name in fleet.routes.keys() {
                unknown("rate_limit.fleet.routes", name)?;
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

/// The assembled defences, shared by every request (`Arc`).
///
/// A SIGHUP reloads them ([`Self::prepare_reload`], then [`Self::commit`]):
/// load shedding and the connection caps change in place (what is in flight
/// or open stays counted); a changed `[rate_limit]` gets fresh limiters (its
/// per-client state starts empty; an unchanged one keeps its state); a
/// changed `new_per_ip` likewise; slow-client limits apply to connections
/// accepted after the reload; a changed `[alerts]` gets a fresh alerter
/// (windows and cool-downs start over). `[h2]`, `[fleet]`, and the key
/// prefixes and handshake grace of `[connections]` are bound at start: a
/// reload that changes them is refused, naming the field.
pub struct Defences {
    shed: LoadShedder,
    rate: ArcSwap<RateLimiter>,
    pub fleet: Option<FleetLimiter>,
    pub conn_filter: Arc<ConnCapFilter>,
    pub denials: Denials,
    h2: H2Config,
    slow_clients: ArcSwap<SlowClientConfig>,
    /// Counts a connection-level denial and writes its event line.
    on_conn_denial: OnDenial,
    /// The running `[protect]`, to tell what a reload changes.
    config: Mutex<ProtectConfig>,
}

/// A checked `[protect]` reload, applied all at once by [`Defences::commit`].
pub struct PreparedProtect {
    config: ProtectConfig,
    routes: Vec<String>,
    /// `None`: unchanged, the running limiters (and their state) stay.
    rate: Option<Arc<RateLimiter>>,
    conn_rate: Option<KeyedLimit>,
    alerts: Option<(AlertHandle, alert::AlertWorker)>,
}

impl std::fmt::Debug for Defences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defences")
            .field("rate", &self.rate)
            .field("fleet", &self.fleet)
            .finish()
    }
}

/// Writes one connection-level denial event line (the proxy's log sink).
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A background task (worker or sweeper) to run on a tokio runtime.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the alert worker, the Redis worker and the sweepers until shutdown.
/// Add it with `server.add_service(background_service("rampart protect", workers))`.
pub struct DefenceWorkers {
    tasks: Mutex<Vec<Task>>,
}

impl Defences {
    /// Builds everything once per config load. `routes`: the configured
    /// route names (bounded metric labels); `events`: where connection-level
    /// denial event lines go.
    pub fn new(
        config: &ProtectConfig,
        registry: &Registry,
        routes: Vec<String>,
        events: EventSink,
    ) -> Result<(Arc<Self>, DefenceWorkers), String> {
        config.validate(&routes)?;
        let (alerts, alert_worker) = alert::new(&config.alerts)?;
        let denials =
            Denials::new(registry, routes, Some(alerts)).map_err(|e| format!("metrics: {e}"))?;
        let rate = Arc::new(RateLimiter::new(&config.rate_limit)?);
        let mut tasks: Vec<Task> = vec![Box::pin(alert_worker.run()), Box::pin(rate.sweeper())];
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
        let limiter = Arc::new(ConnLimiter::new(&config.connections)?);
        let grace = Duration::from_secs(config.connections.handshake_grace_secs);
        let conn_filter = Arc::new(ConnCapFilter::new(limiter, grace, on_conn_denial.clone()));
        tasks.push(Box::pin(conn_filter.sweeper(Duration::from_secs(10))));
        let defences = Arc::new(Self {
            shed: LoadShedder::new(&config.shed),
            rate: ArcSwap::new(rate),
            fleet,
            conn_filter,
            denials,
            h2: config.h2,
            slow_clients: ArcSwap::from_pointee(config.slow_clients),
            on_conn_denial,
            config: Mutex::new(config.clone()),
        });
        Ok((
            defences,
            DefenceWorkers {
                tasks: Mutex::new(tasks),
            },
        ))
    }

    /// Checks and builds a reloaded `[protect]` without changing anything;
    /// `routes` are the new config's route names. A field that is bound at
    /// start and changed is an error naming it.
    pub fn prepare_reload(
        &self,
        config: &ProtectConfig,
        routes: Vec<String>,
    ) -> Result<PreparedProtect, String> {
        config.validate(&routes)?;
        let old = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
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
        let conn_rate = self
            .conn_filter
            .limiter()
            .prepare(&old.connections, &config.connections)?;
        let rate = match old.rate_limit == config.rate_limit {
            true => None,
            false => Some(Arc::new(RateLimiter::new(&config.rate_limit)?)),
        };
        let alerts = match old.alerts == config.alerts {
            true => None,
            false => Some(alert::new(&config.alerts)?),
        };
        Ok(PreparedProtect {
            config: config.clone(),
            routes,
            rate,
            conn_rate,
            alerts,
        })
    }

    /// Swaps a prepared reload in. Returns the background tasks of what was
    /// replaced (a new limiter's sweeper, a new alerter's worker) for the
    /// caller to spawn; the old ones end once the old parts are dropped.
    pub fn commit(&self, p: PreparedProtect) -> Vec<Task> {
        let mut tasks: Vec<Task> = Vec::new();
        if let Some(rate) = p.rate {
            tasks.push(Box::pin(rate.sweeper()));
            self.rate.store(rate);
        }
        if let Some((handle, worker)) = p.alerts {
            tasks.push(Box::pin(worker.run()));
            self.denials.set_alerts(Some(handle));
        }
        self.conn_filter
            .limiter()
            .set(&p.config.connections, p.conn_rate);
        self.shed.set(&p.config.shed);
        self.slow_clients.store(Arc::new(p.config.slow_clients));
        self.denials.set_routes(p.routes);
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = p.config;
        tasks
    }

    /// The request-level admission check, for the start of `request_filter`
    /// (after the route is known): load shedding, then the local per-client
    /// limit, then the fleet limit. Keep the guard in the request context
    /// until the request ends. A refusal is already counted and alerted;
    /// the caller answers `status` with `Retry-After` and logs
    /// [`Refusal::log_fields`].
    pub async fn admit_request(
        &self,
        route: Option<&str>,
        client: IpAddr,
    ) -> Result<InFlightGuard, Refusal> {
        let guard = match self.shed.try_acquire() {
            Ok(g) => g,
            Err(shed) => {
                return Err(self.refuse(
                    route,
                    client,
                    DenialReason::LoadShed,
                    503,
                    shed.retry_after_secs,
                    "shed",
                ));
            }
        };
        if let Decision::Deny { retry_after_secs } = self.rate.load().check(route, client) {
            return Err(self.refuse(
                route,
                client,
                DenialReason::RateLimit,
                429,
                retry_after_secs,
                "local",
            ));
        }
        if let Some(fleet) = &self.fleet {
            if let Decision::Deny { retry_after_secs } = fleet.check(route, client).await {
                return Err(self.refuse(
                    route,
                    client,
                    DenialReason::RateLimit,
                    429,
                    retry_after_secs,
                    "fleet",
                ));
            }
        }
        Ok(guard)
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
            **self.slow_clients.load(),
            self.on_conn_denial.clone(),
        )
        .with_slot(super::conn_limit::slot::current())
        .with_peer(peer)
    }

    /// Counts a connection-level denial and writes its event line.
    pub fn on_conn_denial(&self) -> &OnDenial {
        &self.on_conn_denial
    }

    /// Both stream guards, for the plaintext stream of every new downstream
    /// connection (after TLS, before Pingora's HTTP layer).
    #[cfg(feature = "pingora")]
    pub fn guard_stream(&self, stream: Stream) -> Stream {
        self.guard_slow_client(self.guard_h2(stream))
    }

    fn refuse(
        &self,
        route: Option<&str>,
        client: IpAddr,
        reason: DenialReason,
        status: u16,
        retry_after_secs: u64,
        scope: &'static str,
    ) -> Refusal {
        let mut denial = Denial::new(reason).detail(format!(
            "{scope} limit, client key {}",
            self.rate.load().key(client)
        ));
        denial.route = route.map(str::to_string);
        self.denials.record(&denial);
        Refusal {
            reason,
            status,
            retry_after_secs,
            scope,
        }
    }
}

impl DefenceWorkers {
    /// Runs every worker and sweeper until `shutdown` changes or all of them
    /// end (they do once the defences are dropped). The tasks run once: a
    /// second call has none and returns at once.
    pub async fn run(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let mut set = tokio::task::JoinSet::new();
        for task in tasks {
            set.spawn(task);
        }
        // Until shutdown; workers end on their own when the defences drop.
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = async { while set.join_next().await.is_some() {} } => {}
        }
        set.abort_all();
    }
}

#[cfg(feature = "pingora")]
#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for DefenceWorkers {
    async fn start(&self, shutdown: pingora_core::server::ShutdownWatch) {
        self.run(shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn admits_sheds_and_limits_in_order() {
        let config: ProtectConfig = toml::from_str(CONFIG).unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let registry = Registry::new();
        let (d, workers) = Defences::new(
            &config,
            &registry,
            routes(),
            Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())),
        )
        .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let bg = tokio::spawn(async move { workers.run(rx).await });

        let client: IpAddr = "10.1.1.1".parse().unwrap();
        let g1 = d.admit_request(Some("login"), client).await.unwrap();
        let _g2 = d.admit_request(Some("login"), client).await.unwrap();
        // Third in flight: shed before any limit is spent.
        let shed = d.admit_request(Some("login"), client).await.unwrap_err();
        assert_eq!(
            (shed.reason, shed.status, shed.scope),
            (DenialReason::LoadShed, 503, "shed")
        );
        drop(g1);
        // Burst 2 on login is spent: 429 with Retry-After.
        let limited = d.admit_request(Some("login"), client).await.unwrap_err();
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

        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), bg)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn reload_changes_limits_in_place_and_refuses_bound_fields() {
        let config: ProtectConfig = toml::from_str(CONFIG).unwrap();
        let registry = Registry::new();
        let (d, _workers) =
            Defences::new(&config, &registry, routes(), Arc::new(|_: &str| {})).unwrap();
        let client: IpAddr = "10.2.2.2".parse().unwrap();
        let held = d.admit_request(Some("api"), client).await.unwrap();

        // Shedding at 1 in flight, login burst 3: the held request stays counted.
        let mut next = config.clone();
        next.shed.max_in_flight = 1;
        next.rate_limit.routes.get_mut("login").unwrap().burst = Some(3);
        let tasks = d.commit(d.prepare_reload(&next, routes()).unwrap());
        assert_eq!(tasks.len(), 1, "the new limiter's sweeper");
        let shed = d.admit_request(Some("api"), client).await.unwrap_err();
        assert_eq!(shed.reason, DenialReason::LoadShed);
        drop(held);
        for _ in 0..3 {
            drop(d.admit_request(Some("login"), client).await.unwrap());
        }
        let limited = d.admit_request(Some("login"), client).await.unwrap_err();
        assert_eq!(limited.reason, DenialReason::RateLimit);

        // Unchanged [rate_limit]: the limiter and its state stay.
        let tasks = d.commit(d.prepare_reload(&next, routes()).unwrap());
        assert!(tasks.is_empty());
        assert!(d.admit_request(Some("login"), client).await.is_err());

        let mut bad = next.clone();
        bad.connections.ipv4_prefix = 24;
        let err = d.prepare_reload(&bad, routes()).err().unwrap();
        assert!(err.contains("protect.connections.ipv4_prefix"), "{err}");
        let mut bad = next.clone();
        bad.h2.max_resets_per_sec += 1;
        let err = d.prepare_reload(&bad, routes()).err().unwrap();
        assert!(err.contains("protect.h2.max_resets_per_sec"), "{err}");
        let err = d.prepare_reload(&next, vec!["api".into()]).err().unwrap();
        assert!(err.contains("rate_limit.routes.login"), "{err}");
    }

    #[test]
    fn config_errors_name_the_field() {
        let c: ProtectConfig =
            toml::from_str("[rate_limit.routes.nosuch]\nrequests = 1\n").unwrap();
        assert!(c
            .validate(&routes())
            .unwrap_err()
            .contains("rate_limit.routes.nosuch"));
        assert!(toml::from_str::<ProtectConfig>("[ratelimit]\n").is_err());
        let c: ProtectConfig = toml::from_str(
            "[fleet]\naddress = \"127.0.0.1:1\"\n[fleet.routes.api]\nrequests = 5\n",
        )
        .unwrap();
        assert!(c.validate(&routes()).is_ok());
        assert!(ProtectConfig::default().validate(&[]).is_ok());
    }
}
