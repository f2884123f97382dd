//! The Pingora side of the connection caps: a `ConnectionFilter` that admits
//! or drops a connection before its TLS handshake, and a `ServerApp` wrapper
//! that moves the connection's [`ConnGuard`] into the stream itself
//! ([`TrackedStream`]), so the slots are released when Pingora drops the
//! connection.
//!
//! Wiring (in the proxy's `main`); `ConnTracked` must be the outermost app,
//! so it sees the raw TCP stream and its peer address:
//! ```ignore
//! let filter = Arc::new(ConnCapFilter::new(limiter, grace, on_denial));
//! let app = ConnTracked::new(EdgeApp::new(pingora_proxy::http_proxy(&conf, edge), shared), filter.clone());
//! let mut service = Service::new("rampart edge".into(), app);
//! service.set_connection_filter(filter.clone());
//! // and run filter.sweeper() on a runtime (`Defences` does both)
//! ```

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::listeners::ConnectionFilter;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::filter::ConnCapFilter;
use super::slot;
use super::stream::TrackedStream;

#[async_trait]
impl ConnectionFilter for ConnCapFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        // Unix-socket peers have no address; they are local and not capped.
        addr.is_none_or(|peer| self.admit(*peer))
    }
}

/// Wraps the proxy app: a new connection's guard moves into its stream.
pub struct ConnTracked<A> {
    inner: Arc<A>,
    filter: Arc<ConnCapFilter>,
}

impl<A> ConnTracked<A> {
    pub fn new(inner: A, filter: Arc<ConnCapFilter>) -> Self {
        Self {
            inner: Arc::new(inner),
            filter,
        }
    }
}

fn peer_of(stream: &Stream) -> Option<SocketAddr> {
    stream.get_socket_digest()?.peer_addr()?.as_inet().copied()
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnTracked<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive stream coming back already carries its guard (deeper
        // inside), and has nothing parked: it passes through unchanged.
        let Some(guard) = peer_of(&stream).and_then(|p| self.filter.claim(p)) else {
            return self.inner.process_new(stream, shutdown).await;
        };
        if guard.slot().is_evicted() {
            return None; // evicted before it reached the app: close it
        }
        // The slot is reachable (task-local) while the app sets the
        // connection up, so the slow-client guard can report its state.
        let slot = guard.slot().clone();
        let stream: Stream = Box::new(TrackedStream::new(stream, guard));
        OfferSlot {
            slot: Some(slot),
            app: self.inner.process_new(stream, shutdown),
        }
        .await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// The app's future for a new connection, polled with the connection's slot
/// in [`slot::CURRENT`] until the app takes it ([`slot::current`]; the
/// slow-client guard does, before the first request), then directly: the
/// task-local is swapped in and out on every poll it spans, and an HTTP/1
/// connection's whole keep-alive loop runs in this one future.
struct OfferSlot<F> {
    slot: Option<Arc<slot::ConnSlot>>,
    app: F,
}

impl<F: Future + Unpin> Future for OfferSlot<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        match this.slot.as_ref().filter(|s| !s.is_taken()) {
            Some(slot) => {
                let slot = slot.clone();
                slot::CURRENT.sync_scope(slot, || Pin::new(&mut this.app).poll(cx))
            }
            None => {
                this.slot = None;
                Pin::new(&mut this.app).poll(cx)
            }
        }
    }
}

#[cfg(test)]
mod tests;
