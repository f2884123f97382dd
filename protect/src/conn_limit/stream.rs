//! A downstream stream that owns its connection's [`ConnGuard`]: the slots
//! are given back exactly when Pingora drops the connection, wherever that
//! happens (end of keep-alive, HTTP/2 teardown, error, task unwinding).
//! When the per-IP cap evicts the connection (see `slot`), the next read
//! fails, so Pingora closes it (the slots were already given back).

use std::io::{Error, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use super::ConnGuard;

/// Generic over the stream it wraps (a Pingora `Stream` in the edge, a TCP
/// or TLS stream elsewhere).
#[derive(Debug)]
pub struct TrackedStream<S> {
    inner: S,
    guard: ConnGuard,
}

impl<S> TrackedStream<S> {
    pub fn new(inner: S, guard: ConnGuard) -> Self {
        Self { inner, guard }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let evicted = || Error::new(ErrorKind::ConnectionAborted, "evicted: per-IP cap");
        if self.guard.slot().is_evicted() {
            return Poll::Ready(Err(evicted()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            // Waiting on the client: be woken by an eviction too (checked
            // again after registering, so a concurrent one is not missed).
            Poll::Pending if self.guard.slot().register(cx) => Poll::Ready(Err(evicted())),
            other => other,
        }
    }
}

crate::delegate_async_write!(generic TrackedStream);
#[cfg(feature = "pingora")]
crate::delegate_stream_traits!(TrackedStream<pingora_core::protocols::Stream>);
