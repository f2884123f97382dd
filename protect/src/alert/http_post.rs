//! A minimal HTTP/1.1 POST client for the alert webhook: one request per
//! connection, http or https (rustls + ring, webpki roots or a CA file).
//! It talks to the one configured URL and follows no redirects.

use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains('#') {
            return Err(bad("user-info and fragments are not allowed"));
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("path has spaces or control characters"));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) =
            split_host_port(authority, default_port).ok_or_else(|| bad("bad host or port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
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

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut io: S,
        body: &str,
    ) -> Result<(), WebhookError> {
        let default_port = if self.https { 443 } else { 80 };
        let host_header = if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: rampart-proxy-alerts\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            body.len()
        );
        io.write_all(head.as_bytes()).await?;
        io.write_all(body.as_bytes()).await?;
        io.flush().await?;
        // The status line is all we need; read at most 4 KiB of the answer.
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        while len < buf.len() {
            let n = io.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].contains(&b'\n') {
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf[..len]);
        let status_line = text.lines().next().unwrap_or("").to_string();
        let code = status_line.split(' ').nth(1).unwrap_or("");
        if status_line.starts_with("HTTP/1.") && code.len() == 3 && code.starts_with('2') {
            Ok(())
        } else {
            Err(WebhookError::Status(if status_line.is_empty() {
                "nothing".into()
            } else {
                status_line
            }))
        }
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = format!("[{}]", &rest[..end]);
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
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
