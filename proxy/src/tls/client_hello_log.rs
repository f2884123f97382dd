//! rustls logs a `warn` for every ClientHello whose SNI is an IP address (RFC 6066 forbids it;
//! rustls ignores it and goes on as if there were no SNI), or an invalid or duplicate host name:
//! one stderr line per connection, 1,400 in one benchmark run with a client that connects by
//! IP. This layer takes those records off stderr and instead counts them
//! (`rampart_tls_client_hello_warnings_total{kind}`) and logs one summary line per kind at most
//! once a minute with the count since the last line.

use prometheus::IntCounterVec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where rustls logs them (the `log` record's target, through tracing-log).
pub const TARGET: &str = "rustls::msgs::handshake";
/// At most one summary line per kind this often.
const EVERY: Duration = Duration::from_secs(60);

/// The process's counter (the first registered: the binary has one `Metrics`).
static COUNTER: OnceLock<IntCounterVec> = OnceLock::new();

/// Counts into `counter` from now on (a second call keeps the first counter).
pub fn count_into(counter: &IntCounterVec) {
    let _ = COUNTER.set(counter.clone());
}

/// The kinds and, for each, the count not yet logged.
static KINDS: [Kind; 3] = [
    Kind::new("ip_address_sni", "IP address presented as hostname"),
    Kind::new("invalid_sni", "Illegal SNI hostname"),
    Kind::new("duplicate_sni", "duplicate host_name"),
];

struct Kind {
    label: &'static str,
    needle: &'static str,
    unlogged: AtomicU64,
    last_logged: Mutex<Option<Instant>>,
}

impl Kind {
    const fn new(label: &'static str, needle: &'static str) -> Self {
        Kind {
            label,
            needle,
            unlogged: AtomicU64::new(0),
            last_logged: Mutex::new(None),
        }
    }

    fn seen(&self) {
        if let Some(c) = COUNTER.get() {
            c.with_label_values(&[self.label]).inc();
        }
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let n = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "rampart_proxy::tls",
            kind = self.label,
            count = n,
            "TLS clients sent an unusable SNI (ignored, as if none was sent); counted in rampart_tls_client_hello_warnings_total, logged at most once a minute"
        );
    }
}

/// The layer; the stderr layer's filter drops [`TARGET`] below `error` (`DEFAULT_LOG`).
pub struct ClientHelloWarnings;

/// The message and, for records bridged from `log`, their target (the event's own metadata
/// then names the bridge's callsite, not rustls).
#[derive(Default)]
struct Message {
    text: String,
    log_target: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.text.push_str(value),
            "log.target" => self.log_target.push_str(value),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.text = format!("{value:?}");
        }
    }
}

impl ClientHelloWarnings {
    /// The layer with its own filter (only [`TARGET`]'s warnings reach it).
    pub fn layer<S>() -> Box<dyn Layer<S> + Send + Sync>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        // Dynamic: records bridged from `log` share one callsite per level (whose own target is
        // not rustls's), so the target is checked per record, for warnings only.
        let only = tracing_subscriber::filter::dynamic_filter_fn(|m, _| {
            m.target() == TARGET && *m.level() <= tracing::Level::WARN
        })
        .with_max_level_hint(tracing::level_filters::LevelFilter::WARN);
        Box::new(ClientHelloWarnings.with_filter(only))
    }
}

impl<S: Subscriber> Layer<S> for ClientHelloWarnings {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message::default();
        event.record(&mut message);
        if event.metadata().target() != TARGET && message.log_target != TARGET {
            return;
        }
        if let Some(kind) = KINDS.iter().find(|k| message.text.contains(k.needle)) {
            kind.seen();
        }
    }
}
