//! What the edge remembers about a downstream TLS connection after the handshake: version,
//! cipher and SNI for logs and the profile backstop, and a guard counting active connections.

use crate::metrics::Metrics;
use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use std::any::Any;
use std::sync::Arc;

/// Stored in Pingora's SSL digest extension; lives as long as the connection.
#[derive(Debug)]
pub struct TlsInfo {
    pub version: &'static str,
    pub cipher: &'static str,
    pub server_name: Option<String>,
    _guard: ConnGuard,
}

/// Decrements the active-connections gauge when the connection (and its digest) is dropped.
#[derive(Debug)]
struct ConnGuard {
    metrics: Arc<Metrics>,
    listener: String,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.metrics
            .active_connections
            .with_label_values(&[&self.listener])
            .dec();
    }
}

pub struct HandshakeCallbacks {
    pub listener: String,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl TlsAccept for HandshakeCallbacks {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let version = protocol_version(tls.version());
        self.metrics
            .tls_handshakes
            .with_label_values(&[&self.listener, version])
            .inc();
        self.metrics
            .active_connections
            .with_label_values(&[&self.listener])
            .inc();
        Some(Arc::new(TlsInfo {
            version,
            cipher: tls.current_cipher_name().unwrap_or("unknown"),
            server_name: tls.server_name().map(str::to_string),
            _guard: ConnGuard {
                metrics: self.metrics.clone(),
                listener: self.listener.clone(),
            },
        }))
    }
}

/// OpenTelemetry-style version ("1.2", "1.3") from rustls' name ("TLSv1_3" or "TLSv1.3").
fn protocol_version(name: Option<&'static str>) -> &'static str {
    match name {
        Some(n) if n.ends_with("1_3") || n.ends_with("1.3") => "1.3",
        Some(n) if n.ends_with("1_2") || n.ends_with("1.2") => "1.2",
        Some(n) => n,
        None => "unknown",
    }
}
