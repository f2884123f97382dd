//! Stage 2: malformed or ambiguous requests are refused here, before routing, and never
//! forwarded: a request target that is not origin-form, ambiguous body framing (request
//! smuggling material), CONNECT, and a missing, repeated, malformed or contradicting host.

use super::context::HostName;
use crate::policy::route::normalize_host;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use rampart_protect::denial::{Denial, DenialReason};
use std::borrow::Cow;

/// A malformed request (400; 405 for CONNECT), with the reason it is malformed (the access
/// log's `rampart.denial.reason`).
pub fn bad_request(reason: &'static str) -> Denial {
    let denial = Denial::new(DenialReason::BadRequest).detail(reason);
    match reason {
        "connect_method" => denial.status(405),
        _ => denial,
    }
}

/// Checks the request; returns its normalised host, or why it is malformed (for
/// [`bad_request`]).
pub fn request(session: &Session) -> Result<HostName, &'static str> {
    // Pingora keeps every Transfer-Encoding header it parsed (it drops only Content-Length
    // next to one), so a head without one in the map has no raw line to look for.
    let te = (session.req_header().headers).contains_key(http::header::TRANSFER_ENCODING);
    if let Some(raw) = session
        .downstream_session
        .as_http1()
        .filter(|_| te)
        .map(|h1| h1.get_headers_raw_bytes())
    {
        if let Some(reason) = raw_head_problem(&raw) {
            return Err(reason);
        }
    }
    head(session.req_header())
}

/// What only the raw HTTP/1 head shows, since Pingora normalises it before our filters run:
/// Content-Length sent together with Transfer-Encoding (request smuggling material; Pingora
/// drops the Content-Length), refused as `te_and_cl`.
///
/// A space or tab inside the request target cannot be seen here: Pingora percent-encodes it
/// (`/a /b` becomes `/a%20/b`) and rewrites its buffer before any filter runs.
fn raw_head_problem(raw: &[u8]) -> Option<&'static str> {
    let mut te = false;
    let mut cl = false;
    for line in raw.split(|&b| b == b'\n').skip(1) {
        te |= line.len() >= 18 && line[..18].eq_ignore_ascii_case(b"transfer-encoding:");
        cl |= line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:");
    }
    (te && cl).then_some("te_and_cl")
}

/// The checks on the parsed head.
pub fn head(req: &RequestHeader) -> Result<HostName, &'static str> {
    let path = req.uri.path();
    let asterisk_form = req.method == http::Method::OPTIONS && path == "*";
    if !(path.starts_with('/') || asterisk_form) {
        return Err("malformed_target");
    }
    if let Some(reason) = framing_problem(req) {
        return Err(reason);
    }
    if req.method == http::Method::CONNECT {
        return Err("connect_method");
    }
    request_host(req)
}

/// Ambiguous body framing (request smuggling material): refused rather than normalised.
fn framing_problem(req: &RequestHeader) -> Option<&'static str> {
    let te = req.headers.contains_key(http::header::TRANSFER_ENCODING);
    let mut cls = req.headers.get_all(http::header::CONTENT_LENGTH).iter();
    let first = cls.next();
    if te && first.is_some() {
        return Some("te_and_cl");
    }
    if let Some(first) = first {
        let valid = first
            .to_str()
            .is_ok_and(|v| v.trim().parse::<u64>().is_ok());
        if !valid {
            return Some("bad_content_length");
        }
        // Two Content-Length headers, even equal ones, would reach the upstream as two
        // (RFC 9110 §8.6 lets a recipient reject them; nginx does).
        if cls.next().is_some() {
            return Some("duplicate_content_length");
        }
    }
    None
}

/// The request's host, or a reason it is malformed.
fn request_host(req: &RequestHeader) -> Result<HostName, &'static str> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err("multiple_host");
    }
    let from_header = match header {
        Some(v) => Some(header_host(v).ok_or("malformed_host")?),
        None => None,
    };
    let from_uri = match req.uri.authority() {
        Some(a) => Some(normalize_host(a.as_str()).ok_or("malformed_host")?),
        None => None,
    };
    match (from_header, from_uri) {
        (Some(h), Some(u)) if *h != *u => Err("host_mismatch"),
        // Equal: the header's value, shared when it is the host whole.
        (Some(h), Some(_)) => Ok(h),
        (None, Some(u)) => Ok(HostName::Owned(u.into_owned())),
        (Some(h), None) => Ok(h),
        (None, None) => Err("missing_host"),
    }
}

/// The host of a Host header: the header's value itself (shared) when it is the host whole.
fn header_host(value: &http::HeaderValue) -> Option<HostName> {
    let text = value.to_str().ok()?;
    Some(match normalize_host(text)? {
        Cow::Borrowed(host) if host.len() == text.len() => HostName::Header(value.clone()),
        host => HostName::Owned(host.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_head_checks() {
        assert_eq!(raw_head_problem(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), None);
        assert_eq!(
            raw_head_problem(
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Some("te_and_cl")
        );
    }

    #[test]
    fn a_host_header_already_normal_is_kept_shared() {
        let host = |v: &'static str| header_host(&http::HeaderValue::from_static(v));
        for (raw, shared, text) in [
            ("localhost", true, "localhost"),
            ("app.example.com", true, "app.example.com"),
            ("App.Example.com", false, "app.example.com"),
            ("localhost:8443", false, "localhost"),
            ("localhost.", false, "localhost"),
            ("[::1]:80", false, "::1"),
            (" localhost ", false, "localhost"),
        ] {
            let got = host(raw).unwrap();
            assert_eq!(matches!(got, HostName::Header(_)), shared, "{raw}");
            assert_eq!(&*got, text, "{raw}");
            assert_eq!(normalize_host(raw).as_deref(), Some(text), "{raw}");
        }
        assert!(host("name:80:81").is_none());
    }

    #[test]
    fn an_authority_equal_to_the_host_header_keeps_the_header_shared() {
        let req = |uri: &str, host: &'static str| {
            let mut r = RequestHeader::build("GET", b"/", None).unwrap();
            r.set_uri(uri.parse().unwrap());
            assert!(r.uri.authority().is_some(), "{uri}");
            r.insert_header(http::header::HOST, host).unwrap();
            r
        };
        let got = request_host(&req("http://app.example.com/", "app.example.com")).unwrap();
        assert!(matches!(got, HostName::Header(_)));
        assert_eq!(&*got, "app.example.com");
        let got = request_host(&req("http://App.Example.com/", "app.example.com")).unwrap();
        assert!(matches!(got, HostName::Header(_)));
        assert_eq!(
            request_host(&req("http://other.example/", "app.example.com")).err(),
            Some("host_mismatch")
        );
    }
}
