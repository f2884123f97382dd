//! Loads request records from a corpus file (JSONL, optionally gzip), in the
//! shapes of /work/shared/waf-corpus (see its README):
//! - request: `{"label", "method", "path", "query", "headers", "body", ...}`;
//! - value: `{"label", "value"}`, a bare parameter value, placed in a
//!   request as the README says: a query arg, a form body or a JSON body.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::http::Request;
use crate::Error;

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    label: Option<String>,
    /// Value-shaped records carry only this.
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    body: Option<String>,
}

/// Which records to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelFilter {
    Attack,
    Benign,
    All,
}

/// Where a value-shaped record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// `GET /search?q=<urlencoded>`
    Query,
    /// `POST /search`, `application/x-www-form-urlencoded`, `q=<urlencoded>`
    Form,
    /// `POST /search`, `application/json`, `{"q": value}`
    Json,
}

/// Requests from the corpus, and how many lines were skipped as unusable.
#[derive(Debug)]
pub struct Corpus {
    pub requests: Vec<Request>,
    pub skipped: usize,
}

/// Headers we set ourselves, or that would desynchronise the connection.
const OWN_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

pub fn load(path: &Path, filter: LabelFilter, limit: usize) -> Result<Corpus, Error> {
    load_with(path, filter, Placement::Query, limit)
}

/// [`load`], choosing where value-shaped records are placed.
pub fn load_with(
    path: &Path,
    filter: LabelFilter,
    placement: Placement,
    limit: usize,
) -> Result<Corpus, Error> {
    let err = |reason: String| Error::Corpus {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut requests = Vec::new();
    let mut skipped = 0;
    for line in BufReader::new(reader).lines() {
        if requests.len() >= limit {
            break;
        }
        let line = line.map_err(|e| err(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(mut record) = serde_json::from_str::<Record>(&line) else {
            skipped += 1;
            continue;
        };
        let keep = match filter {
            LabelFilter::All => true,
            LabelFilter::Attack => record.label.as_deref() == Some("attack"),
            LabelFilter::Benign => record.label.as_deref() == Some("benign"),
        };
        if !keep {
            continue;
        }
        let request = match record.value.take() {
            Some(value) if record.method.is_empty() => Some(place(&value, placement)),
            _ => to_request(record),
        };
        match request {
            Some(r) => requests.push(r),
            None => skipped += 1,
        }
    }
    if requests.is_empty() {
        return Err(err(format!(
            "no usable {filter:?} request records ({skipped} skipped)"
        )));
    }
    Ok(Corpus { requests, skipped })
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn place(value: &str, placement: Placement) -> Request {
    let post = |content_type: &str, body: String| Request {
        method: "POST".into(),
        target: "/search".into(),
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.into_bytes(),
    };
    match placement {
        Placement::Query => Request::get(&format!("/search?q={}", urlencode(value))),
        Placement::Form => post(
            "application/x-www-form-urlencoded",
            format!("q={}", urlencode(value)),
        ),
        Placement::Json => post(
            "application/json",
            serde_json::json!({ "q": value }).to_string(),
        ),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn clean_value(v: &str) -> bool {
    !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// A record as a request we can put on the wire; None if it cannot be.
fn to_request(r: Record) -> Option<Request> {
    if !is_token(&r.method)
        || !r.path.starts_with('/')
        || r.path.bytes().any(|b| b <= b' ' || b == 0x7f)
    {
        return None;
    }
    let mut target = r.path;
    if let Some(q) = r.query.filter(|q| !q.is_empty()) {
        if q.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return None;
        }
        target.push('?');
        target.push_str(&q);
    }
    let mut headers = Vec::new();
    for (name, value) in r.headers.unwrap_or_default() {
        let value = match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if is_token(&name)
            && clean_value(&value)
            && !OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str())
        {
            headers.push((name, value));
        }
    }
    Some(Request {
        method: r.method,
        target,
        headers,
        body: r.body.unwrap_or_default().into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn loads_jsonl_and_gzip_and_filters_labels() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"source":"t","label":"attack","attack_type":"sqli","method":"GET","path":"/s","query":"q=1%27%20or%201=1","headers":{"User-Agent":"x","Host":"evil","Bad":"a\r\nb"},"body":null}
{"source":"t","label":"benign","attack_type":null,"method":"POST","path":"/f","query":"","headers":null,"body":"a=1"}
not json
{"source":"t","label":"attack","method":"G ET","path":"/x","query":null,"headers":null,"body":null}
"#;
        let plain = dir.path().join("c.jsonl");
        std::fs::write(&plain, text).unwrap();
        let c = load(&plain, LabelFilter::Attack, 100).unwrap();
        assert_eq!(c.requests.len(), 1);
        assert_eq!(c.skipped, 2);
        assert_eq!(c.requests[0].target, "/s?q=1%27%20or%201=1");
        assert_eq!(
            c.requests[0].headers,
            vec![("User-Agent".to_string(), "x".to_string())]
        );

        let gz = dir.path().join("c.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let c = load(&gz, LabelFilter::Benign, 100).unwrap();
        assert_eq!(c.requests[0].method, "POST");
        assert_eq!(c.requests[0].body, b"a=1");
        assert_eq!(load(&gz, LabelFilter::All, 100).unwrap().requests.len(), 2);

        let err = load(&dir.path().join("missing"), LabelFilter::All, 1).unwrap_err();
        assert!(err.to_string().contains("missing"));

        let values = dir.path().join("v.jsonl");
        std::fs::write(
            &values,
            "{\"label\":\"attack\",\"value\":\"1' or 1=1 -- a&b\"}\n",
        )
        .unwrap();
        let q = load_with(&values, LabelFilter::Attack, Placement::Query, 10).unwrap();
        assert_eq!(
            q.requests[0].target,
            "/search?q=1%27%20or%201%3D1%20--%20a%26b"
        );
        let f = load_with(&values, LabelFilter::Attack, Placement::Form, 10).unwrap();
        assert_eq!(f.requests[0].body, b"q=1%27%20or%201%3D1%20--%20a%26b");
        let j = load_with(&values, LabelFilter::Attack, Placement::Json, 10).unwrap();
        assert_eq!(j.requests[0].body, br#"{"q":"1' or 1=1 -- a&b"}"#);
        assert!(err.to_string().contains("missing"));
    }
}
