//! HTTPS client of the CA service. The CA is authenticated by its SVID
//! (`spiffe://DOMAIN/rampart/pki`) against the workload's trust bundle.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{PkiError, Result};
use crate::server::api::{
    BootstrapRequest, BundleResponse, ErrorResponse, IssueResponse, RenewRequest,
};
use crate::server::http::read_response;
use crate::server::service_id;
use crate::tls::{client_config, BundleHandle, Identity, PeerPolicy};

const RESPONSE_LIMIT: usize = 256 * 1024;

/// A client of one CA service.
#[derive(Debug, Clone)]
pub struct CaClient {
    addr: SocketAddr,
    bundle: BundleHandle,
    timeout: Duration,
}

impl CaClient {
    /// A client of the CA at `addr`, trusting `bundle`.
    pub fn new(addr: SocketAddr, bundle: BundleHandle) -> Self {
        CaClient {
            addr,
            bundle,
            timeout: Duration::from_secs(10),
        }
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
        self.call(None, "POST", "/v1/bootstrap", Some(&body)).await
    }

    /// Renewal over mTLS with the current certificate.
    pub async fn renew(
        &self,
        current: &Identity,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        let body = RenewRequest {
            csr: csr_pem.into(),
            ttl_secs: ttl.map(|t| t.as_secs()),
        };
        self.call(Some(current), "POST", "/v1/renew", Some(&body))
            .await
    }

    /// An edge server certificate for the DNS names of `csr_pem`, asked
    /// over mTLS with our SVID (which must be listed in the CA's `[edge]`).
    pub async fn edge(
        &self,
        current: &Identity,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<IssueResponse> {
        let body = RenewRequest {
            csr: csr_pem.into(),
            ttl_secs: ttl.map(|t| t.as_secs()),
        };
        self.call(Some(current), "POST", "/v1/edge", Some(&body))
            .await
    }

    /// The current trust bundle.
    pub async fn bundle(&self) -> Result<BundleResponse> {
        self.call::<(), _>(None, "GET", "/v1/bundle", None).await
    }

    async fn call<B: serde::Serialize, R: DeserializeOwned>(
        &self,
        identity: Option<&Identity>,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| PkiError::BadRequest(e.to_string()))?,
            None => Vec::new(),
        };
        let (status, resp) =
            tokio::time::timeout(self.timeout, self.exchange(identity, method, path, &body))
                .await
                .map_err(|_| {
                    PkiError::CaUnavailable(format!(
                        "{} did not answer within {:?}",
                        self.addr, self.timeout
                    ))
                })??;
        if status == 200 {
            return serde_json::from_slice(&resp)
                .map_err(|e| PkiError::CaUnavailable(format!("bad response: {e}")));
        }
        let err: ErrorResponse = serde_json::from_slice(&resp).unwrap_or(ErrorResponse {
            error: "unknown".into(),
            message: String::from_utf8_lossy(&resp).into_owned(),
        });
        Err(PkiError::CaRefused {
            status,
            reason: err.error,
            message: err.message,
        })
    }

    async fn exchange(
        &self,
        identity: Option<&Identity>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let policy = PeerPolicy::OneOf(vec![service_id(self.bundle.trust_domain())?]);
        let config = client_config(identity, &self.bundle, policy)?;
        let unavailable =
            |e: std::io::Error| PkiError::CaUnavailable(format!("{}: {e}", self.addr));
        let tcp = TcpStream::connect(self.addr).await.map_err(unavailable)?;
        // Small request/response exchanges: never wait on Nagle.
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("rampart-pki").map_err(|e| PkiError::Tls(e.to_string()))?;
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(tls_failure)?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: rampart-pki\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request).await.map_err(tls_failure)?;
        tls.flush().await.map_err(tls_failure)?;
        read_response(&mut tls, RESPONSE_LIMIT)
            .await
            .map_err(|e| match e {
                crate::server::http::HttpError::Io(io) => tls_failure(io),
                other => PkiError::CaUnavailable(other.to_string()),
            })
    }
}

/// TLS failures: an alert about our own certificate is a refusal the
/// operator must act on; anything else means the CA is unreachable.
fn tls_failure(e: std::io::Error) -> PkiError {
    let text = e.to_string();
    if text.contains("CertificateExpired") {
        PkiError::CertificateNotValidNow(
            "the CA rejected our certificate as expired; bootstrap again with a new join token"
                .into(),
        )
    } else if text.contains("alert") {
        PkiError::CaRefused {
            status: 0,
            reason: "tls_alert".into(),
            message: text,
        }
    } else {
        PkiError::CaUnavailable(text)
    }
}
