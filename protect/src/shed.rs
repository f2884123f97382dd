//! Load shedding: above a configured number of in-flight requests the edge
//! answers a fast 503 instead of queueing without bound.

use rampart_ops::config::Bounds;
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `[shed]` in the proxy config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ShedConfig {
    /// Requests in flight (headers read, response not finished) above which
    /// new requests get 503. 0 disables shedding.
    pub max_in_flight: usize,
    /// `Retry-After` seconds sent with the 503.
    pub retry_after_secs: u64,
}

/// `max_in_flight`: 0 (off) to ten million requests.
pub const MAX_IN_FLIGHT: Bounds = Bounds::new(0, 10_000_000, "");
/// `retry_after_secs`: 0 to one day.
pub const RETRY_AFTER_SECS: Bounds = Bounds::new(0, 86_400, "s");

impl ShedConfig {
    pub fn validate(&self) -> Result<(), String> {
        MAX_IN_FLIGHT.check("shed.max_in_flight", self.max_in_flight)?;
        RETRY_AFTER_SECS.check("shed.retry_after_secs", self.retry_after_secs)?;
        Ok(())
    }
}

impl Default for ShedConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 10_000,
            retry_after_secs: 1,
        }
    }
}

/// Counts requests in flight; shared by every request of the process. The
/// limit is a setting of the running generation ([`ShedConfig`], passed to
/// [`Self::try_acquire`]), so a reload changes it while the in-flight count
/// carries over.
#[derive(Debug, Default)]
pub struct LoadShedder {
    in_flight: Arc<AtomicUsize>,
}

/// Held for the life of one request (store it in the request context);
/// releases its slot on drop.
#[derive(Debug)]
pub struct InFlightGuard {
    in_flight: Arc<AtomicUsize>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a request was shed, with what to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    pub in_flight: usize,
    pub retry_after_secs: u64,
}

impl LoadShedder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes an in-flight slot, or says the request must be shed (503) under `limits`.
    pub fn try_acquire(&self, limits: &ShedConfig) -> Result<InFlightGuard, Shed> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        // Take the slot first and give it back when over: a compare loop would
        // be exact but slower under contention; overshoot is at most the
        // number of racing threads, and only for an instant.
        let guard = InFlightGuard {
            in_flight: self.in_flight.clone(),
        };
        let max = limits.max_in_flight;
        if max != 0 && now > max {
            drop(guard);
            return Err(Shed {
                in_flight: now - 1,
                retry_after_secs: limits.retry_after_secs,
            });
        }
        Ok(guard)
    }

    /// Requests in flight now (for a gauge).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> ShedConfig {
        ShedConfig {
            max_in_flight: max,
            retry_after_secs: 2,
        }
    }

    #[test]
    fn sheds_above_max_and_recovers_when_guards_drop() {
        let (s, two) = (LoadShedder::new(), limits(2));
        let a = s.try_acquire(&two).unwrap();
        let _b = s.try_acquire(&two).unwrap();
        let shed = s.try_acquire(&two).unwrap_err();
        assert_eq!(shed.retry_after_secs, 2);
        assert_eq!(shed.in_flight, 2);
        assert_eq!(s.in_flight(), 2, "a refused request holds no slot");
        drop(a);
        assert_eq!(s.in_flight(), 1);
        assert!(s.try_acquire(&two).is_ok());
        // A reload to a lower limit: the two in flight stay counted.
        assert!(s.try_acquire(&limits(1)).is_err());
    }

    #[test]
    fn zero_disables_shedding() {
        let (s, off) = (LoadShedder::new(), limits(0));
        let guards: Vec<_> = (0..1000).map(|_| s.try_acquire(&off).unwrap()).collect();
        assert_eq!(s.in_flight(), 1000);
        drop(guards);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn config_rejects_unknown_fields() {
        assert!(toml::from_str::<ShedConfig>("max_inflight = 3").is_err());
        let c: ShedConfig = toml::from_str("max_in_flight = 3").unwrap();
        assert_eq!(c.max_in_flight, 3);
        assert_eq!(c.retry_after_secs, 1);
    }
}
