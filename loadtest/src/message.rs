//! What the two senders share: a request as a scenario describes it, and what came back. The
//! hyper client ([`crate::http`]) sends what the `http` types can hold; the raw sender
//! ([`crate::malformed`]) the rest.

/// One request, ready to be prepared for a host (`http::Request::prepare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Origin-form target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(target: &str) -> Self {
        Self {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The server will close (or closed) the connection.
    pub close: bool,
}
