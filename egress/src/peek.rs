//! What the sidecar sees on an outbound connection, from the first bytes, without terminating
//! anything: the SNI of a TLS ClientHello (parsed by rustls' `Acceptor` on a copy of the peeked
//! bytes), the Host header of plain HTTP, or the target of an explicit-proxy request
//! (`CONNECT host:port`, absolute-form `GET http://host/...`), parsed by `httparse`.

use std::net::IpAddr;

/// Most bytes looked at before deciding (a ClientHello with a post-quantum key share is ~1.8 KB;
/// request heads of sane clients are far below this).
pub const MAX_PEEK: usize = 16 * 1024;

/// A destination name as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A DNS name, lower case, no trailing dot.
    Name(String),
    /// An IP literal (brackets removed for IPv6).
    Ip(IpAddr),
}

impl Target {
    /// Parses a host (no port) as given in a Host header, CONNECT authority or URI.
    pub fn parse(host: &str) -> Option<Target> {
        let h = host.trim();
        let unbracketed = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(Target::Ip(ip));
        }
        rampart_dns::normalize(h).ok().map(Target::Name)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The classified start of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A TLS ClientHello; `sni` is `None` when the client sent no server_name.
    Tls { sni: Option<String> },
    /// A plain HTTP/1.x request in origin form; `host` from the Host header (port stripped).
    Http {
        host: Option<Target>,
        host_port: Option<u16>,
        /// Length of the request head in bytes.
        head_len: usize,
    },
    /// `CONNECT host:port HTTP/1.1` (explicit proxy mode).
    Connect {
        target: Target,
        port: u16,
        head_len: usize,
    },
    /// An absolute-form request `GET http://host[:port]/path HTTP/1.1` (explicit proxy mode).
    Absolute {
        target: Target,
        port: u16,
        /// The Host header, when present (must agree with the target).
        host_header: Option<Target>,
        head_len: usize,
    },
}

/// Classification outcome for a prefix of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// Need more bytes.
    Partial,
    Seen(Seen),
    /// Neither a ClientHello nor an HTTP request head we accept; the reason says why.
    Unrecognized(String),
}

/// Classifies the first bytes of a connection.
pub fn classify(bytes: &[u8]) -> Peeked {
    match bytes.first() {
        None => Peeked::Partial,
        // TLS handshake record.
        Some(0x16) => tls(bytes),
        Some(b) if b.is_ascii_uppercase() => http(bytes),
        Some(b) => Peeked::Unrecognized(format!(
            "first byte 0x{b:02x} starts neither a TLS handshake nor an HTTP request"
        )),
    }
}

/// The SNI of a ClientHello, via rustls' `Acceptor` fed a copy of the bytes.
pub fn tls(bytes: &[u8]) -> Peeked {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd: &[u8] = bytes;
    while !rd.is_empty() {
        match acceptor.read_tls(&mut rd) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Peeked::Unrecognized(format!("TLS record: {e}")),
        }
    }
    match acceptor.accept() {
        Ok(None) if bytes.len() >= MAX_PEEK => {
            Peeked::Unrecognized(format!("no complete ClientHello within {MAX_PEEK} bytes"))
        }
        Ok(None) => Peeked::Partial,
        Ok(Some(accepted)) => Peeked::Seen(Seen::Tls {
            sni: accepted
                .client_hello()
                .server_name()
                .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
        }),
        Err((e, _alert)) => Peeked::Unrecognized(format!("TLS ClientHello refused: {e}")),
    }
}

/// An HTTP/1.x request head, via httparse.
pub fn http(bytes: &[u8]) -> Peeked {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_PEEK => {
            return Peeked::Unrecognized(format!("request head longer than {MAX_PEEK} bytes"))
        }
        Ok(httparse::Status::Partial) => return Peeked::Partial,
        Err(e) => return Peeked::Unrecognized(format!("malformed HTTP request: {e}")),
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Peeked::Unrecognized("HTTP request without method or target".into());
    };
    let hosts = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value);
    match request(method, path, hosts, head_len) {
        Ok(seen) => Peeked::Seen(seen),
        Err(why) => Peeked::Unrecognized(why),
    }
}

