//! Client address and the X-Forwarded-* / Forwarded / X-Real-IP headers sent upstream.
//!
//! Only a peer inside `trusted_proxies` may tell us who the client is; for everyone else the
//! client is the TCP peer and whatever forwarding headers it sent are replaced.

use super::header_edit::set;
use crate::access_log::push_ip;
use crate::config::Cidr;
use http::header::FORWARDED;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora_http::RequestHeader;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Compiled list of trusted proxy networks.
#[derive(Debug, Default, Clone)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(cidrs: &[Cidr]) -> Self {
        TrustedProxies(cidrs.iter().map(|c| c.0).collect())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the peer, or, behind trusted proxies, the right-most X-Forwarded-For
    /// entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, req: &RequestHeader) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for value in req.headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(s) = value.to_str() else { return client };
            for part in s.rsplit(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) if self.contains(ip) => client = ip,
                    Ok(ip) => return ip,
                    Err(_) => return client,
                }
            }
        }
        client
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// What the edge knows about the client side of a request.
pub struct ForwardInfo<'a> {
    pub peer: IpAddr,
    pub client: IpAddr,
    pub trusted_peer: bool,
    pub proto: &'static str,
    pub host: &'a str,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// How many headers [`apply`] may add.
pub const ADDED: usize = 5;

/// Rewrites the forwarding headers on the upstream request's header map (see
/// [`header_edit`](super::header_edit)); room for them is the caller's to reserve.
///
/// Runs on every proxied request, so the values are written into one buffer each and the peer's
/// text is built once and shared (a `HeaderValue` clone is a reference count) rather than
/// formatted per header.
pub fn apply(headers: &mut HeaderMap, info: &ForwardInfo<'_>) {
    let mut peer_text = String::with_capacity(48);
    push_ip(&mut peer_text, info.peer);
    let chain = if info.trusted_peer {
        prior_chain(headers, &peer_text)
    } else {
        None
    };
    let peer_value = HeaderValue::try_from(peer_text).ok();
    let xff = match chain {
        Some(text) => HeaderValue::try_from(text).ok(),
        None => peer_value.clone(),
    };
    let forwarded = forwarded_value(headers, info);
    let real_ip = if info.client == info.peer {
        peer_value
    } else {
        let mut s = String::with_capacity(48);
        push_ip(&mut s, info.client);
        HeaderValue::try_from(s).ok()
    };
    let keep_proto = info.trusted_peer && headers.contains_key(&X_FORWARDED_PROTO);
    let keep_host = info.trusted_peer && headers.contains_key(&X_FORWARDED_HOST);
    // An insert replaces every value the client sent under the name.
    replace(headers, &X_FORWARDED_FOR, xff);
    replace(headers, &FORWARDED, forwarded);
    replace(headers, &X_REAL_IP, real_ip);
    if !keep_proto {
        set(
            headers,
            &X_FORWARDED_PROTO,
            HeaderValue::from_static(info.proto),
        );
    }
    if !keep_host {
        replace(
            headers,
            &X_FORWARDED_HOST,
            HeaderValue::from_str(info.host).ok(),
        );
    }
}

/// Sets `name` to `value`, or removes what the client sent under it when there is no value.
fn replace(headers: &mut HeaderMap, name: &HeaderName, value: Option<HeaderValue>) {
    match value {
        Some(v) => set(headers, name, v),
        None => {
            headers.remove(name);
        }
    }
}

/// A trusted peer's X-Forwarded-For values (those that are text) joined with ", ", then the
/// peer; `None` when it sent none.
fn prior_chain(headers: &HeaderMap, peer: &str) -> Option<String> {
    let mut out = String::new();
    let mut any = false;
    for v in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(s) = v.to_str() {
            if any {
                out.push_str(", ");
            }
            out.push_str(s);
            any = true;
        }
    }
    if !any {
        return None;
    }
    out.push_str(", ");
    out.push_str(peer);
    Some(out)
}

/// `for=<node>;proto=<proto>;host="<host>"`, after a trusted peer's own Forwarded value.
fn forwarded_value(headers: &HeaderMap, info: &ForwardInfo<'_>) -> Option<HeaderValue> {
    let prior = if info.trusted_peer {
        headers.get(&FORWARDED).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let mut s = String::with_capacity(
        prior.map_or(0, |p| p.len() + 2) + info.host.len() + info.proto.len() + 64,
    );
    if let Some(p) = prior {
        s.push_str(p);
        s.push_str(", ");
    }
    s.push_str("for=");
    match info.peer {
        IpAddr::V4(_) => push_ip(&mut s, info.peer),
        IpAddr::V6(v6) => {
            // Writing into a String cannot fail.
            let _ = write!(s, "\"[{v6}]\"");
        }
    }
    s.push_str(";proto=");
    s.push_str(info.proto);
    s.push_str(";host=\"");
    s.push_str(info.host);
    s.push('"');
    HeaderValue::try_from(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_peer_headers_replaced() {
        let tp = TrustedProxies::new(&[Cidr::try_from("10.0.0.0/8".to_string()).unwrap()]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "1.2.3.4").unwrap();
        req.insert_header("x-real-ip", "1.2.3.4").unwrap();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let client = tp.client_ip(peer, &req);
        assert_eq!(client, peer);
        super::super::header_edit::request(&mut req, |h| {
            apply(
                h,
                &ForwardInfo {
                    peer,
                    client,
                    trusted_peer: false,
                    proto: "https",
                    host: "a.test",
                },
            )
        });
        assert_eq!(req.headers.get("x-forwarded-for").unwrap(), "192.0.2.7");
        assert_eq!(req.headers.get("x-real-ip").unwrap(), "192.0.2.7");
        assert_eq!(
            req.headers.get("forwarded").unwrap(),
            "for=192.0.2.7;proto=https;host=\"a.test\""
        );
    }

    #[test]
    fn trusted_peer_chain_believed() {
        let tp = TrustedProxies::new(&[Cidr::try_from("10.0.0.0/8".to_string()).unwrap()]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "198.51.100.1, 10.1.1.1")
            .unwrap();
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            tp.client_ip(peer, &req),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        super::super::header_edit::request(&mut req, |h| {
            apply(
                h,
                &ForwardInfo {
                    peer,
                    client: "198.51.100.1".parse().unwrap(),
                    trusted_peer: true,
                    proto: "https",
                    host: "a",
                },
            )
        });
        assert_eq!(
            req.headers.get("x-forwarded-for").unwrap(),
            "198.51.100.1, 10.1.1.1, 10.0.0.2"
        );
    }
}
