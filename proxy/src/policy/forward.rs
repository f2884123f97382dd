//! Client address and the X-Forwarded-* / Forwarded / X-Real-IP headers sent upstream.
//!
//! Only a peer inside `trusted_proxies` may tell us who the client is; for everyone else the
//! client is the TCP peer and whatever forwarding headers it sent are replaced.

use super::header_edit::set;
use crate::config::Cidr;
use http::header::FORWARDED;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora_http::RequestHeader;
use rampart_ops::json_log::push_ip;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

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

/// The forwarding values of one connection, kept from one request to the next: for a peer that
/// is not a trusted proxy they depend only on the peer's address, the scheme and the request's
/// host, which a connection's requests share (the host nearly always). Held by the connection
/// (`HardenedStream`), so each of its requests clones three values (reference counts) instead
/// of formatting and checking them again.
#[derive(Debug, Default)]
pub struct ConnForward(Mutex<Option<Made>>);

/// The values made for one (peer, scheme, host).
#[derive(Debug)]
struct Made {
    peer: IpAddr,
    proto: &'static str,
    host: String,
    values: Values,
}

/// What [`apply`] sets: `None` removes what the client sent under the name.
#[derive(Debug, Clone)]
struct Values {
    xff: Option<HeaderValue>,
    forwarded: Option<HeaderValue>,
    real_ip: Option<HeaderValue>,
    host: Option<HeaderValue>,
}

/// Rewrites the forwarding headers on the upstream request's header map (see
/// [`header_edit`](super::header_edit)); room for them is the caller's to reserve. `conn`: the
/// connection's values kept from its earlier requests (`None` where the connection has no slot
/// for them, HTTP/2: made for this request).
///
/// Runs on every proxied request, so the values are written into one buffer each and the peer's
/// text is built once and shared (a `HeaderValue` clone is a reference count) rather than
/// formatted per header.
pub fn apply(headers: &mut HeaderMap, info: &ForwardInfo<'_>, conn: Option<&ConnForward>) {
    let keep_proto = info.trusted_peer && headers.contains_key(&X_FORWARDED_PROTO);
    let keep_host = info.trusted_peer && headers.contains_key(&X_FORWARDED_HOST);
    let values = match conn {
        // A trusted proxy's values extend what it sent: this request's own.
        Some(conn) if !info.trusted_peer && info.client == info.peer => {
            let mut made = conn.0.lock().unwrap_or_else(PoisonError::into_inner);
            match made.as_ref() {
                Some(m) if m.peer == info.peer && m.proto == info.proto && m.host == info.host => {
                    m.values.clone()
                }
                _ => {
                    let values = Values::new(headers, info);
                    *made = Some(Made {
                        peer: info.peer,
                        proto: info.proto,
                        host: info.host.to_owned(),
                        values: values.clone(),
                    });
                    values
                }
            }
        }
        _ => Values::new(headers, info),
    };
    // An insert replaces every value the client sent under the name.
    replace(headers, &X_FORWARDED_FOR, values.xff);
    replace(headers, &FORWARDED, values.forwarded);
    replace(headers, &X_REAL_IP, values.real_ip);
    if !keep_proto {
        set(
            headers,
            &X_FORWARDED_PROTO,
            HeaderValue::from_static(info.proto),
        );
    }
    if !keep_host {
        replace(headers, &X_FORWARDED_HOST, values.host);
    }
}