/// What one HTTP/1.x request says about its destination, from its method, request target and
/// Host header values (as parsed by httparse from the first bytes, or by hyper for every
/// request of a kept-alive connection). `Err` says why the request is not one we forward.
pub fn request<'a>(
    method: &str,
    path: &str,
    mut hosts: impl Iterator<Item = &'a [u8]>,
    head_len: usize,
) -> Result<Seen, String> {
    let host_raw = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host header".into());
    }
    let host_hdr = match host_raw {
        None => None,
        Some(v) => match std::str::from_utf8(v)
            .ok()
            .and_then(|s| split_authority(s, None))
        {
            Some(x) => Some(x),
            None => return Err("malformed Host header".into()),
        },
    };
    if method == "CONNECT" {
        // authority-form: host:port, port required.
        return match split_authority(path, None) {
            Some((target, Some(port))) => Ok(Seen::Connect {
                target,
                port,
                head_len,
            }),
            _ => Err(format!("CONNECT target {path:?} is not host:port")),
        };
    }
    if path.starts_with('/') || path == "*" {
        let (host, host_port) = match host_hdr {
            Some((h, p)) => (Some(h), p),
            None => (None, None),
        };
        return Ok(Seen::Http {
            host,
            host_port,
            head_len,
        });
    }
    // absolute-form
    let Ok(uri) = path.parse::<http::Uri>() else {
        return Err(format!("request target {path:?} is not a URI"));
    };
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some(other) => {
            return Err(format!(
                "absolute-form scheme {other:?}: only http:// is proxied in the clear (use CONNECT for https)"
            ))
        }
        None => return Err(format!("request target {path:?} has no scheme")),
    };
    let Some(auth) = uri.authority() else {
        return Err(format!("request target {path:?} has no host"));
    };
    if auth.as_str().contains('@') {
        return Err("userinfo in the request target".into());
    }
    let Some(target) = Target::parse(auth.host()) else {
        return Err(format!("bad host in {path:?}"));
    };
    Ok(Seen::Absolute {
        target,
        port: auth.port_u16().unwrap_or(default_port),
        host_header: host_hdr.map(|(h, _)| h),
        head_len,
    })
}

/// Parses `HOST:PORT` (`[v6]:port` for IPv6), as given to `policy explain --egress`.
pub fn parse_host_port(s: &str) -> Option<(Target, u16)> {
    match split_authority(s, None)? {
        (t, Some(p)) => Some((t, p)),
        _ => None,
    }
}

/// Splits "host", "host:port", "[v6]:port" into a target and optional port.
fn split_authority(s: &str, _default: Option<u16>) -> Option<(Target, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() || s.contains(['/', '@', ' ']) {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')?
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)?,
            ),
        };
        return Some((Target::Ip(ip), port));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some((Target::Ip(IpAddr::V6(s.parse().ok()?)), None));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => {
            let port = p.parse::<u16>().ok().filter(|p| *p != 0)?;
            Some((Target::parse(h)?, Some(port)))
        }
        None => Some((Target::parse(s)?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(b: &[u8]) -> Seen {
        match classify(b) {
            Peeked::Seen(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_forms() {
        assert_eq!(
            seen(b"GET / HTTP/1.1\r\nHost: Www.Example.com:8080\r\n\r\n"),
            Seen::Http {
                host: Some(Target::Name("www.example.com".into())),
                host_port: Some(8080),
                head_len: 46
            }
        );
        assert_eq!(
            seen(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"),
            Seen::Connect {
                target: Target::Name("api.example.com".into()),
                port: 443,
                head_len: 67
            }
        );
        assert!(matches!(
            seen(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n"),
            Seen::Connect {
                target: Target::Ip(_),
                port: 443,
                ..
            }
        ));
        assert!(matches!(
            seen(b"GET http://10.0.0.1:8080/x HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n"),
            Seen::Absolute {
                target: Target::Ip(_),
                port: 8080,
                ..
            }
        ));
        assert!(matches!(
            seen(b"GET http://a.example.com/x HTTP/1.1\r\n\r\n"),
            Seen::Absolute {
                port: 80,
                host_header: None,
                ..
            }
        ));
        assert_eq!(classify(b"GET / HTTP/1.1\r\nHost: a"), Peeked::Partial);
        for bad in [
            &b"CONNECT api.example.com HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET https://a.example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://u@a.example.com/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
            b"\x00\x01",
        ] {
            assert!(
                matches!(classify(bad), Peeked::Unrecognized(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn truncated_and_garbage_tls() {
        assert!(matches!(classify(&[0x16, 3, 1]), Peeked::Partial));
        assert!(matches!(
            classify(&[0x16, 3, 1, 0, 5, 9, 9, 9, 9, 9]),
            Peeked::Unrecognized(_)
        ));
    }
}
