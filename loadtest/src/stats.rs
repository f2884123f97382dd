//! Outcome recording for one class of traffic (legit or attack): status
//! counts, error kinds and a latency histogram (microseconds).

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::report::{ClassReport, Latency};

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    Error(ErrorKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Connection refused.
    Refused,
    /// Closed or reset before a full response (connection caps do this).
    Closed,
    /// No response within the request timeout.
    Timeout,
    /// Not a valid HTTP/1.x response.
    Protocol,
    Io,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Closed => "closed",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Io => "io",
        }
    }

    pub fn of(e: &io::Error) -> Self {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Self::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                Self::Closed
            }
            K::TimedOut => Self::Timeout,
            K::InvalidData => Self::Protocol,
            _ => Self::Io,
        }
    }
}

struct Inner {
    hist: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<ErrorKind, u64>,
}

/// Shared by every task of a class; the lock is held for a few instructions.
pub struct Recorder {
    inner: Mutex<Inner>,
    /// Requests scheduled (including those that failed).
    pub sent: AtomicU64,
    /// 2xx/3xx responses.
    pub ok: AtomicU64,
    /// Everything else (4xx/5xx and errors).
    pub not_ok: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // 1 µs .. 1 h, 3 significant digits: constant, valid bounds, so this
        // cannot fail.
        #[allow(clippy::expect_used)]
        let hist = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        Self {
            inner: Mutex::new(Inner {
                hist,
                statuses: BTreeMap::new(),
                errors: BTreeMap::new(),
            }),
            sent: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            not_ok: AtomicU64::new(0),
        }
    }

    pub fn scheduled(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one finished request; `latency` runs from its intended send time.
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        let good = matches!(outcome, Outcome::Status(s) if (200..400).contains(&s));
        if good {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .hist
            .saturating_record((latency.as_micros() as u64).max(1));
        match outcome {
            Outcome::Status(s) => *inner.statuses.entry(s).or_insert(0) += 1,
            Outcome::Error(e) => *inner.errors.entry(e).or_insert(0) += 1,
        }
    }

    pub fn report(&self, elapsed: Duration) -> ClassReport {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let sent = self.sent.load(Ordering::Relaxed);
        let ok = self.ok.load(Ordering::Relaxed);
        let statuses: BTreeMap<String, u64> = inner
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let blocked: u64 = inner
            .statuses
            .iter()
            .filter(|(s, _)| **s >= 400)
            .map(|(_, v)| v)
            .sum();
        let errors: BTreeMap<String, u64> = inner
            .errors
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect();
        let errors_total = errors.values().sum();
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &inner.hist;
        let latency = (!h.is_empty()).then(|| Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        });
        ClassReport {
            sent,
            completed: h.len(),
            allowed: ok,
            blocked,
            errors_total,
            success_rate: if sent == 0 {
                0.0
            } else {
                ok as f64 / sent as f64
            },
            rate_per_sec: if elapsed.is_zero() {
                0.0
            } else {
                h.len() as f64 / elapsed.as_secs_f64()
            },
            statuses,
            errors,
            latency_ms: latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentiles() {
        let r = Recorder::new();
        for i in 1..=100u64 {
            r.scheduled();
            let outcome = if i <= 90 {
                Outcome::Status(200)
            } else {
                Outcome::Status(429)
            };
            r.record(outcome, Duration::from_millis(i));
        }
        r.scheduled();
        r.record(Outcome::Error(ErrorKind::Closed), Duration::from_millis(1));
        let rep = r.report(Duration::from_secs(1));
        assert_eq!(
            (
                rep.sent,
                rep.completed,
                rep.allowed,
                rep.blocked,
                rep.errors_total
            ),
            (101, 101, 90, 10, 1)
        );
        assert_eq!(rep.statuses["429"], 10);
        assert_eq!(rep.errors["closed"], 1);
        let lat = rep.latency_ms.unwrap();
        assert!((49.0..=51.0).contains(&lat.p50), "{}", lat.p50);
        assert!((99.0..=100.5).contains(&lat.max), "{}", lat.max);
        assert!((rep.success_rate - 90.0 / 101.0).abs() < 1e-9);
    }
}
