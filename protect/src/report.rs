//! Reporting a denial: the `rampart_denials_total{reason,route,family}`
//! counter with bounded labels, and the alerter every denial is fed to.

use arc_swap::{ArcSwap, ArcSwapOption};
use prometheus::{IntCounterVec, Opts, Registry};
use std::collections::HashSet;
use std::sync::Arc;

use crate::alert::{AlertEvent, AlertHandle, AlertSink};
use crate::denial::{family_label, Denial, DenialReason};

/// Name of the denial counter; deploy/prometheus/rampart-alerts.yml uses it.
pub const DENIALS_METRIC: &str = "rampart_denials_total";

/// Counts denials and forwards them to the alerter. Built once at load with
/// the route names of the config (bounded `route` label).
#[derive(Debug, Clone)]
pub struct Denials {
    counter: IntCounterVec,
    /// Route names and the alerter: shared by every clone and swapped by a
    /// reload (`set_routes`, `set_alerts`).
    routes: Arc<ArcSwap<HashSet<String>>>,
    alerts: Arc<ArcSwapOption<AlertHandle>>,
}

impl Denials {
    /// Registers `rampart_denials_total{reason,route,family}` in `registry`.
    pub fn new(
        registry: &Registry,
        routes: impl IntoIterator<Item = String>,
        alerts: Option<AlertHandle>,
    ) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                DENIALS_METRIC,
                "Requests and connections refused by the edge",
            ),
            &["reason", "route", "family"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Self {
            counter,
            routes: Arc::new(ArcSwap::from_pointee(routes.into_iter().collect())),
            alerts: Arc::new(ArcSwapOption::from(alerts.map(Arc::new))),
        })
    }

    /// The route names of a reloaded config (the bounded `route` label).
    pub fn set_routes(&self, routes: impl IntoIterator<Item = String>) {
        self.routes.store(Arc::new(routes.into_iter().collect()));
    }

    /// The alerter of a reloaded config.
    pub fn set_alerts(&self, alerts: Option<AlertHandle>) {
        self.alerts.store(alerts.map(Arc::new));
    }

    /// The current alerter, as a sink that follows reloads (for the fleet limiter).
    pub fn alert_sink(&self) -> Arc<dyn AlertSink> {
        Arc::new(CurrentAlerts(self.alerts.clone()))
    }

    /// The bounded `route` label: a configured route name, else `none`.
    pub fn route_label<'a>(&self, route: Option<&'a str>) -> &'a str {
        match route {
            Some(r) if self.routes.load().contains(r) => r,
            _ => "none",
        }
    }

    /// Counts one denial and tells the alerter (never blocks).
    pub fn record(&self, denial: &Denial) {
        let route = self.route_label(denial.route.as_deref());
        let family = family_label(denial.family.as_deref());
        self.counter
            .with_label_values(&[denial.reason.as_str(), route, family])
            .inc();
        if let Some(alerts) = &*self.alerts.load() {
            alerts.observe(denial.reason, route);
        }
    }

    /// The current count for one label set (tests, debugging).
    pub fn count(&self, reason: DenialReason, route: &str, family: &str) -> u64 {
        self.counter
            .get_metric_with_label_values(&[reason.as_str(), route, family])
            .map(|c| c.get())
            .unwrap_or(0)
    }
}

/// Forwards alert events to whichever alerter the running config has.
#[derive(Debug)]
struct CurrentAlerts(Arc<ArcSwapOption<AlertHandle>>);

impl AlertSink for CurrentAlerts {
    fn raise(&self, event: AlertEvent) {
        if let Some(alerts) = &*self.0.load() {
            alerts.raise(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn labels_are_bounded() {
        let reg = Registry::new();
        let d = Denials::new(&reg, ["api".to_string()], None).unwrap();
        d.record(&Denial::new(DenialReason::RateLimit).route("api"));
        d.record(&Denial::new(DenialReason::RateLimit).route("attacker-chosen-/x"));
        d.record(
            &Denial::new(DenialReason::WafBlock)
                .route("api")
                .family("SQLI"),
        );
        d.record(&Denial::new(DenialReason::WafBlock).family("made-up"));
        assert_eq!(d.count(DenialReason::RateLimit, "api", "none"), 1);
        assert_eq!(d.count(DenialReason::RateLimit, "none", "none"), 1);
        assert_eq!(d.count(DenialReason::WafBlock, "api", "sqli"), 1);
        assert_eq!(d.count(DenialReason::WafBlock, "none", "other"), 1);

        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&reg.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text
            .contains(r#"rampart_denials_total{family="sqli",reason="waf_block",route="api"} 1"#));
        assert!(!text.contains("attacker-chosen"));
    }
}
