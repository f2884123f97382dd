//! Webhook alerting on denied traffic (S.N.12): when denials of one reason
//! reach a threshold within a sliding window, POST one JSON body to the
//! configured URL (and nowhere else: no redirects are followed), then stay
//! quiet for a cool-down, counting what was suppressed. Runs off the request
//! path: callers only `try_send` on a bounded channel and never wait.

mod http_post;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod window;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

use super::denial::DenialReason;
pub use http_post::{WebhookError, WebhookTarget};
use rampart_ops::config::Bounds;
use window::Window;

/// Thresholds for one denial reason.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Denials within `window_secs` that fire an alert.
    pub threshold: u32,
    pub window_secs: u64,
    /// After firing, the same alert is not sent again for this long.
    pub cooldown_secs: u64,
}

/// `threshold`: 1 to a million denials (each is kept until the window passes).
pub const THRESHOLD: Bounds = Bounds::new(1, 1_000_000, "");
/// `window_secs`: 1 s to one day.
pub const WINDOW_SECS: Bounds = Bounds::new(1, 86_400, "s");
/// `cooldown_secs` and `event_cooldown_secs`: 0 to 30 days.
pub const COOLDOWN_SECS: Bounds = Bounds::new(0, 30 * 86_400, "s");
/// `timeout_ms`: 1 ms to one minute.
pub const TIMEOUT_MS: Bounds = Bounds::new(1, 60_000, "ms");
/// `queue`: 1 to a million pending events.
pub const QUEUE: Bounds = Bounds::new(1, 1_000_000, "");

impl AlertRule {
    fn validate(&self, what: &str) -> Result<(), String> {
        THRESHOLD.check(&format!("{what}.threshold"), self.threshold)?;
        WINDOW_SECS.check(&format!("{what}.window_secs"), self.window_secs)?;
        COOLDOWN_SECS.check(&format!("{what}.cooldown_secs"), self.cooldown_secs)?;
        Ok(())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    fn cooldown(&self) -> Duration {
        Duration::from_secs(self.cooldown_secs)
    }
}

/// `[alerts]` in the proxy config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// `http://` or `https://` URL the JSON alerts are POSTed to; none = no webhook.
    pub webhook_url: Option<String>,
    /// PEM CA bundle to verify an https webhook; default: the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// Whole-request timeout for one POST.
    pub timeout_ms: u64,
    /// Pending events kept before new ones are dropped (and counted).
    pub queue: usize,
    /// Rule for every reason without its own entry in `rules`.
    pub default_rule: AlertRule,
    /// Per-reason rules, keyed by reason name (`rate_limit`, `waf_block`, ...).
    pub rules: BTreeMap<String, AlertRule>,
    /// Cool-down for one-off events such as `redis_fallback`.
    pub event_cooldown_secs: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            ca_file: None,
            timeout_ms: 5_000,
            queue: 4_096,
            default_rule: AlertRule {
                threshold: 300,
                window_secs: 60,
                cooldown_secs: 600,
            },
            rules: BTreeMap::new(),
            event_cooldown_secs: 600,
        }
    }
}

impl AlertConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.default_rule.validate("alerts.default_rule")?;
        for (name, rule) in &self.rules {
            if DenialReason::from_name(name).is_none() {
                return Err(format!("alerts.rules.{name}: unknown denial reason"));
            }
            rule.validate(&format!("alerts.rules.{name}"))?;
        }
        TIMEOUT_MS.check("alerts.timeout_ms", self.timeout_ms)?;
        QUEUE.check("alerts.queue", self.queue)?;
        COOLDOWN_SECS.check("alerts.event_cooldown_secs", self.event_cooldown_secs)?;
        if let Some(url) = &self.webhook_url {
            // The URL only: the client (and the CA file) is built once, by `new`.
            WebhookTarget::check_url(url).map_err(|e| format!("alerts.webhook_url: {e}"))?;
        }
        Ok(())
    }

    fn rule_for(&self, reason: DenialReason) -> AlertRule {
        self.rules
            .get(reason.as_str())
            .copied()
            .unwrap_or(self.default_rule)
    }
}

