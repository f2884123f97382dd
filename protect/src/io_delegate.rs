//! Forwarding of the stream traits a wrapper does not change to its `inner`
//! field, so each wrapper only writes the part it changes (`AsyncRead`, and
//! for some `AsyncWrite`): [`delegate_async_write!`](crate::delegate_async_write)
//! for tokio's `AsyncWrite`, and (feature `pingora`)
//! [`delegate_stream_traits!`](crate::delegate_stream_traits) for the Pingora
//! stream traits of a wrapper around a downstream `Stream`. Exported for the
//! edge's own stream wrappers.

#[cfg(feature = "pingora")]
#[doc(hidden)]
pub mod __private {
    pub use async_trait;
    pub use pingora_core;
}

/// Implements `Shutdown`, `UniqueID`, `Ssl`, `GetTimingDigest`,
/// `GetProxyDigest`, `GetSocketDigest` and `Peek` by forwarding to `self.inner`.
#[cfg(feature = "pingora")]
#[macro_export]
macro_rules! delegate_stream_traits {
    ($ty:ty) => {
        #[$crate::io_delegate::__private::async_trait::async_trait]
        impl $crate::io_delegate::__private::pingora_core::protocols::Shutdown for $ty {
            async fn shutdown(&mut self) {
                self.inner.shutdown().await
            }
        }

        impl $crate::io_delegate::__private::pingora_core::protocols::UniqueID for $ty {
            fn id(&self) -> $crate::io_delegate::__private::pingora_core::protocols::UniqueIDType {
                self.inner.id()
            }
        }

        impl $crate::io_delegate::__private::pingora_core::protocols::Ssl for $ty {
            fn get_ssl(&self) -> Option<&$crate::io_delegate::__private::pingora_core::protocols::tls::TlsRef> {
                self.inner.get_ssl()
            }
            fn get_ssl_digest(
                &self,
            ) -> Option<std::sync::Arc<$crate::io_delegate::__private::pingora_core::protocols::tls::SslDigest>> {
                self.inner.get_ssl_digest()
            }
            fn selected_alpn_proto(&self) -> Option<$crate::io_delegate::__private::pingora_core::protocols::ALPN> {
                self.inner.selected_alpn_proto()
            }
        }

        impl $crate::io_delegate::__private::pingora_core::protocols::GetTimingDigest for $ty {
            fn get_timing_digest(&self) -> Vec<Option<$crate::io_delegate::__private::pingora_core::protocols::TimingDigest>> {
                self.inner.get_timing_digest()
            }
            fn get_read_pending_time(&self) -> std::time::Duration {
                self.inner.get_read_pending_time()
            }
            fn get_write_pending_time(&self) -> std::time::Duration {
                self.inner.get_write_pending_time()
            }
        }

        impl $crate::io_delegate::__private::pingora_core::protocols::GetProxyDigest for $ty {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<$crate::io_delegate::__private::pingora_core::protocols::raw_connect::ProxyDigest>> {
                self.inner.get_proxy_digest()
            }
            fn set_proxy_digest(
                &mut self,
                digest: $crate::io_delegate::__private::pingora_core::protocols::raw_connect::ProxyDigest,
            ) {
                self.inner.set_proxy_digest(digest)
            }
        }

        impl $crate::io_delegate::__private::pingora_core::protocols::GetSocketDigest for $ty {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<$crate::io_delegate::__private::pingora_core::protocols::SocketDigest>> {
                self.inner.get_socket_digest()
            }
            fn set_socket_digest(&mut self, d: $crate::io_delegate::__private::pingora_core::protocols::SocketDigest) {
                self.inner.set_socket_digest(d)
            }
        }

        #[$crate::io_delegate::__private::async_trait::async_trait]
        impl $crate::io_delegate::__private::pingora_core::protocols::Peek for $ty {
            async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
                self.inner.try_peek(buf).await
            }
        }
    };
}

/// Implements `AsyncWrite` by forwarding to `self.inner`: `(Type)` for a
/// concrete type, `(generic Type)` for `Type<S>` over any `S: AsyncWrite + Unpin`.
#[macro_export]
macro_rules! delegate_async_write {
    (@impl [$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> tokio::io::AsyncWrite for $ty {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }
            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }
            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
    (generic $name:ident) => {
        $crate::delegate_async_write!(@impl [S: tokio::io::AsyncWrite + Unpin] $name<S>);
    };
    ($ty:ty) => {
        $crate::delegate_async_write!(@impl [] $ty);
    };
}
