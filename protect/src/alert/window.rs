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
    quiet_until: Option<Instant>,
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
            quiet_until: None,
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
        if let Some(until) = self.quiet_until {
            if now < until {
                // One suppressed alert per threshold's worth of denials.
                self.hits.clear();
                self.suppressed += 1;
                return Outcome::Suppressed;
            }
        }
        self.quiet_until = Some(now + self.cooldown);
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
