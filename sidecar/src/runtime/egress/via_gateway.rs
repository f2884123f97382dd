//! The sidecar's side of the egress gateway ([`super::gateway`]): mutual TLS to the gateway the
//! directory names (checking the identity it presents), then `CONNECT` with the app's first
//! bytes, or plain HTTP requests in absolute form ([`super::plain`]). A refusal comes back as
//! a [`GatewayRefusal`] carrying the gateway's own reason and rule.

use std::net::SocketAddr;

use rampart_egress::{Admitted, DialOptions};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client;

use super::destination;
use crate::config::egress::GatewayRef;
use crate::mtls;
use crate::runtime::generation::Generation;
use crate::runtime::HANDSHAKE_TIMEOUT;

/// Most bytes of the gateway's answer head the sidecar reads.
const MAX_ANSWER: usize = 8 * 1024;

/// Why the gateway did not carry a connection, as the sidecar sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayRefusal {
    /// The gateway could not be reached or spoke nonsense.
    #[error("egress gateway unavailable: {0}")]
    Unavailable(String),
    /// The peer at the gateway's address is not the gateway's identity.
    #[error("egress gateway identity: {0}")]
    Identity(String),
    /// The gateway refused, with its reason.
    #[error("the egress gateway refused ({status}): {text}")]
    Denied {
        status: u16,
        reason: String,
        rule: Option<String>,
        text: String,
    },
}

impl GatewayRefusal {
    /// Reason code (log, metric label): the gateway's own for its denials.
    pub fn reason(&self) -> &str {
        match self {
            GatewayRefusal::Unavailable(_) => "gateway_unavailable",
            GatewayRefusal::Identity(_) => "unexpected_peer_identity",
            GatewayRefusal::Denied { reason, .. } => reason,
        }
    }

    /// The gateway's rule, when it named one.
    pub fn rule(&self) -> Option<&str> {
        match self {
            GatewayRefusal::Denied { rule, .. } => rule.as_deref(),
            _ => None,
        }
    }

    /// Who decided: the gateway, or this sidecar (could not use the gateway).
    pub fn by(&self) -> &'static str {
        match self {
            GatewayRefusal::Denied { .. } => "gateway",
            _ => "sidecar",
        }
    }
}

/// Sidecar side: opens mutual TLS to the gateway the directory names (checking its identity).
/// Plain HTTP is then sent as absolute-form requests (see [`super::plain`]); everything else
/// through [`open`].
pub async fn tunnel(
    g: &Generation,
    connector: &rampart_tls::LatestConnector,
    gw: &GatewayRef,
    options: &DialOptions,
) -> Result<(client::TlsStream<TcpStream>, SocketAddr), GatewayRefusal> {
    let unavailable = GatewayRefusal::Unavailable;
    let service = g
        .directory
        .service(&gw.service)
        .ok_or_else(|| unavailable(format!("service {} is not in the directory", gw.service)))?;
    let address = service.address_for(gw.port).ok_or_else(|| {
        unavailable(format!(
            "service {} has no port {} in the directory",
            gw.service, gw.port
        ))
    })?;
    let tcp = match tokio::time::timeout(options.connect_timeout, TcpStream::connect(address)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(unavailable(format!("{address}: {e}"))),
        Err(_) => return Err(unavailable(format!("{address} did not accept in time"))),
    };
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(service.name.clone())
        .unwrap_or_else(|_| ServerName::IpAddress(address.ip().into()));
    let tls = match mtls::connect_peer(connector, tcp, name, &service.identity, HANDSHAKE_TIMEOUT)
        .await
    {
        Ok(t) => t,
        Err(mtls::PeerFailure::Handshake(label, text)) => {
            return Err(unavailable(format!("{address}: handshake {label}: {text}")))
        }
        Err(mtls::PeerFailure::Timeout) => {
            return Err(unavailable(format!("{address}: handshake timed out")))
        }
        Err(mtls::PeerFailure::Unexpected(presented)) => {
            return Err(GatewayRefusal::Identity(format!(
                "{address} presented {}, the directory expects {}",
                presented
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "no identity".into()),
                service.identity
            )))
        }
    };
    Ok((tls, address))
}

/// Sidecar side: opens mTLS to the gateway and asks it to carry `admitted`. Returns the
/// stream, bytes that followed the gateway's `200` (already the destination's), and the
/// gateway's address.
pub async fn open(
    g: &Generation,
    connector: &rampart_tls::LatestConnector,
    gw: &GatewayRef,
    admitted: &Admitted,
    options: &DialOptions,
) -> Result<(client::TlsStream<TcpStream>, Vec<u8>, SocketAddr), GatewayRefusal> {
    let unavailable = GatewayRefusal::Unavailable;
    let (mut tls, address) = tunnel(g, connector, gw, options).await?;
    let io = |e: std::io::Error| unavailable(format!("{address}: {e}"));
    let (host, port) = destination(admitted);
    let target = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    request.extend_from_slice(&admitted.prefix);
    tls.write_all(&request).await.map_err(io)?;
    let deadline = options.connect_timeout.saturating_add(options.peek_timeout);
    let mut buf = Vec::with_capacity(512);
    let head_len = loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                if status == 200 {
                    break n;
                }
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::to_string)
                };
                let body = String::from_utf8_lossy(buf.get(n..).unwrap_or_default());
                return Err(GatewayRefusal::Denied {
                    status,
                    reason: header("x-rampart-deny-reason")
                        .unwrap_or_else(|| "gateway_refused".into()),
                    rule: header("x-rampart-deny-rule"),
                    text: body
                        .trim()
                        .trim_start_matches("egress denied: ")
                        .to_string(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_ANSWER => {}
            _ => return Err(unavailable(format!("{address}: not an HTTP answer"))),
        }
        let mut chunk = [0u8; 2048];
        let n = match tokio::time::timeout(deadline, tls.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                return Err(unavailable(format!(
                    "{address} closed the connection without an answer"
                )))
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(unavailable(format!("{address}: no answer in time"))),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let leftover = buf.get(head_len..).unwrap_or_default().to_vec();
    Ok((tls, leftover, address))
}
