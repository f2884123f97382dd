//! Slow clients (S.N.4) on HTTP/1.x connections: a whole-header deadline
//! (from the first byte of a request head to its end, not per read) and a
//! minimum request-body data rate. Pingora itself only has a per-read
//! timeout, so a slowloris trickling one byte per read would never time out.
//!
//! [`SlowClientGuard`] wraps the plaintext downstream stream (after TLS,
//! before Pingora's HTTP layer) and follows the request framing just enough:
//! head end (`CRLF CRLF`), then `Content-Length` body bytes. The body rate
//! only counts time the server spends waiting on the client (reads that
//! return `Pending`), so a slow upstream that stops Pingora from reading is
//! never blamed on the client. Chunked bodies are not rated. On a violation
//! the read fails (`TimedOut`, [`SlowClientError`]), Pingora closes the
//! connection, and the denial (`header_timeout` / `body_rate`) is reported
//! once. A header timeout is answered `408 Request Timeout` first (by the
//! edge's outer stream, which owns the response policy).
//!
//! It also tells the connection's [`ConnSlot`] what the connection waits
//! for (a head, a body behind the rate, or nothing from the client), so the
//! per-IP cap can evict stalled connections first (see `conn_limit::slot`).

use rampart_ops::config::Bounds;
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::conn_limit::ConnSlot;
use super::denial::{Denial, DenialReason, OnDenial};

/// `[slow_clients]` in the proxy config.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SlowClientConfig {
    /// Whole request head, first byte to blank line.
    pub header_timeout_secs: u64,
    /// Minimum request-body rate in bytes/s while the server waits; 0 = off.
    pub min_body_rate: u64,
    /// Waiting time allowed before the body rate is enforced.
    pub body_rate_grace_secs: u64,
    /// Head bytes kept to find Content-Length; longer heads are left to
    /// Pingora's header limits (the deadline still applies).
    pub max_head_bytes: usize,
}

/// `header_timeout_secs`: 1 s to one hour.
pub const HEADER_TIMEOUT_SECS: Bounds = Bounds::new(1, 3_600, "s");
/// `min_body_rate`: 0 (off) to 1 GB/s.
pub const BODY_RATE: Bounds = Bounds::new(0, 1_000_000_000, "bytes/s");
/// `body_rate_grace_secs`: 0 to one hour.
pub const GRACE_SECS: Bounds = Bounds::new(0, 3_600, "s");
/// `max_head_bytes`: 1 KiB to 16 MiB.
pub const HEAD_BYTES: Bounds = Bounds::new(1024, 16 << 20, "bytes");

impl Default for SlowClientConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            min_body_rate: 1024,
            body_rate_grace_secs: 5,
            max_head_bytes: 64 * 1024,
        }
    }
}

impl SlowClientConfig {
    pub fn validate(&self) -> Result<(), String> {
        // body_rate_grace_secs is added to the time of a read: bounded, it cannot overflow.
        Bounds::check_all(
            "slow_clients",
            &[
                (
                    "header_timeout_secs",
                    self.header_timeout_secs,
                    HEADER_TIMEOUT_SECS,
                ),
                ("min_body_rate", self.min_body_rate, BODY_RATE),
                (
                    "body_rate_grace_secs",
                    self.body_rate_grace_secs,
                    GRACE_SECS,
                ),
                ("max_head_bytes", self.max_head_bytes as u64, HEAD_BYTES),
            ],
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: the next byte starts a head.
    Idle,
    /// Reading a head (deadline armed).
    Head,
    /// Reading a Content-Length body: bytes still expected.
    Body { remaining: u64 },
    /// Request read, or a body we do not follow (chunked, oversized head):
    /// reads are ignored until the server writes its response.
    Done,
    /// Not HTTP/1.x (HTTP/2 preface).
    Off,
}

/// Generic over the stream it wraps (a Pingora `Stream` in the edge, a TCP
/// or TLS stream elsewhere).
pub struct SlowClientGuard<S> {
    inner: S,
    config: SlowClientConfig,
    phase: Phase,
    first_bytes: bool,
    head: Vec<u8>,
    head_deadline: Option<Instant>,
    /// Body: bytes received, time spent waiting on the client, and when the
    /// current wait began.
    body_received: u64,
    body_waited: Duration,
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    failed: Option<DenialReason>,
    on_denial: OnDenial,
    /// The connection's place under the per-IP cap, if tracked.
    slot: Option<Arc<ConnSlot>>,
    /// The client, named in the denial.
    peer: Option<SocketAddr>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SlowClientGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowClientGuard")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish()
    }
}

const HEAD_END: &[u8] = b"\r\n\r\n";

impl<S> SlowClientGuard<S> {
    pub fn new(inner: S, config: SlowClientConfig, on_denial: OnDenial) -> Self {
        Self {
            inner,
            config,
            phase: Phase::Idle,
            first_bytes: true,
            head: Vec::new(),
            head_deadline: None,
            body_received: 0,
            body_waited: Duration::ZERO,
            waiting_since: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            failed: None,
            on_denial,
            slot: None,
            peer: None,
        }
    }

