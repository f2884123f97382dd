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

/// The request's host, or a reason it is malformed. A URI authority (an HTTP/2 `:authority`)
/// must be one well-formed authority (its port digits, at most 65535). A URI authority and a
/// Host header that differ by any byte never reach here: Pingora refuses them itself (HTTP/1
/// absolute-form is kept off the URI and compared byte for byte with Host; on HTTP/2
/// `validate_request_authority_fields` answers 400 on the stream before the edge's filters), so
/// the `host_mismatch` below is defence in depth only.
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
    let Some(authority) = req.uri.authority().map(|a| a.as_str()) else {
        return from_header.ok_or("missing_host");
    };
    let from_uri = normalize_host(authority).ok_or("malformed_host")?;
    authority_port(authority).ok_or("malformed_host")?;
    match from_header {
        None => Ok(HostName::Owned(from_uri.into_owned())),
        // Equal: the header's value, shared when it is the host whole.
        Some(h) if *h == *from_uri => Ok(h),
        // Defence in depth: Pingora refuses any difference first.
        Some(_) => Err("host_mismatch"),
    }
}

/// The host of a Host header: the header's value itself (shared) when it is the host whole.
/// Anything else (a port, brackets, upper case, a trailing dot) must also be a well-formed
/// authority ([`authority_port`]).
fn header_host(value: &http::HeaderValue) -> Option<HostName> {
    let text = value.to_str().ok()?;
    Some(match normalize_host(text)? {
        Cow::Borrowed(host) if host.len() == text.len() => HostName::Header(value.clone()),
        host => {
            authority_port(text)?;
            HostName::Owned(host.into_owned())
        }
    })
}

/// The port of a Host value or URI authority (`Some(None)`: none, or empty, which RFC 3986
/// allows and means the scheme's default), or `None` when the authority is malformed around
/// the host: brackets that do not hold an IPv6 address (`[a.test]`, `[::1]x`), a port that is
/// not digits or is over 65535. The host's own characters are [`normalize_host`]'s to check.
fn authority_port(text: &str) -> Option<Option<u16>> {
    let text = text.trim_matches([' ', '\t']);
    let port = match text.strip_prefix('[') {
        Some(rest) => {
            let (literal, after) = rest.split_once(']')?;
            literal.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => return Some(None),
                _ => after.strip_prefix(':')?,
            }
        }
        None => match text.rsplit_once(':') {
            Some((_, port)) => port,
            None => return Some(None),
        },
    };
    if port.is_empty() {
        return Some(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = port.trim_start_matches('0');
    match significant.len() {
        0 => Some(Some(0)),
        1..=5 => significant.parse::<u16>().ok().map(Some),
        _ => None,
    }
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
        for bad in [
            "a.test:99999",
            "a.test:65536",
            "a.test:8x",
            "[::1]x",
            "[::1]:x",
            "[a.test]",
            "[::1",
            "[v1.x]",
        ] {
            assert!(host(bad).is_none(), "{bad}");
        }
        for good in [
            "a.test:",
            "a.test:65535",
            "a.test:0080",
            "[::1]",
            "[::1]:",
            "[2001:db8::1]:8443",
        ] {
            assert!(host(good).is_some(), "{good}");
        }
    }

    #[test]
    fn a_uri_authority_with_a_malformed_port_is_refused() {
        let req = |uri: &str| {
            let mut r = RequestHeader::build("GET", b"/", None).unwrap();
            r.set_uri(uri.parse().unwrap());
            r
        };
        assert_eq!(
            request_host(&req("http://a.test:99999/")).err(),
            Some("malformed_host")
        );
        assert!(request_host(&req("http://a.test:8443/")).is_ok());
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
