//! The request as the caller hands it to the engine: borrowed, raw bytes.

/// One HTTP request to inspect. Everything is borrowed and raw (as on the wire).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Raw, percent-encoded path, without the query.
    pub path: &'a str,
    /// Raw query string, without the leading '?'.
    pub query: &'a str,
    /// The protocol version as the request line names it (`HTTP/1.1`,
    /// `HTTP/2`; `HTTP/0.9` for a request line without one); empty when
    /// the caller does not know it (then it is not inspected).
    pub version: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
    /// The caller cut the body at its inspection limit.
    pub body_truncated: bool,
}

impl<'a> Request<'a> {
    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}
