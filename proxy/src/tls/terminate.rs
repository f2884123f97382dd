//! Our own TLS termination: the rustls handshake with the listener's `ServerConfig`, and the
//! decrypted stream presented to Pingora as one of its `IO` streams.

use crate::metrics::Metrics;
use async_trait::async_trait;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A complete handshake must fit in this; slow or silent clients are dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the request path sees of a connection's TLS, read from Pingora's SSL digest.
///
/// Pingora offers no public way to attach our own data to a digest, so the SNI travels in the
/// digest's `organization` field, which describes a client certificate and is otherwise unused
/// at the edge (no client certificates are requested downstream).
#[derive(Debug, Clone, Copy)]
pub struct TlsInfo<'a> {
    pub version: &'a str,
    pub cipher: &'a str,
    pub server_name: Option<&'a str>,
}

impl<'a> TlsInfo<'a> {
    pub fn from_digest(d: &'a SslDigest) -> Self {
        TlsInfo {
            version: &d.version,
            cipher: &d.cipher,
            server_name: d.organization.as_deref(),
        }
    }
}

/// A decrypted downstream connection.
#[derive(Debug)]
pub struct TlsConn {
    tls: tokio_rustls::server::TlsStream<Stream>,
    digest: Arc<SslDigest>,
    alpn: Option<ALPN>,
}

/// OpenTelemetry-style version ("1.2", "1.3").
fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        _ => "unknown",
    }
}

/// Runs the handshake for `listener` with its config of the current generation. Failures are
/// counted and end the connection.
pub async fn accept(
    listener: &str,
    config: Arc<rustls::ServerConfig>,
    m: &Metrics,
    stream: Stream,
) -> Option<TlsConn> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        // A peer that connects and closes without a ClientHello (port probes, TCP health
        // checks) is not a refused handshake.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && e.get_ref().is_none() => {
            return None;
        }
        Ok(Err(e)) => {
            let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::PeerIncompatible(_)) => "incompatible",
                Some(rustls::Error::InvalidMessage(_)) => "invalid_message",
                Some(_) => "other",
                None => "io",
            };
            m.tls_refused.with_label_values(&[listener, reason]).inc();
            return None;
        }
        Err(_) => {
            m.tls_refused
                .with_label_values(&[listener, "timeout"])
                .inc();
            return None;
        }
    };
    let conn = tls.get_ref().1;
    let version = version_name(conn.protocol_version());
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("unknown");
    let sni = conn.server_name().map(str::to_string);
    let alpn = match conn.alpn_protocol() {
        Some(b"h2") => Some(ALPN::H2),
        Some(b"http/1.1") => Some(ALPN::H1),
        _ => None,
    };
    m.tls_handshakes
        .with_label_values(&[listener, version])
        .inc();
    Some(TlsConn {
        digest: Arc::new(SslDigest::new(cipher, version, sni, None, Vec::new())),
        tls,
        alpn,
    })
}

impl TlsConn {
    fn raw(&self) -> &Stream {
        self.tls.get_ref().0
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for TlsConn {
    async fn shutdown(&mut self) {
        let _ = AsyncWriteExt::shutdown(&mut self.tls).await;
    }
}

impl UniqueID for TlsConn {
    fn id(&self) -> UniqueIDType {
        self.raw().id()
    }
}

impl Ssl for TlsConn {
    fn get_ssl(&self) -> Option<&TlsRef> {
        None
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        Some(self.digest.clone())
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.alpn.clone()
    }
}

impl GetTimingDigest for TlsConn {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.raw().get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.raw().get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.raw().get_write_pending_time()
    }
}

impl GetProxyDigest for TlsConn {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.raw().get_proxy_digest()
    }
}

impl GetSocketDigest for TlsConn {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.raw().get_socket_digest()
    }
}

#[async_trait]
impl Peek for TlsConn {}
