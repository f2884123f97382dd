//! HTTPS client of the CA service, on hyper (HTTP/1.1 over tokio-rustls).
//!
//! The CA is authenticated three ways: its chain must lead to the workload's trust bundle, its
//! leaf must carry the CA's SPIFFE ID (`spiffe://DOMAIN/rampart/pki`), and when the leaf names
//! hosts (DNS or IP SANs) the endpoint's host must be one of them.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rampart_tls::web::WebUrl;
use rampart_tls::{config::client_config_with, BundleHandle, Identity, PeerPolicy};
use rampart_tls::{Rejection, SpiffeServerVerifier};
use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::api::{
    ca_service_id, BootstrapRequest, BundleResponse, ErrorResponse, IssueResponse, RenewRequest,
};
use crate::error::{IdentityError, Result};

/// Largest response body read from the CA (a chain and a bundle are a few KiB).
const RESPONSE_LIMIT: usize = 256 * 1024;

/// Where the CA service listens: `https://HOST:PORT`, HOST a DNS name or an IP address. Two
/// endpoints are the same when their server names (DNS names compared without case) and ports
/// are.
#[derive(Debug, Clone)]
pub struct CaEndpoint {
    url: WebUrl,
}

impl CaEndpoint {
    /// Parses `https://HOST:PORT` (or `HOST:PORT`); IPv6 literals in brackets. The URL rules
    /// are `rampart_tls::web`'s; the CA's own: https, a port, no path or query.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &'static str| IdentityError::BadEndpoint {
            endpoint: s.to_string(),
            why,
        };
        let url = match s.split_once("://") {
            Some(("https", _)) => WebUrl::parse(s),
            Some(_) => return Err(bad("the CA is reached over https only")),
            None => WebUrl::parse(&format!("https://{s}")),
        }
        .map_err(|e| bad(e.why))?;
        if url.path_and_query() != "/" {
            return Err(bad(
                "no path, query, fragment or user info; only https://HOST:PORT",
            ));
        }
        if !url.port_given() {
            return Err(bad("no :PORT"));
        }
        if url.port() == 0 {
            return Err(bad("port 0"));
        }
        Ok(CaEndpoint { url })
    }

    /// The name the CA's certificate is checked against (when it names hosts).
    fn server_name(&self) -> &ServerName<'static> {
        self.url.server_name()
    }

    /// The `Host` header value.
    fn authority(&self) -> String {
        self.url.authority()
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        TcpStream::connect((self.url.host(), self.url.port())).await
    }
}

impl PartialEq for CaEndpoint {
    fn eq(&self, other: &Self) -> bool {
        self.server_name() == other.server_name() && self.url.port() == other.url.port()
    }
}

impl Eq for CaEndpoint {}

impl From<SocketAddr> for CaEndpoint {
    fn from(addr: SocketAddr) -> Self {
        CaEndpoint {
            url: WebUrl::https_to(addr),
        }
    }
}

impl FromStr for CaEndpoint {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self> {
        CaEndpoint::parse(s)
    }
}

impl fmt::Display for CaEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}", self.authority())
    }
}

/// A client of one CA service.
#[derive(Debug, Clone)]
pub struct CaClient {
    endpoint: CaEndpoint,
    bundle: BundleHandle,
    timeout: Duration,
}

impl CaClient {
    /// A client of the CA at `endpoint` (a `SocketAddr` or a [`CaEndpoint`]), trusting
    /// `bundle`.
    pub fn new(endpoint: impl Into<CaEndpoint>, bundle: BundleHandle) -> Self {
        CaClient {
            endpoint: endpoint.into(),
            bundle,
            timeout: Duration::from_secs(10),
        }
    }

    /// Gives up on a call after `timeout` (connect, handshake, request and response).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The CA's endpoint.
    pub fn endpoint(&self) -> &CaEndpoint {
        &self.endpoint
    }

    /// First certificate: join token + CSR.
    pub async fn bootstrap(
        &self,
        token: &str,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        let body = BootstrapRequest {
            token: token.into(),
            csr: csr_pem.into(),
            ttl_secs: ttl.map(|t| t.as_secs()),
        };
        self.call(None, Method::POST, "/v1/bootstrap", Some(&body))
            .await
    }

    /// Renewal over mTLS with the current certificate.
    pub async fn renew(
        &self,
        current: &Identity,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        self.issue(current, "/v1/renew", csr_pem, ttl).await
    }

    /// An edge server certificate for the DNS names of `csr_pem`, asked
    /// over mTLS with our SVID (which must be listed in the CA's `[edge]`).
    pub async fn edge(
        &self,
        current: &Identity,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        self.issue(current, "/v1/edge", csr_pem, ttl).await
    }

    /// A CSR sent over mTLS with our current certificate to `path`.
    async fn issue(
        &self,
        current: &Identity,
        path: &str,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        let body = RenewRequest {
            csr: csr_pem.into(),
            ttl_secs: ttl.map(|t| t.as_secs()),
        };
        self.call(Some(current), Method::POST, path, Some(&body))
            .await
    }

