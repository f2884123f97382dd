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
    /// The CA file (named) or the TLS client config.
    #[error("webhook TLS: {0}")]
    Tls(#[from] rampart_tls::TlsError),
    #[error("webhook I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("webhook HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("webhook answered {0}")]
    Status(String),
}

/// A parsed webhook URL with its client (`rampart_tls::web`: the URL rules, and for https
/// the `intermediate` profile verifying the server against the web roots or a CA file).
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    client: WebClient,
}

impl WebhookTarget {
    /// Parses `http[s]://host[:port][/path]` (no user-info, no fragment); an https target
    /// trusts the public web roots until [`with_tls`](Self::with_tls) names a CA file.
    pub fn parse(url: &str) -> Result<Self, WebhookError> {
        Ok(Self {
            client: WebClient::new(WebUrl::parse(url)?, None)?,
        })
    }

    /// For an https URL, trusts the certificates of `ca_file` instead of the web roots
    /// (no-op for http, or without a file).
    pub fn with_tls(self, ca_file: Option<&Path>) -> Result<Self, WebhookError> {
        match ca_file {
            Some(_) if self.client.url().is_https() => Ok(Self {
                client: WebClient::new(self.client.url().clone(), ca_file)?,
            }),
            _ => Ok(self),
        }
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
        let t = WebhookTarget::parse("http://127.0.0.1:9000/hooks/x?a=1").unwrap();
        let url = t.client.url();
        assert_eq!(
            (url.host(), url.port(), url.path_and_query()),
            ("127.0.0.1", 9000, "/hooks/x?a=1")
        );
        let err = WebhookTarget::parse("http://user@x/").unwrap_err();
        assert!(matches!(err, WebhookError::Url(_)), "{err}");
        assert!(err.to_string().starts_with("invalid webhook URL"), "{err}");
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = WebhookTarget::parse("https://localhost/")
            .unwrap()
            .with_tls(Some(&empty))
            .unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        // Default roots load.
        assert!(WebhookTarget::parse("https://localhost/")
            .unwrap()
            .with_tls(None)
            .is_ok());
    }
}
