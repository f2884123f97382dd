//! Clients of ordinary web servers (the alert webhook, a cluster's JWKS URL): an
//! `http[s]://host[:port][/path]` URL parsed once at load, and for https a rustls client with
//! the [`Profile::Intermediate`] versions and suites that verifies the server's DNS name or
//! address against a CA file's certificates or, without one, the public web roots.
//!
//! The HTTP exchange stays with the caller (hyper's `client::conn::http1` over the stream
//! [`WebClient::connect`] opens); this module owns what every such client must get the same:
//! the URL rules, the roots, the TLS settings and the server name.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Result, TlsError};
use crate::provider::Profile;

/// A URL [`WebUrl::parse`] refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {why}")]
pub struct UrlError {
    /// The URL as given.
    pub url: String,
    /// Which rule it breaks.
    pub why: &'static str,
}

/// An `http[s]://host[:port][/path[?query]]` URL: no user-info, no fragment, a port in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl {
    text: String,
    https: bool,
    /// As written: an IPv6 address keeps its brackets (for the `Host` header).
    host: String,
    port: u16,
    /// Whether the URL names its port.
    port_given: bool,
    path: String,
    server_name: ServerName<'static>,
}

impl WebUrl {
    /// Parses `url`; the default port is 443 for https, 80 for http.
    pub fn parse(url: &str) -> std::result::Result<Self, UrlError> {
        let bad = |why: &'static str| UrlError {
            url: url.to_string(),
            why,
        };
        if url.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|_| bad("not a URL (http[s]://host[:port][/path])"))?;
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
        let port_text = authority.as_str().get(host.len()..).unwrap_or("");
        let port = match port_text {
            "" if https => 443,
            "" => 80,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| bad("bad port"))?,
        };
        let server_name = ServerName::try_from(unbracketed(&host).to_string())
            .map_err(|_| bad("host is neither an IP address nor a DNS name"))?;
        let path = match uri.path_and_query().map_or("/", |p| p.as_str()) {
            "" => "/",
            p => p,
        };
        Ok(WebUrl {
            text: url.to_string(),
            https,
            host,
            port,
            port_given: !port_text.is_empty(),
            path: path.to_string(),
            server_name,
        })
    }

    /// Whether the URL is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host to connect to (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        unbracketed(&self.host)
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL names its port (else [`port`](Self::port) is the scheme's default).
    pub fn port_given(&self) -> bool {
        self.port_given
    }

    /// The request target: path and query (`/` when the URL has none).
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// The `Host` header: the host as written, with the port unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        match (self.https, self.port) {
            (true, 443) | (false, 80) => self.host.clone(),
            _ => self.authority(),
        }
    }

    /// `host:port`, the port always named (the host as written: an IPv6 address in brackets).
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The name the server's certificate is checked against: the host, a DNS name or an IP
    /// address.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// `https://ADDR/`: a server known by its socket address.
    pub fn https_to(addr: SocketAddr) -> Self {
        let host = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        WebUrl {
            text: format!("https://{host}:{}/", addr.port()),
            https: true,
            host,
            port: addr.port(),
            port_given: true,
            path: "/".into(),
            server_name: ServerName::IpAddress(addr.ip().into()),
        }
    }
}

impl std::fmt::Display for WebUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The roots a web server's certificate is checked against: every certificate of `ca_file`
/// (errors name the file), or the public web roots (webpki-roots) without one.
pub fn web_roots(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in crate::pem::load_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::file(path, format!("not a usable root: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// Why a web client could not be built, by what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The roots: the CA file did not load (the error names it; the web roots always load).
    #[error("{0}")]
    Roots(TlsError),
    /// rustls refused the TLS settings.
    #[error("TLS client settings: {0}")]
    Settings(TlsError),
}

impl From<ClientError> for TlsError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Roots(e) | ClientError::Settings(e) => e,
        }
    }
}

/// A client config for web servers: [`Profile::Intermediate`] (TLS 1.3, and TLS 1.2 with
/// ECDHE + AEAD), the server's name checked against [`web_roots`], no client certificate.
pub fn web_client_config(
    ca_file: Option<&Path>,
) -> std::result::Result<Arc<ClientConfig>, ClientError> {
    let roots = web_roots(ca_file).map_err(ClientError::Roots)?;
    let builder = Profile::Intermediate
        .client_builder()
        .map_err(ClientError::Settings)?;
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// One web server's URL with its TLS client (for https), built once at load.
#[derive(Clone)]
pub struct WebClient {
    url: WebUrl,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for WebClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebClient {
    /// For an https `url`, a TLS client by [`web_client_config`] (`ca_file`, else the public
    /// web roots); an http `url` needs none and `ca_file` is not read.
    pub fn new(url: WebUrl, ca_file: Option<&Path>) -> std::result::Result<Self, ClientError> {
        let tls = match url.https {
            true => Some(TlsConnector::from(web_client_config(ca_file)?)),
            false => None,
        };
        Ok(WebClient { url, tls })
    }

    /// The URL.
    pub fn url(&self) -> &WebUrl {
        &self.url
    }

    /// Opens a TCP connection (no Nagle delay) and, for https, completes the TLS handshake.
    pub async fn connect(&self) -> io::Result<WebStream> {
        let tcp = TcpStream::connect((self.url.host(), self.url.port)).await?;
        tcp.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(tls) => WebStream::Tls(Box::new(
                tls.connect(self.url.server_name.clone(), tcp).await?,
            )),
            None => WebStream::Plain(tcp),
        })
    }
}

