//! The alert webhook client: one HTTP/1.1 POST per connection on hyper
//! (`hyper::client::conn::http1`), http or https (rustls with the workspace's
//! ring provider through rampart-tls, webpki roots or a CA file). It talks to
//! the one configured URL and follows no redirects.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("invalid webhook URL: {0}")]
    Url(String),
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("webhook I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("webhook HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("webhook answered {0}")]
    Status(String),
}

/// A parsed webhook URL, with its TLS client when https.
#[derive(Clone)]
pub struct WebhookTarget {
    host: String,
    port: u16,
    path: String,
    https: bool,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("https", &self.https)
            .finish()
    }
}

impl WebhookTarget {
    /// Parses `http[s]://host[:port][/path]`. No user-info, no fragment.
    pub fn parse(url: &str) -> Result<Self, WebhookError> {
        let bad = |why: &str| WebhookError::Url(format!("{url}: {why}"));
        if url.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user-info is not allowed"));
        }
        let host = authority.host().to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        // The port text itself: `http` leaves an out-of-range port unparsed rather than refused.
        let port = match authority.as_str().get(host.len()..).unwrap_or("") {
            "" if https => 443,
            "" => 80,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| bad("bad port"))?,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            host,
            port,
            path: path.to_string(),
            https,
            tls: None,
        })
    }

    /// Builds the TLS client for an https URL (no-op for http).
    pub fn with_tls(mut self, ca_file: Option<&Path>) -> Result<Self, WebhookError> {
        if !self.https {
            return Ok(self);
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let ca_err = |reason: String| WebhookError::CaFile {
                    path: path.display().to_string(),
                    reason,
                };
                for cert in
                    CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))?
                {
                    let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                    roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ca_err("no certificates in file".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rampart_tls::Profile::Intermediate
            .client_builder()
            .map_err(|e| WebhookError::Url(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name =
            ServerName::try_from(self.host.trim_matches(|c| c == '[' || c == ']').to_string())
                .map_err(|e| WebhookError::Url(format!("{}: {e}", self.host)))?;
        self.tls = Some((TlsConnector::from(Arc::new(config)), name));
        Ok(self)
    }

    /// POSTs `body` as JSON; Ok only on a 2xx status.
    pub async fn post_json(&self, body: &str) -> Result<(), WebhookError> {
        let tcp = TcpStream::connect((self.host.trim_matches(|c| c == '[' || c == ']'), self.port))
            .await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await?;
                self.exchange(tls, body).await
            }
            None if self.https => Err(WebhookError::Url("https target without TLS set up".into())),
            None => self.exchange(tcp, body).await,
        }
    }

    async fn exchange<S>(&self, io: S, body: &str) -> Result<(), WebhookError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let default_port = if self.https { 443 } else { 80 };
        let host_header = if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let request = http::Request::post(self.path.as_str())
            .header(HOST, host_header)
            .header(USER_AGENT, "rampart-alerts")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| WebhookError::Url(e.to_string()))?;
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
        let t = WebhookTarget::parse("http://127.0.0.1:9000/hooks/x?a=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9000, "/hooks/x?a=1")
        );
        let t = WebhookTarget::parse("https://[::1]/a").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.https), ("[::1]", 443, true));
        let t = WebhookTarget::parse("http://example.test").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        for bad in [
            "ftp://x/",
            "http://user@x/",
            "http://x:99999/",
            "http:///a",
            "http://x/a b",
            "http://x/a#frag",
        ] {
            assert!(WebhookTarget::parse(bad).is_err(), "{bad}");
        }
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
