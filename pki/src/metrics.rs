//! Prometheus metrics of the CA service.

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use time::OffsetDateTime;

/// The CA's metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Certificates issued, by kind (`bootstrap`, `renew`, `edge`, `server`).
    pub issued: IntCounterVec,
    /// Requests refused, by reason (see `PkiError::reason`).
    pub refused: IntCounterVec,
    /// Seconds until each CA certificate expires.
    pub ca_expiry: GaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let issued = IntCounterVec::new(
            Opts::new(
                "rampart_pki_certificates_issued_total",
                "Certificates issued",
            ),
            &["kind"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "rampart_pki_certificates_refused_total",
                "Issuance requests refused",
            ),
            &["reason"],
        )?;
        let ca_expiry = GaugeVec::new(
            Opts::new(
                "rampart_pki_ca_seconds_to_expiry",
                "Seconds until a CA certificate expires",
            ),
            &["ca", "serial"],
        )?;
        registry.register(Box::new(issued.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(ca_expiry.clone()))?;
        Ok(Metrics {
            registry,
            issued,
            refused,
            ca_expiry,
        })
    }

    /// Replaces the CA expiry gauges with the current CA certificates.
    pub fn set_ca_expiry(&self, cas: &[(&str, &str, OffsetDateTime)]) {
        self.ca_expiry.reset();
        let now = OffsetDateTime::now_utc();
        for (kind, serial, not_after) in cas {
            self.ca_expiry
                .with_label_values(&[kind, serial])
                .set((*not_after - now).as_seconds_f64());
        }
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