/// A connection [`WebClient::connect`] opened: plain TCP (http) or TLS (https).
#[derive(Debug)]
pub enum WebStream {
    /// http.
    Plain(TcpStream),
    /// https.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for WebStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WebStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_flush(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = WebUrl::parse("http://127.0.0.1:9000/hooks/x?a=1").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.path_and_query(), u.is_https()),
            ("127.0.0.1", 9000, "/hooks/x?a=1", false)
        );
        assert_eq!(u.host_header(), "127.0.0.1:9000");
        assert!(u.port_given());
        let u = WebUrl::parse("https://[::1]/a").unwrap();
        assert_eq!((u.host(), u.port(), u.is_https()), ("::1", 443, true));
        assert!(!u.port_given());
        assert_eq!(u.host_header(), "[::1]");
        assert_eq!(u.to_string(), "https://[::1]/a");
        let u = WebUrl::parse("http://example.test").unwrap();
        assert_eq!((u.port(), u.path_and_query()), (80, "/"));
        assert_eq!(u.host_header(), "example.test");
        // Each refused URL, for the rule it breaks.
        let refused = |url: &str| WebUrl::parse(url).map(|_| ()).map_err(|e| e.why);
        assert_eq!(
            refused("ftp://x/"),
            Err("must start with http:// or https://")
        );
        assert_eq!(refused("http://user@x/"), Err("user-info is not allowed"));
        assert_eq!(refused("http://x:99999/"), Err("bad port"));
        assert_eq!(refused("https://x:99999/"), Err("bad port"));
        assert_eq!(refused("http://x/a#frag"), Err("fragments are not allowed"));
        assert_eq!(
            refused("/relative"),
            Err("must start with http:// or https://")
        );
        assert!(refused("http:///a").is_err());
        assert!(refused("http://x/a b").is_err());
        assert_eq!(
            refused("https://bad_host!:1/"),
            Err("host is neither an IP address nor a DNS name")
        );
        let err = WebUrl::parse("http://u@x/").unwrap_err();
        assert_eq!(err.to_string(), "http://u@x/: user-info is not allowed");
    }

    /// A socket address makes the URL `parse` makes of its text.
    #[test]
    fn a_socket_address_is_the_url_of_its_text() {
        for addr in ["127.0.0.1:9000", "[::1]:9443"] {
            let text = format!("https://{addr}/");
            let made = WebUrl::https_to(addr.parse().unwrap());
            assert_eq!(made, WebUrl::parse(&text).unwrap());
            assert_eq!(made.authority(), addr);
            assert!(matches!(made.server_name(), ServerName::IpAddress(_)));
        }
    }

    #[test]
    fn roots_come_from_the_ca_file_or_the_web() {
        let dir = std::env::temp_dir().join(format!("rampart-web-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = web_roots(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = dir.join("missing.pem");
        let err = web_client_config(Some(&missing)).unwrap_err();
        assert!(matches!(err, ClientError::Roots(_)), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            web_roots(None).unwrap().len(),
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
    }

    /// https against a loopback server: the CA file's root and the address in the URL admit
    /// it; the public web roots, or a certificate for another name, do not.
    #[cfg(feature = "test-ca")]
    #[tokio::test]
    async fn https_checks_the_roots_and_the_name() {
        use crate::test_ca::{dns, ip, TestCa};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let ca = TestCa::new();
        let dir = std::env::temp_dir().join(format!("rampart-web-https-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.root_pem()).unwrap();
        let serve = |sans| {
            let (chain, key) = ca.leaf(sans, time::Duration::hours(1));
            let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
            let cfg = Profile::Intermediate
                .server_builder()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        if let Ok(mut tls) = acceptor.accept(tcp).await {
                            let _ = tls.write_all(b"hello").await;
                            let _ = tls.shutdown().await;
                        }
                    }
                });
                port
            }
        };
        let deadline = std::time::Duration::from_secs(10);
        let good = serve(vec![ip("127.0.0.1")]).await;
        let other_name = serve(vec![dns("other.test")]).await;
        let url = |port: u16| WebUrl::parse(&format!("https://127.0.0.1:{port}/jwks")).unwrap();

        let client = WebClient::new(url(good), Some(&ca_file)).unwrap();
        let mut stream = tokio::time::timeout(deadline, client.connect())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(stream, WebStream::Tls(_)));
        let mut got = String::new();
        tokio::time::timeout(deadline, stream.read_to_string(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "hello");

        for (client, why) in [
            (WebClient::new(url(good), None).unwrap(), "web roots"),
            (
                WebClient::new(url(other_name), Some(&ca_file)).unwrap(),
                "another name",
            ),
        ] {
            let err = tokio::time::timeout(deadline, client.connect())
                .await
                .unwrap()
                .unwrap_err();
            assert!(
                err.to_string().contains("invalid peer certificate"),
                "{why}: {err}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
