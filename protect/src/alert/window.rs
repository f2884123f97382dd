//! Sliding-window threshold with a cool-down, for one denial reason.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

pub(super) struct Window {
    threshold: usize,
    window: Duration,
    cooldown: Duration,
    /// Times of the most recent denials; never more than `threshold`.
    hits: VecDeque<Instant>,
    /// Denials per route since the last alert (bounded: route labels are).
    routes: BTreeMap<String, u64>,
    /// When the last alert fired (the cool-down runs from there).
    fired_at: Option<Instant>,
    suppressed: u64,
}

pub(super) enum Outcome {
    Quiet,
    /// Over the threshold, but the cool-down is running.
    Suppressed,
    Fire {
        denials: usize,
        suppressed: u64,
        routes: BTreeMap<String, u64>,
    },
}

impl Window {
    pub(super) fn new(threshold: u32, window: Duration, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1) as usize,
            window,
            cooldown,
            hits: VecDeque::new(),
            routes: BTreeMap::new(),
            fired_at: None,
            suppressed: 0,
        }
    }

    pub(super) fn hit(&mut self, now: Instant, route: String) -> Outcome {
        *self.routes.entry(route).or_insert(0) += 1;
        self.hits.push_back(now);
        while self.hits.len() > self.threshold {
            self.hits.pop_front();
        }
        while let Some(&oldest) = self.hits.front() {
            if now.duration_since(oldest) > self.window {
                self.hits.pop_front();
            } else {
                break;
            }
        }
        if self.hits.len() < self.threshold {
            return Outcome::Quiet;
        }
        // Measured from the firing, never `now + cooldown`: any configured
        // cool-down, however long, is a valid one.
        if let Some(fired_at) = self.fired_at {
            if now.duration_since(fired_at) < self.cooldown {
                // One suppressed alert per threshold's worth of denials.
                self.hits.clear();
                self.suppressed += 1;
                return Outcome::Suppressed;
            }
        }
        self.fired_at = Some(now);
        let denials = self.hits.len();
        // Start counting afresh: the next alert needs a new threshold's worth.
        self.hits.clear();
        Outcome::Fire {
            denials,
            suppressed: std::mem::take(&mut self.suppressed),
            routes: std::mem::take(&mut self.routes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_cooldown_is_kept_without_overflow() {
        let mut w = Window::new(1, Duration::from_secs(60), Duration::MAX);
        let now = Instant::now();
        assert!(matches!(w.hit(now, "r".into()), Outcome::Fire { .. }));
        assert!(matches!(
            w.hit(now + Duration::from_secs(3600), "r".into()),
            Outcome::Suppressed
        ));
        let mut w = Window::new(1, Duration::from_secs(60), Duration::from_secs(10));
        assert!(matches!(w.hit(now, "r".into()), Outcome::Fire { .. }));
        assert!(matches!(
            w.hit(now + Duration::from_secs(5), "r".into()),
            Outcome::Suppressed
        ));
        assert!(matches!(
            w.hit(now + Duration::from_secs(10), "r".into()),
            Outcome::Fire { suppressed: 1, .. }
        ));
    }
}
