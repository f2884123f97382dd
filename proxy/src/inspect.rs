//! The request inspection stage of `request_filter`: head limits (414, 431), the request body
//! buffered up to the route's `inspect_limit` before anything is forwarded (413 above
//! `max_body`), and the WAF verdict over request line, headers, cookies, query and body.
//!
//! Pingora replays a body read in `request_filter` only through its retry buffer, which stops
//! at 64 KiB. So the body is read into our own buffer and handed to the upstream from
//! `request_body_filter` ([`BodyReplay::emit`]). For that phase to run at all when the whole
//! body was read here, the last bytes read must land in Pingora's retry buffer: with a
//! Content-Length, retry buffering is switched on once at most 64 KiB remain (that tail is in
//! our buffer too and is replaced by it); a chunked body is inspected for its first 64 KiB.

use crate::config::{LimitsConfig, WafMode};
use crate::protect::denial::DenialReason;
use crate::runtime::RouteWaf;
use bytes::{Bytes, BytesMut};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use rampart_waf::{RuleSet, Verdict};
use serde_json::{Map, Value};

/// Pingora's retry buffer capacity (`BODY_BUF_LIMIT`); one body read is at most this too.
const RETRY_BUFFER: u64 = 64 * 1024;

/// A request head over a configured limit: the reason and its status.
pub fn head_limits(req: &RequestHeader, limits: &LimitsConfig) -> Option<(DenialReason, u16)> {
    let uri_len = req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return Some((DenialReason::UriTooLong, 414));
    }
    if req.headers.len() > limits.max_headers {
        return Some((DenialReason::TooManyHeaders, 431));
    }
    let bytes: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if bytes > limits.max_header_bytes {
        return Some((DenialReason::HeaderTooLarge, 431));
    }
    None
}

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
}

impl BodyReplay {
    pub fn inspected(&self) -> &[u8] {
        &self.buf
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

fn content_length(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the body up to the route's `inspect_limit`. Read errors (invalid chunk sizes, a
/// client that goes away, the body-rate guard) are returned as Pingora errors.
pub async fn buffer_body(
    session: &mut Session,
    waf: &RouteWaf,
) -> pingora_error::Result<Result<BodyReplay, BodyRefused>> {
    let declared = content_length(session.req_header());
    let max_body = waf.max_body;
    if declared.is_some_and(|n| n > max_body) {
        return Ok(Err(BodyRefused::TooLarge("content-length over max_body")));
    }
    let mut replay = BodyReplay {
        max_body,
        ..BodyReplay::default()
    };
    if session.is_body_done() || waf.mode == WafMode::Off {
        // No body, or nothing to inspect it for: Pingora streams it (max_body still applies).
        replay.partial = !session.is_body_done();
        return Ok(Ok(replay));
    }
    expect_continue(session).await?;
    let limit = match declared {
        Some(_) => waf.inspect_limit as u64,
        // Chunked: the last read must fit Pingora's retry buffer (see the module doc).
        None => (waf.inspect_limit as u64).min(RETRY_BUFFER),
    };
    if declared.is_none() {
        session.enable_retry_buffering();
    }
    let mut buf = BytesMut::new();
    loop {
        if buf.len() as u64 >= limit {
            break;
        }
        if let Some(total) = declared {
            if total - buf.len() as u64 <= RETRY_BUFFER {
                session.enable_retry_buffering();
            }
        }
        // A body that breaks its framing is the client's fault (400), not ours.
        match session
            .read_request_body()
            .await
            .map_err(|e| e.into_down())?
        {
            None => break,
            Some(chunk) => {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > max_body {
                    return Ok(Err(BodyRefused::TooLarge("body over max_body")));
                }
            }
        }
    }
    // One read may go past the limit; the WAF inspects `inspect_limit` bytes of it.
    replay.partial = !session.is_body_done() || buf.len() > waf.inspect_limit;
    replay.tail_in_retry_buffer = session.get_retry_buffer().is_some();
    if session.is_body_done() && !replay.tail_in_retry_buffer && !buf.is_empty() {
        // A chunked body whose last read crossed the 64 KiB replay window: it cannot be
        // forwarded intact, so it is refused rather than truncated.
        return Ok(Err(BodyRefused::TooLarge(
            "chunked body over the 64 KiB inspection window; send a Content-Length",
        )));
    }
    replay.buf = buf.freeze();
    Ok(Ok(replay))
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

/// The WAF's view of this request.
pub fn inspect(rules: &RuleSet, req: &RequestHeader, body: &BodyReplay, waf: &RouteWaf) -> Verdict {
    let headers: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = rampart_waf::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query().unwrap_or(""),
        headers: &headers,
        body: body.inspected(),
        body_truncated: body.partial,
    };
    rules.inspect(&request, &waf.policy)
}

/// The family of the highest-scoring match (the denial's `family` label).
pub fn top_family(v: &Verdict) -> Option<&'static str> {
    v.matches
        .iter()
        .max_by_key(|m| m.score)
        .map(|m| m.family.as_str())
}

/// `rampart.waf.*` access-log fields.
pub fn log_fields(out: &mut Map<String, Value>, action: &str, v: &Verdict, body: &BodyReplay) {
    out.insert("rampart.waf.action".into(), action.into());
    out.insert("rampart.waf.score".into(), v.score.into());
    let ids: Vec<Value> = v.matches.iter().map(|m| m.rule_id.into()).collect();
    out.insert("rampart.waf.rule_ids".into(), Value::Array(ids));
    let mut targets: Vec<&str> = v.matches.iter().map(|m| m.target.as_str()).collect();
    targets.dedup();
    let targets: Vec<Value> = targets
        .into_iter()
        .map(|t| crate::access_log::cap(t, 128).into())
        .collect();
    out.insert("rampart.waf.targets".into(), Value::Array(targets));
    if body.partial {
        out.insert("rampart.waf.body".into(), "partial".into());
    }
    if v.truncated {
        // The engine's own per-value / field limits cut inspection short.
        out.insert("rampart.waf.truncated".into(), true.into());
    }
}
