//! One JSON line per connection (TCP ports) or request (HTTP ports), with OpenTelemetry
//! attribute names where they exist (`client.address`, `server.port`, `http.request.method`,
//! `url.path`, `http.response.status_code`) and `rampart.*` for the rest. Lines go through a
//! bounded queue to a writer thread (`rampart_ops::json_log`), so a slow stdout never blocks a connection; when the
//! queue is full the line is dropped and counted.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use std::net::SocketAddr;

use rampart_tls::spiffe::SpiffeId;

use super::metrics::Metrics;
use crate::config::InboundPort;
use crate::policy::{AuditOutcome, Decision, Verdict};

/// Lines queued for the writer before new ones are dropped (and counted).
const QUEUE: usize = 8192;

/// Where log lines go: `rampart-ops`'s JSON-lines writer thread on stdout.
pub type LogSink = rampart_ops::json_log::JsonLog<Event>;

/// Starts the writer thread on stdout; dropped lines count in `metrics`.
pub fn stdout(metrics: &Metrics) -> std::io::Result<LogSink> {
    LogSink::start("stdout", QUEUE, metrics.log_lines_dropped.clone())
}

/// A log event under construction (serialised on the caller's thread into the log's batch).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(transparent)]
pub struct Event(Map<String, Value>);

impl Event {
    /// A new event named `rampart.sidecar.<name>`.
    pub fn new(name: &str) -> Self {
        let mut map = Map::new();
        // The same format as the request lines' (`json_log::Timestamp`).
        let now = rampart_ops::json_log::Timestamp::now();
        map.insert("timestamp".into(), now.format(&mut [0; 27]).into());
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

    /// The decision's fields: verdict, rule, reason, policy version ([`DecisionFields`]).
    pub fn decision(mut self, d: &Decision) -> Self {
        if let Ok(Value::Object(fields)) = serde_json::to_value(DecisionFields::of(d)) {
            self.0.extend(fields);
        }
        self
    }
}

/// A decision's log fields, typed and borrowed (serialised without building a map): verdict,
/// rule, reason, policy file and version, and what an audit set would have denied.
#[derive(Serialize)]
pub struct DecisionFields<'a> {
    #[serde(rename = "rampart.decision")]
    verdict: &'static str,
    #[serde(rename = "rampart.rule", skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(rename = "rampart.rule_set", skip_serializing_if = "Option::is_none")]
    rule_set: Option<&'a str>,
    #[serde(rename = "rampart.reason", skip_serializing_if = "Option::is_none")]
    reason: Option<Shown<ReasonText<'a>>>,
    #[serde(
        rename = "rampart.reason.kind",
        skip_serializing_if = "Option::is_none"
    )]
    kind: Option<&'static str>,
    #[serde(rename = "rampart.policy.file")]
    policy_file: &'a str,
    #[serde(rename = "rampart.policy.version")]
    policy_version: &'a str,
    #[serde(
        rename = "rampart.audit.would_deny",
        skip_serializing_if = "Option::is_none"
    )]
    would_deny: Option<Shown<WouldDeny<'a>>>,
}

impl<'a> DecisionFields<'a> {
    /// The fields of `d`.
    pub fn of(d: &'a Decision) -> Self {
        let rule = d.rule.as_ref();
        DecisionFields {
            verdict: d.verdict.as_str(),
            rule: rule.map(|r| &*r.rule),
            rule_set: rule.map(|r| &*r.set),
            reason: d.reason.is_some().then_some(Shown(ReasonText(d))),
            kind: d.reason.as_ref().map(|r| r.label()),
            policy_file: &d.policy.file,
            policy_version: &d.policy.version,
            would_deny: d
                .audit
                .as_ref()
                .filter(|a| a.verdict == Verdict::AuditDeny)
                .map(|a| Shown(WouldDeny(a))),
        }
    }
}

/// Serialises a `Display` value as a string, without an intermediate `String`.
struct Shown<T>(T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// [`Decision::reason_text`], written straight into the line.
struct ReasonText<'a>(&'a Decision);

impl fmt::Display for ReasonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.reason, &self.0.rule) {
            (Some(reason), Some(rule)) => write!(f, "rule {}: {reason}", rule.rule),
            (Some(reason), None) => write!(f, "{reason}"),
            (None, _) => Ok(()),
        }
    }
}

/// What the audit set would have denied: `rule NAME: reason`.
struct WouldDeny<'a>(&'a AuditOutcome);

impl fmt::Display for WouldDeny<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(rule) = &self.0.rule {
            write!(f, "rule {}: ", rule.rule)?;
        }
        match &self.0.reason {
            Some(reason) => write!(f, "{reason}"),
            None => Ok(()),
        }
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