    /// Names the client in the denial event.
    pub fn with_peer(mut self, peer: Option<SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Reports the connection's state to its slot under the per-IP cap.
    pub fn with_slot(mut self, slot: Option<Arc<ConnSlot>>) -> Self {
        self.slot = slot;
        self
    }

    fn slot(&self, f: impl FnOnce(&ConnSlot)) {
        if let Some(slot) = &self.slot {
            f(slot);
        }
    }

    /// Follows the framing of bytes the client sent. The clock is read only for a head these
    /// bytes leave incomplete (its deadline): a head read whole in one read never needs it.
    fn on_bytes(&mut self, mut bytes: &[u8]) {
        if self.first_bytes {
            self.first_bytes = false;
            if bytes.starts_with(b"PRI ") {
                self.phase = Phase::Off;
                self.slot(ConnSlot::established);
            }
        }
        while !bytes.is_empty() {
            match self.phase {
                Phase::Off | Phase::Done => return,
                Phase::Idle => {
                    self.phase = Phase::Head;
                    self.slot(ConnSlot::waiting_for_head);
                    self.head.clear();
                    self.head_deadline = None; // armed below if the head goes on past these bytes
                }
                Phase::Head => bytes = self.on_head_bytes(bytes),
                Phase::Body { remaining } => {
                    let take = (bytes.len() as u64).min(remaining);
                    self.body_received += take;
                    bytes = &bytes[take as usize..];
                    self.phase = if take == remaining {
                        Phase::Idle // pipelined bytes, if any, start the next head
                    } else {
                        Phase::Body {
                            remaining: remaining - take,
                        }
                    };
                }
            }
        }
    }

    /// Consumes head bytes; returns what follows the head in `bytes`. A head that begins and
    /// ends within `bytes` (the usual case) is read in place; only one spanning reads is kept
    /// in `self.head`.
    fn on_head_bytes<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let room = self.config.max_head_bytes.saturating_sub(self.head.len());
        let take = bytes.len().min(room);
        if self.head.is_empty() {
            if let Some(pos) = find(&bytes[..take], HEAD_END) {
                let head_len = pos + HEAD_END.len();
                self.head_done(framing(&bytes[..head_len]));
                return &bytes[head_len..];
            }
        }
        let scan_from = self.head.len().saturating_sub(HEAD_END.len() - 1);
        self.head.extend_from_slice(&bytes[..take]);
        let Some(pos) = find(&self.head[scan_from..], HEAD_END) else {
            // The whole-head deadline runs from the head's first read.
            let timeout = Duration::from_secs(self.config.header_timeout_secs);
            self.head_deadline
                .get_or_insert_with(|| Instant::now() + timeout);
            if take < bytes.len() {
                // Oversized head: Pingora's limits take it from here; the
                // deadline stays armed.
                self.phase = Phase::Done;
            }
            return &[];
        };
        let head_len = scan_from + pos + HEAD_END.len();
        let consumed = head_len - (self.head.len() - take);
        self.head.truncate(head_len);
        let head = std::mem::take(&mut self.head);
        self.head_done(framing(&head));
        self.head = head;
        &bytes[consumed..]
    }

    /// The head has ended: the body it announces is followed next.
    fn head_done(&mut self, framing: Framing) {
        self.slot(ConnSlot::established);
        self.head_deadline = None;
        self.phase = match framing {
            Framing::Length(0) | Framing::None => Phase::Idle,
            Framing::Length(n) => {
                self.body_received = 0;
                self.body_waited = Duration::ZERO;
                self.waiting_since = None;
                Phase::Body { remaining: n }
            }
            Framing::Unrated => Phase::Done,
        };
        // A request with no body is complete: wait for the response before
        // treating further bytes as a new head (pipelining aside).
        if self.phase == Phase::Idle {
            self.phase = Phase::Done;
        }
    }

    /// Checks the deadline and the body rate; arms the timer for the next
    /// check. Called when the client has nothing for us (`Pending`); reads the clock only when
    /// a deadline or the body rate runs.
    fn check_while_waiting(&mut self, cx: &mut Context<'_>) -> Option<DenialReason> {
        if let Some(deadline) = self.head_deadline {
            if Instant::now() >= deadline {
                return Some(DenialReason::HeaderTimeout);
            }
            return self
                .arm(cx, deadline)
                .then_some(DenialReason::HeaderTimeout);
        }
        if !matches!(self.phase, Phase::Body { .. }) || self.config.min_body_rate == 0 {
            return None;
        }
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let waited = self.body_waited + now.duration_since(since);
        // Waiting time the bytes received so far pay for, at the minimum rate.
        let earned =
            Duration::from_secs_f64(self.body_received as f64 / self.config.min_body_rate as f64);
        // Behind the rate (inside the grace period) from then on: evictable.
        self.slot(|s| s.waiting_for_body(now + earned.saturating_sub(waited)));
        let allowed = earned.max(Duration::from_secs(self.config.body_rate_grace_secs));
        if waited >= allowed {
            return Some(DenialReason::BodyRate);
        }
        self.arm(cx, now + (allowed - waited))
            .then_some(DenialReason::BodyRate)
    }

