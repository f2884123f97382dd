//! Requests Pingora cannot parse never reach `ProxyHttp`: Pingora answers them itself with a
//! bare `400` carrying `Server: Pingora`. This wrapper sits between Pingora and each downstream
//! connection and replaces exactly those banner responses (recognised by Pingora's fixed
//! `Server: Pingora` line, which no other path emits) with a hardened edge response, and logs and
//! counts the rejected request.
//!
//! It also follows the HTTP/1 framing of every request as read off the wire ([`Framing`]):
//! what Pingora would normalise or wait on (a space in the target, a bare-LF chunk line) is
//! latched with its reason, which the filters read through [`framing_of`].

use super::framing::{Framing, Malformed};
use crate::access_log::{AccessRecord, ServerAddr, Timestamp};
use crate::policy::forward::ConnForward;
use crate::policy::headers::HeaderPolicy;
use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, SocketDigest, TimingDigest,
};
use pingora_core::protocols::{Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType, ALPN};
use pingora_http::ResponseHeader;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const BANNER_LINE: &[u8] = b"\r\nServer: Pingora\r\n";

#[derive(Debug)]
pub struct HardenedStream {
    pub(crate) inner: Stream,
    /// Bytes accepted but not yet written to `inner`: a replacement answer, or a small write
    /// held back to go out in one TLS record with the next write (see `poll_write`).
    pending: Vec<u8>,
    /// The next write is the first since a flush (a response head): it may be held.
    hold_next: bool,
    /// A `408` for an expired header deadline was queued (once per connection).
    timeout_answered: bool,
    shared: Arc<Shared>,
    /// Open connections on this listener; decremented when the connection is dropped.
    active: prometheus::IntGauge,
    /// The request framing read so far (locked only by the filters' queries: reads use
    /// `get_mut`).
    framing: Mutex<Framing>,
    /// Requests the filters have asked about: the index of the one in `request_filter`.
    asked: AtomicU64,
    /// The forwarding header values of this connection's requests, made once.
    forward: ConnForward,
}

impl Drop for HardenedStream {
    fn drop(&mut self) {
        self.active.dec();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

fn is_banner_response(buf: &[u8]) -> Option<u16> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    if !buf[line_end..].starts_with(BANNER_LINE) {
        return None;
    }
    std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()
}

impl HardenedStream {
    pub fn new(inner: Stream, shared: Arc<Shared>, active: prometheus::IntGauge) -> Self {
        active.inc();
        let h2 = inner.selected_alpn_proto() == Some(ALPN::H2);
        HardenedStream {
            inner,
            pending: Vec::new(),
            hold_next: true,
            timeout_answered: false,
            shared,
            active,
            framing: Mutex::new(Framing::new(h2)),
            asked: AtomicU64::new(0),
            forward: ConnForward::default(),
        }
    }

    /// The forwarding header values kept for this connection's requests.
    pub fn forward_values(&self) -> &ConnForward {
        &self.forward
    }

    fn framing(&self) -> std::sync::MutexGuard<'_, Framing> {
        self.framing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `request_filter`, once per request, first: the connection's next request begins.
    pub fn begin_request(&self) {
        self.asked.fetch_add(1, Ordering::Relaxed);
    }

    /// The framing malformation of the request in `request_filter` (or of an earlier one on
    /// the connection), if the bytes read so far show one.
    pub fn request_problem(&self) -> Option<Malformed> {
        let index = self.asked.load(Ordering::Relaxed).saturating_sub(1);
        self.framing()
            .error()
            .filter(|(at, _)| *at <= index)
            .map(|(_, m)| m)
    }

    /// Any malformation latched on this connection (a body read that failed because of it).
    pub fn malformed(&self) -> Option<Malformed> {
        self.framing().error().map(|(_, m)| m)
    }

    /// For the last step before the request head leaves, under one lock: whether the request
    /// in `request_filter` is chunked with its first chunk line not read yet, and its framing
    /// malformation so far (as [`Self::request_problem`]).
    pub fn before_forward(&self) -> (bool, Option<Malformed>) {
        let index = self.asked.load(Ordering::Relaxed).saturating_sub(1);
        let framing = self.framing();
        let problem = framing.error().filter(|(at, _)| *at <= index);
        (framing.first_chunk_pending(index), problem.map(|(_, m)| m))
    }

