//! The run report: a table for people, JSON for machines.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Outcomes of one class of traffic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassReport {
    /// Requests scheduled.
    pub sent: u64,
    /// Requests with an outcome (response or error).
    pub completed: u64,
    /// 2xx and 3xx responses.
    pub allowed: u64,
    /// 4xx and 5xx responses.
    pub blocked: u64,
    /// Requests without a response (refused, closed, timeout, ...).
    pub errors_total: u64,
    /// allowed / sent.
    pub success_rate: f64,
    /// Completed requests per second.
    pub rate_per_sec: f64,
    /// Responses by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Latency from the intended send time (open loop) or the send time
    /// (closed loop), milliseconds; absent when nothing completed.
    pub latency_ms: Option<Latency>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SlowlorisReport {
    pub connections: u64,
    /// Connections the attacker established (TCP, and TLS if any).
    pub opened: u64,
    pub connect_failed: u64,
    /// Connections the server closed (deadline, cap, reset).
    pub closed_by_server: u64,
    /// Most connections held open at once.
    pub max_held: u64,
    /// Connections still open when the run ended.
    pub held_at_end: u64,
    pub header_lines_sent: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub legit_mode: String,
    pub duration_secs: f64,
    pub legit: ClassReport,
    pub attack: Option<ClassReport>,
    pub slowloris: Option<SlowlorisReport>,
    /// `reload`: legit requests sent after the SIGTERM (`legit` holds those sent before).
    pub drain: Option<ClassReport>,
    /// `reload`: what the change driver did.
    pub changes: Option<crate::reload::ChangeReport>,
}

fn row(out: &mut String, name: &str, c: &ClassReport) {
    let lat = c
        .latency_ms
        .as_ref()
        .map(|l| {
            format!(
                "{:>8.2} {:>8.2} {:>8.2} {:>9.2}",
                l.p50, l.p90, l.p99, l.max
            )
        })
        .unwrap_or_else(|| format!("{:>8} {:>8} {:>8} {:>9}", "-", "-", "-", "-"));
    let _ = writeln!(
        out,
        "{name:<8} {:>9} {:>9} {:>9} {:>8} {:>8.2}% {:>9.1} {lat}",
        c.sent,
        c.allowed,
        c.blocked,
        c.errors_total,
        c.success_rate * 100.0,
        c.rate_per_sec
    );
}

fn breakdown(out: &mut String, name: &str, c: &ClassReport) {
    let statuses: Vec<String> = c.statuses.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let errors: Vec<String> = c.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        out,
        "{name:<8} statuses: {}  errors: {}",
        if statuses.is_empty() {
            "-".into()
        } else {
            statuses.join(" ")
        },
        if errors.is_empty() {
            "-".into()
        } else {
            errors.join(" ")
        }
    );
}

impl Report {
    /// A fixed-width table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} against {} for {:.1} s (legit: {})",
            self.scenario, self.target, self.duration_secs, self.legit_mode
        );
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}",
            "class",
            "sent",
            "allowed",
            "blocked",
            "errors",
            "success",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        row(&mut out, "legit", &self.legit);
        if let Some(a) = &self.attack {
            row(&mut out, "attack", a);
        }
        if let Some(d) = &self.drain {
            row(&mut out, "drain", d);
        }
        breakdown(&mut out, "legit", &self.legit);
        if let Some(a) = &self.attack {
            breakdown(&mut out, "attack", a);
        }
        if let Some(d) = &self.drain {
            breakdown(&mut out, "drain", d);
        }
        if let Some(c) = &self.changes {
            let _ = writeln!(
                out,
                "reloads: sent {}, applied {}, refused {}, slowest {:.0} ms; SIGTERM at {}; problems: {}",
                c.reloads_sent,
                c.reloads_applied,
                c.reloads_refused,
                c.max_confirm_ms,
                c.sigterm_at_secs
                    .map_or("-".into(), |s| format!("{s:.1} s")),
                if c.problems.is_empty() {
                    "-".into()
                } else {
                    c.problems.join("; ")
                }
            );
        }
        if let Some(s) = &self.slowloris {
            let _ = writeln!(
                out,
                "slowloris: {} connections, opened {}, connect failed {}, closed by server {}, max held {}, held at end {}, header lines {}",
                s.connections, s.opened, s.connect_failed, s.closed_by_server, s.max_held, s.held_at_end, s.header_lines_sent
            );
        }
        out
    }
}
