//! One JSON line per connection (TCP ports) or request (HTTP ports), with OpenTelemetry
//! attribute names where they exist (`client.address`, `server.port`, `http.request.method`,
//! `url.path`, `http.response.status_code`) and `rampart.*` for the rest. Lines go through a
//! bounded queue to a writer thread (`rampart_ops::json_log`), so a slow stdout never blocks a connection; when the
//! queue is full the line is dropped and counted.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use std::net::SocketAddr;

use rampart_tls::spiffe::SpiffeId;

use super::metrics::Metrics;
use crate::config::InboundPort;
use crate::policy::Decision;

/// Lines queued for the writer before new ones are dropped (and counted).
const QUEUE: usize = 8192;

/// Where log lines go: `rampart-ops`'s JSON-lines writer thread on stdout.
pub type LogSink = rampart_ops::json_log::JsonLog<Event>;

/// Starts the writer thread on stdout; dropped lines count in `metrics`.
pub fn stdout(metrics: &Metrics) -> std::io::Result<LogSink> {
    LogSink::start("stdout", QUEUE, metrics.log_lines_dropped.clone())
}

/// A log event under construction (serialised by the writer thread, off the connection's task).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(transparent)]
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

/// What every inbound log line carries.
pub(crate) fn base_event(
    name: &str,
    port: &InboundPort,
    peer: SocketAddr,
    caller: Option<&SpiffeId>,
    own: &SpiffeId,
) -> Event {
    Event::new(name)
        .with("rampart.direction", "inbound")
        .with("client.address", peer.ip().to_string())
        .with("client.port", peer.port())
        .with("server.port", port.port)
        .with("network.transport", "tcp")
        .maybe("rampart.caller.identity", caller.map(|c| c.to_string()))
        .with("rampart.callee.identity", own.to_string())
}
