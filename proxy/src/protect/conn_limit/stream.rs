//! A downstream stream that owns its connection's [`ConnGuard`]: the slots
//! are given back exactly when Pingora drops the connection, wherever that
//! happens (end of keep-alive, HTTP/2 teardown, error, task unwinding).

use pingora_core::protocols::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use super::ConnGuard;
use crate::protect::io_delegate::{delegate_async_write, delegate_stream_traits};

#[derive(Debug)]
pub struct TrackedStream {
    inner: Stream,
    _guard: ConnGuard,
}

impl TrackedStream {
    pub fn new(inner: Stream, guard: ConnGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

delegate_async_write!(TrackedStream);
delegate_stream_traits!(TrackedStream);
