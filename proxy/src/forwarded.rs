//! Client address and the X-Forwarded-* / Forwarded / X-Real-IP headers sent upstream.
//!
//! Only a peer inside `trusted_proxies` may tell us who the client is; for everyone else the
//! client is the TCP peer and whatever forwarding headers it sent are replaced.

use ipnet::IpNet;
use pingora_http::RequestHeader;
use std::net::IpAddr;

pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Compiled list of trusted proxy networks.
#[derive(Debug, Default, Clone)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(cidrs: &[String]) -> Self {
        TrustedProxies(cidrs.iter().filter_map(|c| parse_cidr(c)).collect())
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

/// Rewrites the forwarding headers on the upstream request.
pub fn apply(req: &mut RequestHeader, info: &ForwardInfo<'_>) {
    let xff = if info.trusted_peer {
        let prior: Vec<String> = req
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if prior.is_empty() {
            info.peer.to_string()
        } else {
            format!("{}, {}", prior.join(", "), info.peer)
        }
    } else {
        info.peer.to_string()
    };
    let prior_forwarded = if info.trusted_peer {
        req.headers
            .get("forwarded")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    } else {
        None
    };
    let ours = format!(
        "for={};proto={};host=\"{}\"",
        forwarded_node(info.peer),
        info.proto,
        info.host
    );
    let forwarded = match prior_forwarded {
        Some(p) => format!("{p}, {ours}"),
        None => ours,
    };
    let keep_proto = info.trusted_peer && req.headers.contains_key("x-forwarded-proto");
    let keep_host = info.trusted_peer && req.headers.contains_key("x-forwarded-host");
    for name in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        req.remove_header(name);
    }
    let _ = req.insert_header("x-forwarded-for", xff);
    let _ = req.insert_header("forwarded", forwarded);
    let _ = req.insert_header("x-real-ip", info.client.to_string());
    if !keep_proto {
        let _ = req.insert_header("x-forwarded-proto", info.proto);
    }
    if !keep_host {
        let _ = req.insert_header("x-forwarded-host", info.host);
    }
}

fn forwarded_node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_peer_headers_replaced() {
        let tp = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "1.2.3.4").unwrap();
        req.insert_header("x-real-ip", "1.2.3.4").unwrap();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let client = tp.client_ip(peer, &req);
        assert_eq!(client, peer);
        apply(
            &mut req,
            &ForwardInfo {
                peer,
                client,
                trusted_peer: false,
                proto: "https",
                host: "a.test",
            },
        );
        assert_eq!(req.headers.get("x-forwarded-for").unwrap(), "192.0.2.7");
        assert_eq!(req.headers.get("x-real-ip").unwrap(), "192.0.2.7");
        assert_eq!(
            req.headers.get("forwarded").unwrap(),
            "for=192.0.2.7;proto=https;host=\"a.test\""
        );
    }

    #[test]
    fn trusted_peer_chain_believed() {
        let tp = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "198.51.100.1, 10.1.1.1")
            .unwrap();
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            tp.client_ip(peer, &req),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        apply(
            &mut req,
            &ForwardInfo {
                peer,
                client: "198.51.100.1".parse().unwrap(),
                trusted_peer: true,
                proto: "https",
                host: "a",
            },
        );
        assert_eq!(
            req.headers.get("x-forwarded-for").unwrap(),
            "198.51.100.1, 10.1.1.1, 10.0.0.2"
        );
    }
}
