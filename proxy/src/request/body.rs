//! Stage 5: the request body buffered up to the route's `inspect_limit` before anything is
//! forwarded (413 above `max_body`), so the WAF (stage 6) sees it, then replayed upstream.
//!
//! Pingora replays a body read in `request_filter` only through its retry buffer, which stops
//! at 64 KiB (counted from when it is switched on; it can't be reset). So the body is read into
//! our own buffer and handed to the upstream from `request_body_filter` ([`BodyReplay::emit`]).
//! For that phase to run at all when the whole body was read here, Pingora must still have
//! something to forward:
//! - Content-Length: retry buffering is switched on once at most 64 KiB remain, so the last
//!   reads land in the retry buffer, which Pingora sends first (our buffer replaces it);
//! - HTTP/2 without Content-Length: retry buffering is on from the start and takes the first
//!   DATA frame only (later frames are read past it), which is enough for the same replacement;
//! - chunked HTTP/1.1: retry buffering is on from the start; a body that ends within its 64 KiB
//!   goes the same way, one that ends past it is forwarded by rebuilding the session
//!   (`h1_rebuild`) once the WAF let it pass.
//!
//! A body longer than `inspect_limit` is refused by the WAF stage with 413 `body_uninspected`
//! (one whose Content-Length says so is not read at all), unless the route sets
//! `insecure_pass_uninspected_body`: then it is not done when inspection ends, Pingora reads the
//! rest and `emit` puts our buffer in front of (or in place of) its first chunk.

use crate::config::WafMode;
use crate::runtime::RouteWaf;
use bytes::{Bytes, BytesMut};
use pingora_core::protocols::http::ServerSession;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use rampart_protect::denial::{Denial, DenialReason};
use serde_json::{Map, Value};

/// Pingora's retry buffer capacity (`BODY_BUF_LIMIT`); one body read is at most this too.
const RETRY_BUFFER: u64 = 64 * 1024;

/// The body bytes read before forwarding, to be replayed to the upstream.
#[derive(Debug, Default)]
pub struct BodyReplay {
    buf: Bytes,
    /// The last bytes read are also in Pingora's retry buffer, which Pingora sends first:
    /// replace that chunk with the whole buffer instead of prepending.
    tail_in_retry_buffer: bool,
    emitted: bool,
    /// The body continues past the buffer (inspected partially).
    pub partial: bool,
    pub max_body: u64,
    /// A chunked h1 body read whole that the retry buffer can't replay: forward it with
    /// `h1_rebuild` ([`Self::take_for_rebuild`]) once the WAF let it pass.
    pub rebuild: bool,
}

impl BodyReplay {
    pub fn inspected(&self) -> &[u8] {
        &self.buf
    }

    /// The buffered body, for a rebuilt session that reads it itself (`emit` then adds nothing).
    pub fn take_for_rebuild(&mut self) -> Bytes {
        self.rebuild = false;
        std::mem::take(&mut self.buf)
    }

    /// A retry to another endpoint starts the body over.
    pub fn restart(&mut self) {
        self.emitted = false;
    }

    /// For `request_body_filter`: the first chunk Pingora forwards carries the buffered body.
    pub fn emit(&mut self, chunk: &mut Option<Bytes>) {
        if self.emitted || self.buf.is_empty() {
            return;
        }
        self.emitted = true;
        *chunk = match (self.tail_in_retry_buffer, chunk.take()) {
            (false, Some(more)) if !more.is_empty() => {
                let mut joined = BytesMut::with_capacity(self.buf.len() + more.len());
                joined.extend_from_slice(&self.buf);
                joined.extend_from_slice(&more);
                Some(joined.freeze())
            }
            _ => Some(self.buf.clone()),
        };
    }
}

