//! The Pingora app wrapper every downstream connection goes through: TLS termination with the
//! listener's own rustls config (see `tls`), then the hardened stream (see `parser_errors`),
//! then Pingora's HTTP proxy.

use super::hardened::HardenedStream;
use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;

pub struct EdgeApp<A> {
    inner: Arc<A>,
    shared: Arc<Shared>,
}

impl<A> EdgeApp<A> {
    pub fn new(inner: A, shared: Arc<Shared>) -> Self {
        EdgeApp {
            inner: Arc::new(inner),
            shared,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for EdgeApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if stream.as_any().is::<HardenedStream>() {
            // A kept-alive connection coming back for its next request.
            return self.inner.process_new(stream, shutdown).await;
        }
        let port = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet().map(|a| a.port())));
        // The TLS config of the generation current now; the connection keeps it.
        let (name, tls) = {
            let rt = self.shared.runtime.load();
            let listener = port.and_then(|p| rt.listeners.get(&p).cloned());
            let name = listener.map(|l| l.name.clone()).unwrap_or_default();
            let tls = rt.tls.get(&name).cloned();
            (name, tls)
        };
        let metrics = &self.shared.metrics;
        let stream: Stream = match tls {
            Some(config) => Box::new(crate::tls::accept(&name, config, metrics, stream).await?),
            None => stream,
        };
        // Slow-client deadlines and, on an h2 connection, the reset-flood bound see the
        // decrypted bytes.
        let stream = self.shared.defences.guard_stream(stream);
        let gauge = self
            .shared
            .metrics
            .active_connections
            .with_label_values(&[&name]);
        let stream = Box::new(HardenedStream::new(stream, self.shared.clone(), gauge));
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
