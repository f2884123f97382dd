//! The target: a loopback address, optionally TLS, and how to connect to it
//! from a chosen loopback source address.

use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

use crate::Error;

/// A byte stream to the target (plain TCP or TLS).
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoStream for T {}
pub type Conn = Box<dyn IoStream>;

#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Host header value.
    pub host: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Refuses anything but loopback.
pub fn check_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

impl Target {
    /// `http://127.0.0.1:8080` or `https://localhost:8443`. For https, `ca`
    /// is the PEM CA that signed the target's certificate; `server_name`
    /// overrides the SNI / Host name (default: the URL host).
    pub fn parse(url: &str, ca: Option<&Path>, server_name: Option<&str>) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (https, rest) = match url.split_once("://") {
            Some(("http", r)) => (false, r),
            Some(("https", r)) => (true, r),
            _ => return Err(bad("must start with http:// or https://")),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let default_port = if https { 443 } else { 80 };
        let (host, port) =
            split_host_port(authority, default_port).ok_or_else(|| bad("bad host:port"))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_matches(|c| c == '[' || c == ']')
                .parse()
                .map_err(|_| Error::NotLoopback(host.clone()))?
        };
        if !check_loopback(ip) {
            return Err(Error::NotLoopback(ip.to_string()));
        }
        let name = server_name.unwrap_or(&host).to_string();
        let tls = if https {
            Some(tls_connector(ca, &name)?)
        } else {
            None
        };
        let host_header = if port == default_port {
            name
        } else {
            format!("{name}:{port}")
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            host: host_header,
            tls,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects from `source` (a loopback address of the same family), or
    /// from the default address when `None`.
    pub async fn connect(&self, source: Option<IpAddr>) -> io::Result<Conn> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = source {
            socket.bind(SocketAddr::new(src, 0))?;
        }
        let tcp = socket.connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            Some((connector, name)) => Ok(Box::new(connector.connect(name.clone(), tcp).await?)),
            None => Ok(Box::new(tcp)),
        }
    }
}

/// Parses `--sources 127.0.0.2,127.0.0.3`; each must be loopback.
pub fn parse_sources(list: &str, target: &Target) -> Result<Vec<IpAddr>, Error> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let ip: IpAddr = item
            .parse()
            .map_err(|_| Error::SourceNotLoopback(item.to_string()))?;
        if !check_loopback(ip) {
            return Err(Error::SourceNotLoopback(item.to_string()));
        }
        if ip.is_ipv4() != target.addr.is_ipv4() {
            return Err(Error::Plan(format!(
                "source {ip} is not the same address family as the target"
            )));
        }
        out.push(ip);
    }
    Ok(out)
}

/// The default source for a target's family.
pub fn default_source(target: &Target) -> IpAddr {
    if target.addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    }
}

fn tls_connector(
    ca: Option<&Path>,
    name: &str,
) -> Result<(TlsConnector, ServerName<'static>), Error> {
    let ca = ca.ok_or_else(|| {
        Error::Tls("https targets need --ca FILE (the CA that signed the target)".into())
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let err = |e: String| Error::Tls(format!("{}: {e}", ca.display()));
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = ServerName::try_from(name.trim_matches(|c| c == '[' || c == ']').to_string())
        .map_err(|e| Error::Tls(format!("server name {name}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = authority[..=end].to_string();
        return match &authority[end + 1..] {
            "" => Some((host, default_port)),
            p => Some((host, p.strip_prefix(':')?.parse().ok()?)),
        };
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
    fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:9/x",
            "http://127.9.9.9",
        ] {
            assert!(Target::parse(ok, None, None).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:80",
            "http://example.com",
            "http://[2001:db8::1]:80",
            "http://0.0.0.0:80",
        ] {
            assert!(
                matches!(Target::parse(bad, None, None), Err(Error::NotLoopback(_))),
                "{bad}"
            );
        }
        assert!(Target::parse("ftp://127.0.0.1", None, None).is_err());
        assert!(matches!(
            Target::parse("https://127.0.0.1:1", None, None),
            Err(Error::Tls(_))
        ));
        let t = Target::parse("http://127.0.0.1:8080", None, None).unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
    }

    #[test]
    fn sources_must_be_loopback() {
        let t = Target::parse("http://127.0.0.1:8080", None, None).unwrap();
        assert_eq!(parse_sources("127.0.0.2, 127.0.0.3", &t).unwrap().len(), 2);
        assert!(parse_sources("192.168.1.1", &t).is_err());
        assert!(parse_sources("::1", &t).is_err());
    }
}