/// Why body buffering stopped without a body to forward.
pub enum BodyRefused {
    /// Over `max_body` (413).
    TooLarge(&'static str),
}

impl BodyRefused {
    /// The denial; the detail goes to the access-log fields.
    pub fn into_denial(self, log_fields: &mut Map<String, Value>) -> Denial {
        match self {
            BodyRefused::TooLarge(detail) => {
                log_fields.insert("rampart.limit.detail".into(), detail.into());
                Denial::new(DenialReason::BodyTooLarge)
            }
        }
    }
}

fn content_length(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What the body stage decides without reading anything (no body, WAF off, a declared length
/// over `max_body` or past what a refusing route inspects); `None` when the body must be read
/// ([`buffer_body`]). Most requests (no body) end here, with no future made.
pub fn unread(session: &mut Session, waf: &RouteWaf) -> Option<Result<BodyReplay, BodyRefused>> {
    let declared = content_length(session.req_header());
    let max_body = waf.max_body;
    if declared.is_some_and(|n| n > max_body) {
        return Some(Err(BodyRefused::TooLarge("content-length over max_body")));
    }
    let replay = |partial| {
        Some(Ok(BodyReplay {
            max_body,
            partial,
            ..BodyReplay::default()
        }))
    };
    let done = session.is_body_done();
    if done || waf.mode == WafMode::Off {
        // No body, or nothing to inspect it for: Pingora streams it (max_body still applies).
        return replay(!done);
    }
    if declared.is_some_and(|n| n > waf.inspect_limit as u64) && refuses_uninspected(waf) {
        // Declared past what the WAF inspects, on a route that refuses uninspected bodies: the
        // WAF stage answers 413 `body_uninspected` (after inspecting the head), so reading the
        // body first would only cost time and memory.
        return replay(true);
    }
    None
}

/// Reads the body up to the route's `inspect_limit`, once [`unread`] said it must be read.
/// Read errors (invalid chunk sizes, a client that goes away, the body-rate guard) are
/// returned as Pingora errors.
pub async fn buffer_body(
    session: &mut Session,
    waf: &RouteWaf,
) -> pingora_error::Result<Result<BodyReplay, BodyRefused>> {
    let declared = content_length(session.req_header());
    let max_body = waf.max_body;
    let mut replay = BodyReplay {
        max_body,
        ..BodyReplay::default()
    };
    expect_continue(session).await?;
    let limit = waf.inspect_limit as u64;
    let mut retry = RetryWindow::default();
    if declared.is_none() {
        retry.enable(session);
    }
    // h2 without a length: only the first frame goes to the retry buffer (module doc).
    let h2_unsized = declared.is_none() && session.downstream_session.is_http2();
    let mut buf = BytesMut::new();
    while (buf.len() as u64) < limit {
        if let Some(total) = declared {
            if total - buf.len() as u64 <= RETRY_BUFFER {
                retry.enable(session);
            }
        }
        let past_retry_buffer = h2_unsized && retry.has_data;
        // A body that breaks its framing is the client's fault (400), not ours.
        match read_chunk(session, past_retry_buffer)
            .await
            .map_err(|e| e.into_down())?
        {
            None => break,
            Some(chunk) => {
                retry.has_data |= retry.on && !past_retry_buffer && !chunk.is_empty();
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > max_body {
                    return Ok(Err(BodyRefused::TooLarge("body over max_body")));
                }
            }
        }
    }
    let done = session.is_body_done();
    // One read may go past the limit; the WAF inspects `inspect_limit` bytes of it.
    replay.partial = !done || buf.len() > waf.inspect_limit;
    replay.tail_in_retry_buffer = retry.on && retry.has_data && !session.retry_buffer_truncated();
    if done && !replay.tail_in_retry_buffer && !buf.is_empty() {
        if session.downstream_session.as_http1().is_none() {
            // Not expected (h2 keeps its first frame in the retry buffer): refuse rather than
            // forward a truncated body.
            return Ok(Err(BodyRefused::TooLarge(
                "body could not be replayed to the upstream",
            )));
        }
        replay.rebuild = true;
    }
    replay.buf = buf.freeze();
    Ok(Ok(replay))
}

/// The route answers 413 rather than forward body bytes the WAF did not inspect.
pub fn refuses_uninspected(waf: &RouteWaf) -> bool {
    waf.mode == WafMode::Block && !waf.pass_uninspected
}

/// What went into Pingora's retry buffer (tracked here: reading it back copies it).
#[derive(Default)]
struct RetryWindow {
    on: bool,
    has_data: bool,
}

impl RetryWindow {
    fn enable(&mut self, session: &mut Session) {
        if !self.on {
            session.enable_retry_buffering();
            self.on = true;
        }
    }
}

/// One read of the request body; `past_retry_buffer` reads an h2 frame without copying it into
/// Pingora's retry buffer, so that buffer never overflows.
async fn read_chunk(
    session: &mut Session,
    past_retry_buffer: bool,
) -> pingora_error::Result<Option<Bytes>> {
    match &mut *session.downstream_session {
        ServerSession::H2(h2) if past_retry_buffer => {
            match std::future::poll_fn(|cx| h2.poll_read_body_bytes(cx)).await {
                None => Ok(None),
                Some(Ok(bytes)) => Ok(Some(bytes)),
                Some(Err(e)) => Error::e_because(
                    ErrorType::ReadError,
                    "while reading downstream request body",
                    e,
                ),
            }
        }
        _ => session.read_request_body().await,
    }
}

/// A client waiting for `100 Continue` before it sends the body gets it from us: the body is
/// read here, before the upstream sees the request. The upstream then gets no `Expect` (it
/// would answer a second 100).
async fn expect_continue(session: &mut Session) -> pingora_error::Result<()> {
    let expects = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects {
        session
            .req_header_mut()
            .remove_header(&http::header::EXPECT);
        session.downstream_session.write_continue_response().await?;
    }
    Ok(())
}