    /// The status answered to the current request (an upgrade leaves HTTP on `101`).
    pub fn responded(&self, status: u16) {
        self.framing().response(status);
    }

    fn replacement(&self, status: u16) -> Vec<u8> {
        let https = self.inner.get_ssl_digest().is_some();
        let request_id = format!("{:032x}", rand::random::<u128>());
        let out = edge_response(status, Some(&request_id), https);
        self.record(status, request_id, https);
        out
    }

    /// The whole-header deadline expired (the guard below already counted and logged the
    /// `header_timeout` denial): queue a `408` that `Shutdown::shutdown` writes out before
    /// Pingora closes the connection. No request id: no request line was logged for it.
    fn on_read_error(&mut self, e: &std::io::Error, cx: &mut Context<'_>) {
        if self.timeout_answered || !rampart_protect::slow_client::is_header_timeout(e) {
            return;
        }
        self.timeout_answered = true;
        let https = self.inner.get_ssl_digest().is_some();
        self.pending.extend(edge_response(408, None, https));
        // Usually fits the socket buffer at once; the rest goes out in shutdown.
        let _ = self.drain(cx);
    }
}

/// The default header policy for answers written below Pingora's HTTP layer, compiled once (not
/// per answer: a slow client triggering the header-timeout answer must not cost a compile).
static DEFAULT_POLICY: std::sync::LazyLock<HeaderPolicy> =
    std::sync::LazyLock::new(HeaderPolicy::default);

/// A complete hardened edge response (status line, policy headers, `Connection: close`, short
/// text body) for answers written below Pingora's HTTP layer.
fn edge_response(status: u16, request_id: Option<&str>, https: bool) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = format!("{status} {reason}\n");
    let mut resp = match ResponseHeader::build(status, Some(10)) {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let _ = resp.insert_header("content-type", "text/plain; charset=utf-8");
    let _ = resp.insert_header("content-length", body.len().to_string());
    let _ = resp.insert_header("cache-control", "no-store");
    let _ = resp.insert_header("connection", "close");
    if let Some(id) = request_id {
        let _ = resp.insert_header("x-request-id", id);
    }
    DEFAULT_POLICY.apply(&mut resp, https);
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (k, v) in resp.headers.iter() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

impl HardenedStream {
    /// Counts and logs a request Pingora refused before our filters saw it.
    fn record(&self, status: u16, request_id: String, https: bool) {
        let m = &self.shared.metrics;
        m.requests
            .with_label_values(&["", crate::metrics::status_class(status)])
            .inc();
        let sock = self.inner.get_socket_digest();
        let peer = sock
            .as_ref()
            .and_then(|s| s.peer_addr().and_then(|a| a.as_inet().copied()));
        let local = sock
            .as_ref()
            .and_then(|s| s.local_addr().and_then(|a| a.as_inet().copied()));
        let mut denial =
            rampart_protect::denial::Denial::new(rampart_protect::denial::DenialReason::BadRequest)
                .detail(
                    self.malformed()
                        .map_or("unparsable_request", Malformed::reason),
                );
        denial.client = peer;
        self.shared.defences.denials.record(&denial);
        m.count_malformed(&denial);
        let mut extra = serde_json::Map::new();
        extra.insert("rampart.denial.by".into(), denial.stage().into());
        extra.insert("rampart.denial.reason".into(), denial.label().into());
        let tls = self.inner.get_ssl_digest();
        let info = tls.as_deref().map(crate::tls::TlsInfo::from_digest);
        let rt = self.shared.runtime.load();
        let listener = local.and_then(|l| rt.listeners.get(&l.port()));
        let ip = |a: Option<std::net::SocketAddr>| a.map(|a| a.ip());
        let record = AccessRecord {
            timestamp: Timestamp::now(),
            request_id: &request_id,
            listener: listener.map_or("", |l| l.name.as_str()),
            client_address: ip(peer),
            client_port: peer.map(|p| p.port()),
            peer_address: ip(peer),
            peer_port: peer.map(|p| p.port()),
            server_address: ServerAddr::Local(ip(local)),
            scheme: if https { "https" } else { "http" },
            protocol: "1.1",
            status,
            tls_version: info.map(|i| i.version),
            tls_cipher: info.map(|i| i.cipher),
            tls_server_name: info.and_then(|i| i.server_name),
            error: Some("InvalidHTTPHeader"),
            extra: Some(&extra),
            ..Default::default()
        };
        self.shared.access_log.send_with(|buf| record.write(buf));
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let res = Pin::new(&mut self.inner).poll_write(cx, &pending);
            self.pending = pending;
            match res {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for HardenedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            let begun = this.asked.load(Ordering::Relaxed);
            let framing = this.framing.get_mut().unwrap_or_else(|p| p.into_inner());
            // A malformation of the request being served (or an earlier one) fails the read, so
            // Pingora never waits on bytes that will not come. One of a later, pipelined request
            // waits: its head is already with Pingora, which refuses it when it gets there;
            // until then more bytes are read and dropped.
            let failed = framing.failed();
            let ahead = failed && framing.error().is_some_and(|(at, _)| at >= begun);
            if failed && !ahead {
                return Poll::Ready(Err(framing_error(framing)));
            }
            let before = buf.filled().len();
            let res = Pin::new(&mut this.inner).poll_read(cx, buf);
            match &res {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    this.on_read_error(e, cx);
                    return res;
                }
                Poll::Pending => return res,
            }
            let after = buf.filled().len();
            if after == before {
                return res; // end of stream
            }
            let kept = match ahead {
                true => 0,
                false => framing.scan(&mut buf.filled_mut()[before..after]),
            };
            buf.set_filled(before + kept);
            if kept > 0 {
                return res;
            }
            // Nothing to deliver (dropped, or redundant chunk-size zeros): read on.
        }
    }
}

fn framing_error(framing: &Framing) -> std::io::Error {
    let reason = framing.error().map_or("malformed", |(_, m)| m.reason());
    std::io::Error::new(std::io::ErrorKind::InvalidData, reason)
}

/// The hardened stream under an HTTP/1 session (`None` for h2 and rebuilt sessions).
pub fn framing_of(session: &pingora_proxy::Session) -> Option<&HardenedStream> {
    let stream = session.downstream_session.as_http1()?.stream();
    (**stream).as_any().downcast_ref::<HardenedStream>()
}

/// A write at most this long is held back until the next write or flush, so a response head and
/// a small body leave as one TLS record (and one syscall) instead of two.
const HOLD_MAX: usize = 4096;
/// Held bytes and the next write are joined up to one full TLS record's plaintext.
const JOIN_MAX: usize = 16 * 1024;

impl AsyncWrite for HardenedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(status) = is_banner_response(buf) {
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            let answer = self.replacement(status);
            self.pending.extend(answer);
            // The bytes are accepted; flush/shutdown finish writing the replacement.
            let _ = self.drain(cx);
            return Poll::Ready(Ok(buf.len()));
        }
        // Pingora writes a response head, then its body, then flushes: the head (the first
        // write since a flush) is held and goes out joined with the body's first write. It
        // waits for nothing else: the next write or flush sends it.
        let hold = std::mem::take(&mut self.hold_next);
        let held = self.pending.len();
        if (hold && held == 0 && buf.len() <= HOLD_MAX)
            || (held > 0 && held + buf.len() <= JOIN_MAX)
        {
            self.pending.extend_from_slice(buf);
            if held > 0 {
                if let Poll::Ready(Err(e)) = self.drain(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            return Poll::Ready(Ok(buf.len()));
        }
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|_| 0)),
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.hold_next = true;
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[async_trait]
impl Shutdown for HardenedStream {
    async fn shutdown(&mut self) {
        let _ = std::future::poll_fn(|cx| self.drain(cx)).await;
        self.inner.shutdown().await
    }
}

impl UniqueID for HardenedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HardenedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HardenedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HardenedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HardenedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for HardenedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_pingora_banner() {
        let pingora = b"HTTP/1.1 400 Bad Request\r\nServer: Pingora\r\nDate: x\r\n\r\n";
        assert_eq!(is_banner_response(pingora), Some(400));
        assert_eq!(
            is_banner_response(b"HTTP/1.1 200 OK\r\nServer: Pingora-app\r\n"),
            None
        );
        assert_eq!(
            is_banner_response(b"HTTP/1.1 200 OK\r\nX: Server: Pingora\r\n"),
            None
        );
        assert_eq!(is_banner_response(b"body bytes"), None);
    }
}
