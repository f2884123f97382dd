//! An owned request read from a file, lent to the engine as a `Request`.

use rampart_waf::Request;

#[derive(Debug, Clone, Default)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `HTTP/1.1`...; empty when the record does not say (not inspected).
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    /// Splits a request target into path and query.
    pub fn set_uri(&mut self, uri: &str) {
        match uri.split_once('?') {
            Some((p, q)) => {
                self.path = p.to_string();
                self.query = q.to_string();
            }
            None => {
                self.path = uri.to_string();
                self.query.clear();
            }
        }
    }

    /// Runs `f` with a borrowed `Request` view.
    pub fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            version: &self.version,
            headers: &headers,
            body: &self.body,
            body_truncated: false,
        };
        f(&req)
    }

    /// From a corpus request record / `check` input.
    pub fn from_json(v: &serde_json::Value) -> OwnedRequest {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let mut r = OwnedRequest {
            method: s("method"),
            path: s("path"),
            query: s("query"),
            version: s("version"),
            ..Default::default()
        };
        if r.method.is_empty() {
            r.method = "GET".into();
        }
        if r.path.is_empty() {
            r.path = "/".into();
        }
        if let Some(h) = v.get("headers").and_then(|h| h.as_object()) {
            for (k, val) in h {
                let text = match val {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                r.headers.push((k.clone(), text.into_bytes()));
            }
        }
        r.body = s("body").into_bytes();
        r
    }
}
