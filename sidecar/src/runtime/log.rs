//! One JSON line per connection (TCP ports) or request (HTTP ports), with OpenTelemetry
//! attribute names where they exist (`client.address`, `server.port`, `http.request.method`,
//! `url.path`, `http.response.status_code`) and `rampart.*` for the rest. Lines go through a
//! bounded queue to a writer thread, so a slow stdout never blocks a connection; when the
//! queue is full the line is dropped and counted.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::metrics::Metrics;
use crate::policy::Decision;

const QUEUE: usize = 8192;

/// Where log lines go.
#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<String>,
}

impl LogSink {
    /// Starts the writer thread on stdout.
    pub fn stdout() -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("rampart-sidecar-log".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                while let Ok(line) = rx.recv() {
                    let mut out = stdout.lock();
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.write_all(b"\n");
                    // Drain what is queued before flushing once.
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(more.as_bytes());
                        let _ = out.write_all(b"\n");
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(LogSink { tx })
    }

    /// Queues an event.
    pub fn emit(&self, event: Event, metrics: &Metrics) {
        let line = Value::Object(event.0).to_string();
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            metrics.log_lines_dropped.inc();
        }
    }
}

/// A log event under construction.
pub struct Event(Map<String, Value>);

impl Event {
    /// A new event named `rampart.sidecar.<name>`.
    pub fn new(name: &str) -> Self {
        let mut map = Map::new();
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        map.insert("timestamp".into(), now.into());
        map.insert(
            "event.name".into(),
            format!("rampart.sidecar.{name}").into(),
        );
        Event(map)
    }

    /// Sets an attribute.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets an attribute when present.
    pub fn maybe(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// The decision's fields: verdict, rule, reason, policy version.
    pub fn decision(self, d: &Decision) -> Self {
        let rule = d.rule.as_ref();
        self.with("rampart.decision", d.verdict.as_str())
            .maybe("rampart.rule", rule.map(|r| r.rule.to_string()))
            .maybe("rampart.rule_set", rule.map(|r| r.set.to_string()))
            .maybe("rampart.reason", d.reason_text())
            .maybe("rampart.reason.kind", d.reason.as_ref().map(|r| r.label()))
            .with("rampart.policy.file", d.policy.file.clone())
            .with("rampart.policy.version", d.policy.version.clone())
            .maybe(
                "rampart.audit.would_deny",
                d.audit
                    .as_ref()
                    .filter(|a| a.verdict == crate::policy::Verdict::AuditDeny)
                    .map(|a| {
                        let rule = a
                            .rule
                            .as_ref()
                            .map(|r| format!("rule {}: ", r.rule))
                            .unwrap_or_default();
                        let reason = a.reason.as_ref().map(|r| r.to_string()).unwrap_or_default();
                        format!("{rule}{reason}")
                    }),
            )
    }
}
