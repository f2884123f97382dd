//! Reporting a denial: the `rampart_denials_total{reason,route,family}`
//! counter with bounded labels, and the alerter every denial is fed to.

use prometheus::{IntCounterVec, Opts, Registry};
use std::collections::HashSet;
use std::sync::Arc;

use crate::alert::{AlertEvent, AlertHandle, AlertSink};
use crate::denial::{family_label, Denial, DenialReason};

/// Name of the denial counter; deploy/prometheus/rampart-alerts.yml uses it.
pub const DENIALS_METRIC: &str = "rampart_denials_total";

/// What a denial is reported against, a setting of the running generation:
/// the configured route names (the bounded `route` label) and the alerter.
#[derive(Debug, Default)]
pub struct Reporting {
    pub routes: HashSet<String>,
    pub alerts: Option<AlertHandle>,
}

impl Reporting {
    pub fn new(routes: impl IntoIterator<Item = String>, alerts: Option<AlertHandle>) -> Self {
        Self {
            routes: routes.into_iter().collect(),
            alerts,
        }
    }

    /// The bounded `route` label: a configured route name, else `none`.
    pub fn route_label<'a>(&self, route: Option<&'a str>) -> &'a str {
        match route {
            Some(r) if self.routes.contains(r) => r,
            _ => "none",
        }
    }
}

/// Where [`Denials`] reads the [`Reporting`] in force: a fixed one, or the
/// running generation of the process that embeds it.
pub type ReportingSource = Arc<dyn Fn() -> Arc<Reporting> + Send + Sync>;

/// Counts denials and forwards them to the alerter of the running
/// generation.
#[derive(derive_more::Debug, Clone)]
pub struct Denials {
    counter: IntCounterVec,
    #[debug(skip)]
    current: ReportingSource,
}

impl Denials {
    /// Registers `rampart_denials_total{reason,route,family}` in `registry`;
    /// route names and alerter from `current`.
    pub fn new(registry: &Registry, current: ReportingSource) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                DENIALS_METRIC,
                "Requests and connections refused by the edge",
            ),
            &["reason", "route", "family"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Self { counter, current })
    }

    /// With fixed route names and alerter.
    pub fn fixed(
        registry: &Registry,
        routes: impl IntoIterator<Item = String>,
        alerts: Option<AlertHandle>,
    ) -> Result<Self, prometheus::Error> {
        let reporting = Arc::new(Reporting::new(routes, alerts));
        Self::new(registry, Arc::new(move || reporting.clone()))
    }

    /// The alerter in force at each event, as a sink (for the fleet limiter).
    pub fn alert_sink(&self) -> Arc<dyn AlertSink> {
        Arc::new(CurrentAlerts(self.current.clone()))
    }

    /// Counts one denial and tells the alerter (never blocks).
    pub fn record(&self, denial: &Denial) {
        let reporting = (self.current)();
        let route = reporting.route_label(denial.route.as_deref());
        let family = family_label(denial.family.as_deref());
        self.counter
            .with_label_values(&[denial.reason.as_str(), route, family])
            .inc();
        if let Some(alerts) = &reporting.alerts {
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
#[derive(derive_more::Debug)]
struct CurrentAlerts(#[debug(skip)] ReportingSource);

impl AlertSink for CurrentAlerts {
    fn raise(&self, event: AlertEvent) {
        if let Some(alerts) = &(self.0)().alerts {
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
        let d = Denials::fixed(&reg, ["api".to_string()], None).unwrap();
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
