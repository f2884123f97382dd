//! The alert webhook client: one HTTP/1.1 POST per connection on hyper
//! (`hyper::client::conn::http1`), http or https. The URL rules, the roots
//! (webpki roots or a CA file) and the TLS settings (the `intermediate`
//! profile) are `rampart_tls::web`'s, shared with the CA's JWKS client. It
//! talks to the one configured URL and follows no redirects.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rampart_tls::web::{WebClient, WebUrl};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("invalid webhook URL: {0}")]
    Url(#[from] rampart_tls::web::UrlError),
    /// The TLS client: its CA file (named) did not load, or its settings were refused.
    #[error("webhook TLS: {0}")]
    Tls(#[from] rampart_tls::web::ClientError),
    #[error("webhook I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("webhook HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("webhook answered {0}")]
    Status(String),
}

/// A parsed webhook URL with its client, built once (`rampart_tls::web`: the URL rules, and for https
/// the `intermediate` profile verifying the server against the web roots or a CA file).
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    client: WebClient,
}

impl WebhookTarget {
    /// Checks `http[s]://host[:port][/path]` (no user-info, no fragment) without building a
    /// client: what config validation needs.
    pub fn check_url(url: &str) -> Result<(), WebhookError> {
        WebUrl::parse(url)?;
        Ok(())
    }

    /// Parses `url` and builds its client once: for https, trusting the certificates of
    /// `ca_file`, else the public web roots (an http URL reads no file). A bad URL is
    /// [`WebhookError::Url`], a CA file that does not load [`WebhookError::Tls`] with
    /// [`ClientError::Roots`](rampart_tls::web::ClientError::Roots).
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, WebhookError> {
        Ok(Self {
            client: WebClient::new(WebUrl::parse(url)?, ca_file)?,
        })
    }

    /// POSTs `body` as JSON; Ok only on a 2xx status.
    pub async fn post_json(&self, body: &str) -> Result<(), WebhookError> {
        let url = self.client.url();
        let request = http::Request::post(url.path_and_query())
            .header(HOST, url.host_header())
            .header(USER_AGENT, "rampart-alerts")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))?;
        let io = self.client.connect().await?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await?;
        tokio::pin!(conn);
        // Drive the connection while the request is answered; only the status is needed,
        // so the connection is dropped (closed) once the response head is in.
        let response = tokio::select! {
            response = sender.send_request(request) => response?,
            closed = &mut conn => {
                closed?;
                return Err(WebhookError::Status("nothing (connection closed)".into()));
            }
        };
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(WebhookError::Status(status.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        // The URL rules are rampart_tls::web's (tested there); the target keeps what it parsed.
        let t = WebhookTarget::new("http://127.0.0.1:9000/hooks/x?a=1", None).unwrap();
        let url = t.client.url();
        assert_eq!(
            (url.host(), url.port(), url.path_and_query()),
            ("127.0.0.1", 9000, "/hooks/x?a=1")
        );
        let err = WebhookTarget::new("http://user@x/", None).unwrap_err();
        assert!(matches!(err, WebhookError::Url(_)), "{err}");
        assert!(err.to_string().starts_with("invalid webhook URL"), "{err}");
        let err = WebhookTarget::check_url("http://user@x/").unwrap_err();
        assert!(matches!(err, WebhookError::Url(_)), "{err}");
        assert!(WebhookTarget::check_url("https://localhost/").is_ok());
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = WebhookTarget::new("https://localhost/", Some(&empty)).unwrap_err();
        assert!(
            matches!(
                err,
                WebhookError::Tls(rampart_tls::web::ClientError::Roots(_))
            ),
            "{err}"
        );
        assert!(err.to_string().contains("empty.pem"), "{err}");
        // Default roots load; an http URL reads no file.
        assert!(WebhookTarget::new("https://localhost/", None).is_ok());
        assert!(WebhookTarget::new("http://localhost/", Some(&empty)).is_ok());
    }
}