    /// The current trust bundle.
    pub async fn bundle(&self) -> Result<BundleResponse> {
        self.call::<(), _>(None, Method::GET, "/v1/bundle", None)
            .await
    }

    async fn call<B: serde::Serialize, R: DeserializeOwned>(
        &self,
        identity: Option<&Identity>,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let body = match body {
            Some(b) => serde_json::to_vec(b)
                .map_err(|e| IdentityError::CaUnavailable(format!("cannot encode request: {e}")))?,
            None => Vec::new(),
        };
        let (status, resp) =
            tokio::time::timeout(self.timeout, self.exchange(identity, method, path, body))
                .await
                .map_err(|_| {
                    IdentityError::CaUnavailable(format!(
                        "{} did not answer within {:?}",
                        self.endpoint, self.timeout
                    ))
                })??;
        if status == StatusCode::OK {
            return serde_json::from_slice(&resp)
                .map_err(|e| IdentityError::CaUnavailable(format!("bad response: {e}")));
        }
        let err: ErrorResponse = serde_json::from_slice(&resp).unwrap_or(ErrorResponse {
            error: "unknown".into(),
            message: String::from_utf8_lossy(&resp).into_owned(),
        });
        Err(IdentityError::CaRefused {
            status: status.as_u16(),
            reason: err.error,
            message: err.message,
        })
    }

    async fn exchange(
        &self,
        identity: Option<&Identity>,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes)> {
        let policy = PeerPolicy::OneOf(vec![ca_service_id(self.bundle.trust_domain())?]);
        let verifier = SpiffeServerVerifier::new(self.bundle.clone(), policy).check_host_sans();
        let config = client_config_with(identity, Arc::new(verifier))?;
        let name = self.endpoint.server_name().clone();
        let tcp = self
            .endpoint
            .connect()
            .await
            .map_err(|e| IdentityError::CaUnavailable(format!("{}: {e}", self.endpoint)))?;
        // Small request/response exchanges: never wait on Nagle.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(tls_failure)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| IdentityError::CaUnavailable(format!("{}: {e}", self.endpoint)))?;
        // The connection task ends with the exchange (or with the timeout dropping it).
        let driver = tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.endpoint.authority())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| IdentityError::CaUnavailable(format!("cannot build request: {e}")))?;
        let result = async {
            let response = sender.send_request(request).await.map_err(hyper_failure)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), RESPONSE_LIMIT)
                .collect()
                .await
                .map_err(|e| IdentityError::CaUnavailable(format!("reading the response: {e}")))?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        driver.abort();
        result
    }
}

/// A failure inside hyper: an I/O error under it is a TLS or socket failure.
fn hyper_failure(e: hyper::Error) -> IdentityError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return tls_failure(std::io::Error::new(io.kind(), io.to_string()));
        }
        source = s.source();
    }
    IdentityError::CaUnavailable(e.to_string())
}

/// TLS failures: a CA certificate we refused says why; an alert about our own certificate is
/// a refusal the operator must act on; anything else means the CA is unreachable.
fn tls_failure(e: std::io::Error) -> IdentityError {
    if let Some(why) = Rejection::from_io(&e) {
        return IdentityError::CaUnavailable(format!(
            "the CA's certificate was refused ({}): {why}",
            why.reason()
        ));
    }
    let text = e.to_string();
    if text.contains("CertificateExpired") {
        IdentityError::CertificateNotValidNow(
            "the CA rejected our certificate as expired; bootstrap again with a new join token"
                .into(),
        )
    } else if text.contains("alert") {
        IdentityError::CaRefused {
            status: 0,
            reason: "tls_alert".into(),
            message: text,
        }
    } else {
        IdentityError::CaUnavailable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = CaEndpoint::parse("https://ca.mesh.example.org:8443").unwrap();
        assert_eq!(e.to_string(), "https://ca.mesh.example.org:8443");
        assert!(matches!(e.server_name(), ServerName::DnsName(_)));
        let e = CaEndpoint::parse("127.0.0.1:9000").unwrap();
        assert!(matches!(e.server_name(), ServerName::IpAddress(_)));
        assert_eq!(
            e,
            CaEndpoint::from(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        let e = CaEndpoint::parse("https://[::1]:9000/").unwrap();
        assert_eq!(e.authority(), "[::1]:9000");
        assert_eq!(e.to_string(), "https://[::1]:9000");
        let from_addr = CaEndpoint::from("[::1]:9000".parse::<SocketAddr>().unwrap());
        assert_eq!((from_addr.authority(), from_addr), (e.authority(), e));
        // The same CA however its name is written (a reload compares them).
        assert_eq!(
            CaEndpoint::parse("https://CA.example:8443/").unwrap(),
            CaEndpoint::parse("ca.example:8443").unwrap()
        );
        assert_ne!(
            CaEndpoint::parse("ca.example:8443").unwrap(),
            CaEndpoint::parse("ca.example:8444").unwrap()
        );
        for bad in [
            "http://ca:80",
            "https://ca",
            "https://ca:0",
            "https://ca:8443/v1",
            "https://u@ca:1",
            "https://[::1:9",
            "https://bad_host!:1",
        ] {
            assert!(CaEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