/// A one-off condition worth a page, e.g. the fleet limiter losing Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    /// Stable name, also the de-duplication key (`redis_fallback`).
    pub kind: String,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Anything that accepts alert events. The webhook alerter implements it;
/// tests and other sinks can too.
pub trait AlertSink: Send + Sync + std::fmt::Debug {
    fn raise(&self, event: AlertEvent);
}

enum Msg {
    Denial { reason: DenialReason, route: String },
    Event(AlertEvent),
}

/// Counters of the alerter, shared with its worker.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Alerts POSTed with a 2xx answer.
    pub sent: AtomicU64,
    /// Alerts whose POST failed (connect, timeout, non-2xx).
    pub failed: AtomicU64,
    /// Alerts not sent because their cool-down was running.
    pub suppressed: AtomicU64,
}

/// Cheap, cloneable handle the request path uses. Never blocks.
#[derive(Debug, Clone)]
pub struct AlertHandle {
    tx: mpsc::Sender<Msg>,
    stats: Arc<AlertStats>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Denial { reason, .. } => write!(f, "Denial({reason})"),
            Msg::Event(e) => write!(f, "Event({})", e.kind),
        }
    }
}

impl AlertHandle {
    /// Notes one denial of `reason` on `route` (a bounded label value).
    pub fn observe(&self, reason: DenialReason, route: &str) {
        self.send(Msg::Denial {
            reason,
            route: route.to_string(),
        });
    }

    fn send(&self, msg: Msg) {
        if self.tx.try_send(msg).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> &AlertStats {
        &self.stats
    }
}

impl AlertSink for AlertHandle {
    fn raise(&self, event: AlertEvent) {
        self.send(Msg::Event(event));
    }
}

/// The alerter's background half; run it with [`AlertWorker::run`] on any
/// tokio runtime (`tokio::spawn`; the edge spawns it on its control plane).
pub struct AlertWorker {
    worker: Worker,
    rx: mpsc::Receiver<Msg>,
}

impl AlertWorker {
    /// Handles events until every [`AlertHandle`] is dropped.
    pub async fn run(self) {
        self.worker.run(self.rx).await
    }
}

/// The config field a webhook error is about: `alerts.ca_file` when that file did not load,
/// else `alerts.webhook_url` (the URL, or the TLS client its https asks for).
fn webhook_field(e: &WebhookError) -> &'static str {
    match e {
        WebhookError::Tls(rampart_tls::web::ClientError::Roots(_)) => "alerts.ca_file",
        _ => "alerts.webhook_url",
    }
}

/// Builds the alerter: the handle for the request path and its worker.
pub fn new(config: &AlertConfig) -> Result<(AlertHandle, AlertWorker), String> {
    config.validate()?;
    let target = match &config.webhook_url {
        Some(url) => Some(
            WebhookTarget::new(url, config.ca_file.as_deref())
                .map_err(|e| format!("{}: {e}", webhook_field(&e)))?,
        ),
        None => None,
    };
    let (tx, rx) = mpsc::channel(config.queue);
    let stats = Arc::new(AlertStats::default());
    let worker = Worker {
        config: config.clone(),
        target: target.map(Arc::new),
        stats: stats.clone(),
        windows: HashMap::new(),
        events: HashMap::new(),
        posts: Arc::new(Semaphore::new(4)),
        pending_posts: Arc::new(AtomicUsize::new(0)),
    };
    Ok((AlertHandle { tx, stats }, AlertWorker { worker, rx }))
}

/// [`new`], with the worker spawned on the current tokio runtime.
pub fn spawn(config: &AlertConfig) -> Result<(AlertHandle, tokio::task::JoinHandle<()>), String> {
    let (handle, worker) = new(config)?;
    Ok((handle, tokio::spawn(worker.run())))
}

