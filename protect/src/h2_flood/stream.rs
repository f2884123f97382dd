//! The downstream stream wrapper that watches the client's HTTP/2 frames and
//! fails the read (closing the connection) on a rapid-reset flood.

use pingora_core::protocols::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use super::scanner::{FrameScanner, Verdict};
use crate::denial::{Denial, DenialReason, OnDenial};

#[derive(derive_more::Debug)]
pub struct ResetGuard {
    inner: Stream,
    #[debug(skip)]
    scanner: FrameScanner,
    flooded: bool,
    #[debug(skip)]
    on_flood: OnDenial,
}

impl ResetGuard {
    /// Wraps the plaintext downstream stream (h2c, or after TLS).
    pub fn new(inner: Stream, max_resets_per_sec: u32, on_flood: OnDenial) -> Self {
        Self {
            inner,
            scanner: FrameScanner::new(max_resets_per_sec),
            flooded: false,
            on_flood,
        }
    }

    fn flood_error() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "HTTP/2 stream reset flood",
        )
    }
}

impl AsyncRead for ResetGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.flooded {
            return Poll::Ready(Err(Self::flood_error()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if !this.scanner.is_off()
                && this
                    .scanner
                    .feed(&buf.filled()[before..], std::time::Instant::now())
                    == Verdict::ResetFlood
            {
                this.flooded = true;
                let mut denial = Denial::new(DenialReason::H2ResetFlood)
                    .detail("too many RST_STREAM frames per second");
                if let Some(peer) = this
                    .inner
                    .get_socket_digest()
                    .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().copied()))
                {
                    denial = denial.client(peer);
                }
                (this.on_flood)(denial);
                // Drop what was read with the flood: nothing more reaches h2.
                buf.set_filled(before);
                return Poll::Ready(Err(Self::flood_error()));
            }
        }
        result
    }
}

crate::delegate_async_write!(ResetGuard);
crate::delegate_stream_traits!(ResetGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2_flood::scanner::tests::{preface_and_settings, rst};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A real loopback connection; returns (server side wrapped, client side).
    async fn pair(max: u32, seen: Arc<Mutex<Vec<Denial>>>) -> (ResetGuard, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream: Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(server));
        let guard = ResetGuard::new(stream, max, Arc::new(move |d| seen.lock().unwrap().push(d)));
        (guard, client)
    }

    async fn read_all(guard: &mut ResetGuard) -> (usize, Option<std::io::Error>) {
        let mut total = 0;
        let mut buf = [0u8; 64];
        loop {
            match guard.read(&mut buf).await {
                Ok(0) => return (total, None),
                Ok(n) => total += n,
                Err(e) => return (total, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn rapid_reset_flood_closes_the_connection() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut guard, mut client) = pair(10, seen.clone()).await;
        let mut wire = preface_and_settings();
        for i in 0..50 {
            wire.extend(rst(2 * i + 1));
        }
        client.write_all(&wire).await.unwrap();
        client.shutdown().await.unwrap();
        let (passed, err) = read_all(&mut guard).await;
        let err = err.expect("flood not detected");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert!(passed < wire.len(), "every byte of the flood reached h2");
        {
            let denials = seen.lock().unwrap();
            assert_eq!(denials.len(), 1);
            assert_eq!(denials[0].reason, DenialReason::H2ResetFlood);
        }
        // Further reads keep failing.
        let mut buf = [0u8; 8];
        assert!(guard.read(&mut buf).await.is_err());
    }

    #[tokio::test]
    async fn normal_h2_and_http1_pass_through() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut guard, mut client) = pair(10, seen.clone()).await;
        let mut wire = preface_and_settings();
        for i in 0..10 {
            wire.extend(rst(2 * i + 1)); // at the limit, not over it
        }
        client.write_all(&wire).await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_all(&mut guard).await.0, wire.len());

        let (mut guard, mut client) = pair(1, seen.clone()).await;
        let mut wire = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        wire.extend([rst(1), rst(3), rst(5)].concat());
        client.write_all(&wire).await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_all(&mut guard).await.0, wire.len());
        assert!(seen.lock().unwrap().is_empty());
    }
}
