//! Stage 9: answers the edge writes itself (denials, redirects, error pages: 400, 404, 413, 429,
//! 502, 503, 504, 308) and the one place a denial is recorded. Pingora's own
//! error pages carry `Server: Pingora` and bypass `response_filter`, so every edge response is
//! built here with the same header policy as proxied ones.

use super::context::RequestCtx;
use crate::policy::header_edit::X_REQUEST_ID;
use crate::policy::headers::HeaderPolicy;
use crate::runtime::{ListenerInfo, Runtime};
use crate::state::Shared;
use bytes::Bytes;
use pingora_error::{Error, ErrorSource, ErrorType};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use rampart_protect::denial::Denial;

/// Writes a complete edge response. `location` makes it a redirect.
pub async fn respond(
    session: &mut Session,
    status: u16,
    policy: &HeaderPolicy,
    https: bool,
    request_id: &http::HeaderValue,
    location: Option<&str>,
) -> pingora_error::Result<()> {
    let reason = reason_phrase(status);
    let body = format!("{status} {reason}\n");
    let extra: Vec<(http::HeaderName, String)> = location
        .map(|l| (http::header::LOCATION, l.to_string()))
        .into_iter()
        .collect();
    write(session, status, policy, https, request_id, &extra, body).await
}

/// The response to a refused request: a small body naming the request id (operators find the
/// log line by it), and `Retry-After` for limits.
pub async fn respond_denied(
    session: &mut Session,
    status: u16,
    policy: &HeaderPolicy,
    https: bool,
    request_id: &http::HeaderValue,
    retry_after: Option<u64>,
) -> pingora_error::Result<()> {
    let reason = reason_phrase(status);
    let id = request_id.to_str().unwrap_or_default();
    let body = format!("{status} {reason}\nrequest id: {id}\n");
    let extra: Vec<(http::HeaderName, String)> = retry_after
        .map(|s| (http::header::RETRY_AFTER, s.to_string()))
        .into_iter()
        .collect();
    write(session, status, policy, https, request_id, &extra, body).await
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

async fn write(
    session: &mut Session,
    status: u16,
    policy: &HeaderPolicy,
    https: bool,
    request_id: &http::HeaderValue,
    extra: &[(http::HeaderName, String)],
    body: String,
) -> pingora_error::Result<()> {
    let final_sent = session
        .response_written()
        .is_some_and(|r| !r.status.is_informational());
    if final_sent {
        // Headers already went out (error mid-body): nothing sensible to add. An interim
        // `100 Continue` (sent before reading a body we then refuse) does not count.
        return Ok(());
    }
    let body = Bytes::from(body);
    let mut resp = ResponseHeader::build(status, Some(8))?;
    resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(X_REQUEST_ID, request_id.clone())?;
    for (name, value) in extra {
        resp.insert_header(name.clone(), value.as_str())?;
    }
    // Edge-generated responses close the h1 connection: the request may not have been read to
    // its end (a body we refused), so the connection's framing can't be trusted afterwards.
    session.set_keepalive(None);
    policy.apply(&mut resp, https);
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes the edge's answer to a request it refuses, counts the refusal once and keeps it for
/// the access log. Returns `Ok(true)`: `request_filter`'s "response already written".
pub async fn deny(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut denial: Denial,
) -> pingora_error::Result<bool> {
    count(shared, ctx, &mut denial);
    refuse(shared, session, ctx, denial).await
}

/// Writes the answer to a refusal already counted where it was decided (`admit_request`) and
/// keeps it for the access log.
pub async fn refuse(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut RequestCtx,
    denial: Denial,
) -> pingora_error::Result<bool> {
    // Request-level denials always carry a status; 400 only guards a connection-level reason.
    let (status, retry_after) = (denial.status.unwrap_or(400), denial.retry_after);
    ctx.denial = Some(denial);
    answer(shared, session, ctx, status, retry_after).await
}

/// Counts a refusal decided while the body streams (no answer of ours goes out then: Pingora
/// fails the request) and keeps it for the access log.
pub fn record_denial(shared: &Shared, ctx: &mut RequestCtx, mut denial: Denial) {
    count(shared, ctx, &mut denial);
    ctx.denial = Some(denial);
}

/// The one place a refusal is counted: `rampart_denials_total{reason,route,family}` and the
/// alerter.
fn count(shared: &Shared, ctx: &RequestCtx, denial: &mut Denial) {
    denial.route = ctx.route.as_ref().map(|r| r.name.clone());
    denial.client = ctx.peer;
    shared.defences.denials.record(denial);
}

/// A request no route matches: 404, not a refusal (not counted).
pub async fn no_route(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora_error::Result<bool> {
    ctx.answered = Some("no_route");
    answer(shared, session, ctx, 404, None).await
}

async fn answer(
    shared: &Shared,
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    retry_after: Option<u64>,
) -> pingora_error::Result<bool> {
    let rt = ctx
        .runtime
        .clone()
        .unwrap_or_else(|| shared.runtime.load_full());
    let (policy, id) = (ctx.policy(&rt), ctx.request_id_header());
    respond_denied(session, status, policy, ctx.https, id, retry_after).await?;
    Ok(true)
}

/// Plain listeners (without `insecure_plaintext`) only redirect to https (308).
pub async fn redirect_to_https(
    session: &mut Session,
    ctx: &mut RequestCtx,
    listener: &ListenerInfo,
    rt: &Runtime,
) -> pingora_error::Result<bool> {
    let port = match listener.redirect_https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let req = session.req_header();
    let target = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let host = if ctx.host.contains(':') {
        format!("[{}]", ctx.host)
    } else {
        ctx.host.to_string()
    };
    let location = format!("https://{host}{port}{target}");
    let (policy, id) = (&rt.default_headers, ctx.request_id_header());
    respond(session, 308, policy, false, id, Some(&location)).await?;
    ctx.answered = Some("https_redirect");
    Ok(true)
}

/// The status of the edge's error page for a request Pingora could not proxy; 0 when the
/// client is gone and nothing can be sent.
pub fn error_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError
                | ErrorType::ReadError
                | ErrorType::ConnectionClosed
                | ErrorType::HandshakeError => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}
