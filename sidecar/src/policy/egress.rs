//! The egress part of the policy file: `[egress]`, this service's allowed external
//! destinations, and `[gateway.SERVICE]`, what each service may reach through the egress
//! gateway (in the gateway's own policy file). Both are `rampart_egress::EgressPolicy` values,
//! parsed with the rest of the file (`deny_unknown_fields`, errors at file:line:field) and
//! reloaded with it.
//!
//! ```toml
//! [egress]                              # this service's egress; no rule, no egress
//! dnssec = "if-signed"                  # or "required"; default for the host rules
//!
//! [[egress.hosts]]
//! name = "stripe"
//! host = "api.stripe.com"               # exact, or "*.example.com" (labels below, not the apex)
//! ports = [443]
//! protocol = "tls"                      # "tls" (SNI checked) | "http" (Host checked)
//!
//! [[egress.addresses]]                  # raw addresses: only explicitly
//! name = "partner-sftp"
//! networks = ["203.0.113.7/32"]
//! ports = [22]
//! protocol = "tls"
//!
//! [gateway.frontend]                    # gateway policy file: callers by directory service
//! [[gateway.frontend.hosts]]
//! host = "api.stripe.com"
//! ports = [443]
//! protocol = "tls"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_egress::EgressPolicy;

/// The compiled egress sections of one policy file.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    /// `[egress]`: this service's egress, and the line it starts at.
    pub own: Option<(Arc<EgressPolicy>, usize)>,
    /// `[gateway.SERVICE]`: per calling service, for the egress gateway.
    pub by_service: BTreeMap<String, (Arc<EgressPolicy>, usize)>,
}

impl EgressRules {
    /// Warnings on broad rules (`EgressPolicy::check`), and gateway sections naming services
    /// the directory does not know.
    pub(super) fn lint(
        &self,
        config: Option<&crate::config::Config>,
        directory: Option<&crate::directory::Directory>,
        warn: &mut dyn FnMut(usize, String, String),
    ) {
        if let (Some((_, line)), Some(c)) = (&self.own, config) {
            if c.egress.is_none() {
                warn(
                    *line,
                    "[egress]".into(),
                    "the sidecar config has no [egress] section (resolvers, proxy, gateway): \
                     every egress stays denied"
                        .into(),
                );
            }
        }
        if let (Some(c), false) = (config, self.by_service.is_empty()) {
            if c.gateway.is_none() {
                warn(
                    0,
                    "[gateway.*]".into(),
                    "gateway rules, but the config has no [gateway] section: only an egress \
                     gateway applies them"
                        .into(),
                );
            }
        }
        if let Some((p, line)) = &self.own {
            for w in p.check() {
                warn(*line, format!("[egress] {}", w.rule), w.message);
            }
        }
        for (service, (p, line)) in &self.by_service {
            for w in p.check() {
                warn(*line, format!("[gateway.{service}] {}", w.rule), w.message);
            }
            if let Some(d) = directory {
                if d.service(service).is_none() {
                    warn(
                        *line,
                        format!("[gateway.{service}]"),
                        "no such service in the directory: no caller can use these rules".into(),
                    );
                }
            }
        }
    }
}

impl super::Policy {
    /// This service's egress policy (`[egress]`); `None`: every egress is denied.
    pub fn egress(&self) -> Option<&Arc<EgressPolicy>> {
        self.egress.own.as_ref().map(|(p, _)| p)
    }

    /// The egress policy the gateway applies to callers of `service` (`[gateway.SERVICE]`).
    pub fn gateway_egress(&self, service: &str) -> Option<&Arc<EgressPolicy>> {
        self.egress.by_service.get(service).map(|(p, _)| p)
    }

    /// The egress sections of the file.
    pub fn egress_rules(&self) -> &EgressRules {
        &self.egress
    }
}