    /// Sets the timer and polls it; true if it has already fired.
    fn arm(&mut self, cx: &mut Context<'_>, at: Instant) -> bool {
        self.timer.as_mut().reset(at.into());
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn fail(&mut self, reason: DenialReason) -> std::io::Error {
        if self.failed.is_none() {
            self.failed = Some(reason);
            let detail = match reason {
                DenialReason::HeaderTimeout => format!(
                    "request head not complete within {} s",
                    self.config.header_timeout_secs
                ),
                _ => format!(
                    "request body slower than {} bytes/s",
                    self.config.min_body_rate
                ),
            };
            let mut denial = Denial::new(reason).detail(detail);
            if let Some(peer) = self.peer {
                denial = denial.client(peer);
            }
            (self.on_denial)(denial);
        }
        std::io::Error::new(std::io::ErrorKind::TimedOut, SlowClientError(reason))
    }
}

/// The read error a violation produces (kind `TimedOut`). The edge's outer stream
/// (`parser_errors::HardenedStream`) recognises a header timeout by it and answers `408`
/// before Pingora closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowClientError(pub DenialReason);

impl std::fmt::Display for SlowClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "slow client: {}", self.0.as_str())
    }
}

impl std::error::Error for SlowClientError {}

/// True if `e` is the whole-header deadline expiring.
pub fn is_header_timeout(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<SlowClientError>())
        .is_some_and(|s| s.0 == DenialReason::HeaderTimeout)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

enum Framing {
    None,
    Length(u64),
    /// Chunked or unparseable: not followed (Pingora rejects bad framing).
    Unrated,
}

/// Body framing from a request head parsed by httparse (RFC 9112 §6.3, simplified: any
/// Transfer-Encoding, a bad or duplicate Content-Length, or a head httparse refuses is not
/// followed).
fn framing(head: &[u8]) -> Framing {
    // No header line can be Content-Length or Transfer-Encoding: whatever httparse says (no
    // length, or a head it refuses), nothing is followed.
    if !head
        .windows(2)
        .any(|w| w[0] == b'\n' && matches!(w[1] | 0x20, b'c' | b't'))
    {
        return Framing::None;
    }
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; 128];
    let mut request = httparse::Request::new(&mut []);
    if !matches!(
        request.parse_with_uninit_headers(head, &mut headers),
        Ok(httparse::Status::Complete(_))
    ) {
        return Framing::Unrated;
    }
    let mut length = None;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Framing::Unrated;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value).ok().map(str::trim);
            match (length, value.and_then(|v| v.parse::<u64>().ok())) {
                (None, Some(n)) => length = Some(n),
                _ => return Framing::Unrated,
            }
        }
    }
    length.map_or(Framing::None, Framing::Length)
}

impl<S: AsyncRead + Unpin> AsyncRead for SlowClientGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(reason) = this.failed {
            return Poll::Ready(Err(this.fail(reason)));
        }
        if this.phase == Phase::Off {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        // The clock is read only while something is timed: a head deadline armed by an earlier
        // read, or a wait on the body. A keep-alive request whose head arrives in one read
        // reads it not at all.
        let now = (this.head_deadline.is_some() || this.waiting_since.is_some()).then(Instant::now);
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(now) = now {
                    if let Some(since) = this.waiting_since.take() {
                        this.body_waited += now.duration_since(since);
                    }
                    if this.head_deadline.is_some_and(|d| now >= d) {
                        buf.set_filled(before);
                        return Poll::Ready(Err(this.fail(DenialReason::HeaderTimeout)));
                    }
                }
                let n = buf.filled().len() - before;
                if n > 0 {
                    this.on_bytes(&buf.filled()[before..]);
                    if matches!(this.phase, Phase::Body { .. }) {
                        this.slot(ConnSlot::established); // body bytes are arriving
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.check_while_waiting(cx) {
                Some(reason) => Poll::Ready(Err(this.fail(reason))),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SlowClientGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // The server answers: the next bytes from the client start a new request.
        if self.phase == Phase::Done {
            self.phase = Phase::Idle;
            self.head_deadline = None;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.phase == Phase::Done {
            self.phase = Phase::Idle;
            self.head_deadline = None;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(feature = "pingora")]
crate::delegate_stream_traits!(SlowClientGuard<pingora_core::protocols::Stream>);

#[cfg(test)]
mod tests;
