//! Responses the edge generates itself (400, 404, 502, 503, 504, redirects). Pingora's own
//! error pages carry `Server: Pingora` and bypass `response_filter`, so every edge response is
//! built here with the same header policy as proxied ones.

use crate::headers::HeaderPolicy;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Writes a complete edge response. `location` makes it a redirect.
pub async fn respond(
    session: &mut Session,
    status: u16,
    policy: &HeaderPolicy,
    https: bool,
    request_id: &str,
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
    request_id: &str,
    retry_after: Option<u64>,
) -> pingora_error::Result<()> {
    let reason = reason_phrase(status);
    let body = format!("{status} {reason}\nrequest id: {request_id}\n");
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
    request_id: &str,
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
    resp.insert_header("x-request-id", request_id)?;
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