struct Worker {
    config: AlertConfig,
    target: Option<Arc<WebhookTarget>>,
    stats: Arc<AlertStats>,
    windows: HashMap<DenialReason, Window>,
    /// Last time each event kind was sent, for its cool-down.
    events: HashMap<String, (Instant, u64)>,
    /// At most a few POSTs at once.
    posts: Arc<Semaphore>,
    /// POSTs waiting or running.
    pending_posts: Arc<AtomicUsize>,
}

/// Most alert POSTs waiting or running at once.
const MAX_PENDING_POSTS: usize = 256;

#[derive(Serialize)]
struct DenialAlertBody<'a> {
    alert: &'static str,
    reason: DenialReason,
    denials: usize,
    threshold: u32,
    window_secs: u64,
    /// Threshold crossings not alerted during the previous cool-down.
    suppressed: u64,
    routes: &'a BTreeMap<String, u64>,
    timestamp: String,
}

#[derive(Serialize)]
struct EventAlertBody<'a> {
    alert: &'static str,
    #[serde(flatten)]
    event: &'a AlertEvent,
    suppressed: u64,
    timestamp: String,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = rx.recv().await {
            let now = Instant::now();
            let body = match msg {
                Msg::Denial { reason, route } => self.on_denial(reason, route, now),
                Msg::Event(event) => self.on_event(event, now),
            };
            if let Some(body) = body {
                self.post(body);
            }
        }
    }

    fn on_denial(&mut self, reason: DenialReason, route: String, now: Instant) -> Option<String> {
        let rule = self.config.rule_for(reason);
        let window = self
            .windows
            .entry(reason)
            .or_insert_with(|| Window::new(rule.threshold, rule.window(), rule.cooldown()));
        let fired = window.hit(now, route);
        match fired {
            window::Outcome::Quiet => None,
            window::Outcome::Suppressed => {
                self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            window::Outcome::Fire {
                denials,
                suppressed,
                routes,
            } => serde_json::to_string(&DenialAlertBody {
                alert: "rampart_denials",
                reason,
                denials,
                threshold: rule.threshold,
                window_secs: rule.window_secs,
                suppressed,
                routes: &routes,
                timestamp: now_rfc3339(),
            })
            .ok(),
        }
    }

    fn on_event(&mut self, event: AlertEvent, now: Instant) -> Option<String> {
        let cooldown = Duration::from_secs(self.config.event_cooldown_secs);
        let suppressed = match self.events.get_mut(&event.kind) {
            Some((sent_at, suppressed)) if now.duration_since(*sent_at) < cooldown => {
                *suppressed += 1;
                self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Some((_, suppressed)) => *suppressed,
            None => 0,
        };
        self.events.insert(event.kind.clone(), (now, 0));
        serde_json::to_string(&EventAlertBody {
            alert: "rampart_event",
            event: &event,
            suppressed,
            timestamp: now_rfc3339(),
        })
        .ok()
    }

    fn post(&self, body: String) {
        let Some(target) = self.target.clone() else {
            tracing::warn!(alert = %body, "alert fired (no webhook_url configured)");
            return;
        };
        // Alerts wait for one of a few POST slots; beyond MAX_PENDING_POSTS
        // waiting (a dead webhook and alerts without cool-down) they are
        // dropped and counted, so memory stays bounded.
        if self.pending_posts.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_POSTS {
            self.pending_posts.fetch_sub(1, Ordering::AcqRel);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("alert webhook backlog full; alert dropped");
            return;
        }
        let (posts, pending) = (self.posts.clone(), self.pending_posts.clone());
        let stats = self.stats.clone();
        let timeout = Duration::from_millis(self.config.timeout_ms);
        tokio::spawn(async move {
            let permit = posts.acquire_owned().await;
            let result = tokio::time::timeout(timeout, target.post_json(&body)).await;
            drop(permit);
            pending.fetch_sub(1, Ordering::AcqRel);
            match result {
                Ok(Ok(())) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "alert webhook failed");
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("alert webhook timed out");
                }
            }
        });
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
