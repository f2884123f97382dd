//! The edge's header edits on Pingora's request and response heads, done on the plain
//! `http::HeaderMap` inside them.
//!
//! Pingora's `insert_header` parses the name again on every call (allocating a copy of a
//! name `http` does not know), inserts it into two maps (values, and the original case of
//! each name for the HTTP/1 wire) and grows both as the edge adds its headers: ~1.3k
//! instructions per header, ~20k per proxied exchange. Pingora 0.9 has no call that reserves
//! capacity or takes an already-parsed name, but it converts a head to and from `http`'s parts
//! without the case map. The edge does that: it takes the parts, reserves once, inserts its
//! names made once at load (`HeaderName` constants, a clone is a pointer copy), and puts the
//! parts back. The head then has no case map, so on HTTP/1 its names go out in lower case
//! (Pingora's title-cased few such as `Content-Type`, `Content-Length`, `Date`, `Host` keep
//! their case), as Envoy and HAProxy send them: field names are case-insensitive (RFC 9110
//! section 5.1). HTTP/2 sends lower case anyway.

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};

/// `X-Request-Id`, on the upstream request and on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Runs `edit` on the response's headers; status, version, reason phrase and extensions are
/// kept.
pub fn response<R>(resp: &mut ResponseHeader, edit: impl FnOnce(&mut HeaderMap) -> R) -> R {
    // Pingora keeps a reason phrase only when it differs from the status's canonical one.
    let custom_reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: http::response::Parts = std::mem::replace(resp, empty).into();
    let out = edit(&mut parts.headers);
    *resp = ResponseHeader::from(parts);
    if custom_reason.is_some() {
        // Only fails on a phrase it would not have held in the first place.
        let _ = resp.set_reason_phrase(custom_reason.as_deref());
    }
    out
}

/// Runs `edit` on the request's headers; method, URI, version, extensions, the request-target
/// as it goes on the wire and the HTTP/2 end-of-stream flag are kept.
pub fn request<R>(req: &mut RequestHeader, edit: impl FnOnce(&mut HeaderMap) -> R) -> R {
    // The parts keep only the URI: a target that the URI does not reproduce byte for byte
    // (absolute-form, not UTF-8) is put back from a copy.
    let from_uri = req.uri.path_and_query().map(|p| p.as_str().as_bytes());
    let raw_target = (from_uri != Some(req.raw_path())).then(|| req.raw_path().to_vec());
    let end_stream = req.send_end_stream();
    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts: http::request::Parts = std::mem::replace(req, empty).into();
    let out = edit(&mut parts.headers);
    *req = RequestHeader::from(parts);
    if let Some(raw) = raw_target {
        // It was accepted as this request's target already; the parse cannot fail now.
        let _ = req.set_raw_path(&raw);
    }
    if let Some(end) = end_stream {
        req.set_send_end_stream(end);
    }
    out
}

/// Inserts (replacing) without the panic of `HeaderMap::insert` when the map is full (32k
/// entries; a head never gets near that, Pingora caps it far below).
pub fn set(headers: &mut HeaderMap, name: &HeaderName, value: HeaderValue) {
    let _ = headers.try_insert(name.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_keeps_status_reason_and_headers() {
        let mut resp = ResponseHeader::build(299, None).unwrap();
        resp.set_reason_phrase(Some("Odd")).unwrap();
        resp.insert_header("X-Up", "1").unwrap();
        response(&mut resp, |h| {
            set(h, &X_REQUEST_ID, HeaderValue::from_static("id"));
        });
        assert_eq!(resp.status.as_u16(), 299);
        assert_eq!(resp.get_reason_phrase(), Some("Odd"));
        assert_eq!(resp.headers["x-up"], "1");
        assert_eq!(resp.headers["x-request-id"], "id");
        let mut wire = Vec::new();
        resp.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("x-up: 1\r\n") && wire.contains("x-request-id: id\r\n"));
    }

    #[test]
    fn request_keeps_a_target_the_uri_does_not_reproduce() {
        let mut req = RequestHeader::build("GET", b"http://a.test/p?q=1", None).unwrap();
        req.insert_header("Host", "a.test").unwrap();
        request(&mut req, |h| {
            set(h, &X_REQUEST_ID, HeaderValue::from_static("id"))
        });
        assert_eq!(req.raw_path(), b"http://a.test/p?q=1");
        assert_eq!(req.headers["host"], "a.test");
        assert_eq!(req.headers["x-request-id"], "id");
        let mut req = RequestHeader::build("GET", b"/a?b=c", None).unwrap();
        request(&mut req, |_| ());
        assert_eq!(req.raw_path(), b"/a?b=c");
        assert_eq!(req.method, http::Method::GET);
    }
}