impl Values {
    /// The values for this request (a trusted peer's prior X-Forwarded-For and Forwarded
    /// values read from `headers`).
    fn new(headers: &HeaderMap, info: &ForwardInfo<'_>) -> Self {
        let mut peer_text = Vec::with_capacity(48);
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
            let mut s = Vec::with_capacity(48);
            push_ip(&mut s, info.client);
            HeaderValue::try_from(s).ok()
        };
        Values {
            xff,
            forwarded,
            real_ip,
            host: HeaderValue::from_str(info.host).ok(),
        }
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
fn prior_chain(headers: &HeaderMap, peer: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut any = false;
    for v in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(s) = v.to_str() {
            if any {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(s.as_bytes());
            any = true;
        }
    }
    if !any {
        return None;
    }
    out.extend_from_slice(b", ");
    out.extend_from_slice(peer);
    Some(out)
}

/// `for=<node>;proto=<proto>;host="<host>"`, after a trusted peer's own Forwarded value.
fn forwarded_value(headers: &HeaderMap, info: &ForwardInfo<'_>) -> Option<HeaderValue> {
    let prior = if info.trusted_peer {
        headers.get(&FORWARDED).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let mut s = Vec::with_capacity(
        prior.map_or(0, |p| p.len() + 2) + info.host.len() + info.proto.len() + 64,
    );
    if let Some(p) = prior {
        s.extend_from_slice(p.as_bytes());
        s.extend_from_slice(b", ");
    }
    s.extend_from_slice(b"for=");
    match info.peer {
        IpAddr::V4(_) => push_ip(&mut s, info.peer),
        IpAddr::V6(_) => {
            s.extend_from_slice(b"\"[");
            push_ip(&mut s, info.peer);
            s.extend_from_slice(b"]\"");
        }
    }
    s.extend_from_slice(b";proto=");
    s.extend_from_slice(info.proto.as_bytes());
    s.extend_from_slice(b";host=\"");
    s.extend_from_slice(info.host.as_bytes());
    s.push(b'"');
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
                None,
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
                None,
            )
        });
        assert_eq!(
            req.headers.get("x-forwarded-for").unwrap(),
            "198.51.100.1, 10.1.1.1, 10.0.0.2"
        );
    }

    /// The upstream request's headers after `apply` on a request carrying `sent`.
    fn forwarded(
        sent: &[(&str, &str)],
        info: &ForwardInfo<'_>,
        conn: Option<&ConnForward>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in sent {
            req.append_header(name.to_string(), *value).unwrap();
        }
        super::super::header_edit::request(&mut req, |h| apply(h, info, conn));
        req.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_connections_kept_values_are_each_requests_own() {
        let conn = ConnForward::default();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::9".parse().unwrap();
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let sent: &[(&str, &str)] = &[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x-forwarded-host", "evil.test"),
            ("x-forwarded-proto", "http"),
        ];
        // Each request through the connection's values gives exactly the headers made for it
        // alone, as the peer, scheme, host and trust change (a trusted proxy and a client other
        // than the peer are made per request), and again after a change back.
        let cases = [
            (v4, v4, false, "https", "a.test"),
            (v4, v4, false, "https", "a.test"),
            (v4, v4, false, "https", "b.test"),
            (v4, v4, false, "http", "b.test"),
            (v6, v6, false, "http", "b.test"),
            (proxy, v4, true, "https", "a.test"),
            (v6, v6, false, "http", "b.test"),
            (v4, v4, false, "https", "bad\u{7f}host"),
            (v4, v4, false, "https", "a.test"),
        ];
        for (peer, client, trusted_peer, proto, host) in cases {
            let info = ForwardInfo {
                peer,
                client,
                trusted_peer,
                proto,
                host,
            };
            for sent in [sent, &[]] {
                assert_eq!(
                    forwarded(sent, &info, Some(&conn)),
                    forwarded(sent, &info, None),
                    "{peer} {client} {trusted_peer} {proto} {host}"
                );
            }
        }
        let info = ForwardInfo {
            peer: v6,
            client: v6,
            trusted_peer: false,
            proto: "https",
            host: "a.test",
        };
        let headers = forwarded(sent, &info, Some(&conn));
        let value = |name: &str| {
            let all: Vec<_> = headers.iter().filter(|(k, _)| k == name).collect();
            assert_eq!(all.len(), 1, "{name}: {all:?}");
            String::from_utf8(all[0].1.clone()).unwrap()
        };
        assert_eq!(value("x-forwarded-for"), "2001:db8::9");
        assert_eq!(value("x-real-ip"), "2001:db8::9");
        assert_eq!(
            value("forwarded"),
            "for=\"[2001:db8::9]\";proto=https;host=\"a.test\""
        );
        assert_eq!(value("x-forwarded-host"), "a.test");
        assert_eq!(value("x-forwarded-proto"), "https");
    }
}
