//! A resolver that never answers is "resolver_unreachable", never "bogus" (hickory reports
//! network failures while fetching DNSSEC records as Bogus: hickory #3932/#3964).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use rampart_dns::{DnsDenial, DnssecMode, Resolver, ResolverConfig};

#[tokio::test]
async fn silent_and_closed_upstreams_are_unreachable() {
    // A black hole: a bound UDP socket and a TCP listener that nobody reads or accepts.
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = udp.local_addr().unwrap().port();
    let _tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
    // A closed port: nothing bound (ICMP port unreachable / connection refused).
    let closed = {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        s.local_addr().unwrap()
    };
    for upstream in [SocketAddr::from((Ipv4Addr::LOCALHOST, port)), closed] {
        let mut cfg = ResolverConfig::new(vec![upstream]);
        cfg.timeout = Duration::from_millis(400);
        cfg.attempts = 1;
        let r = Resolver::new(cfg).unwrap();
        let e = tokio::time::timeout(
            Duration::from_secs(20),
            r.resolve("www.example.com", DnssecMode::IfSigned, &[]),
        )
        .await
        .expect("lookup did not give up within 20 s")
        .unwrap_err();
        assert!(
            matches!(e, DnsDenial::ResolverUnreachable { .. }),
            "{upstream}: {e}"
        );
        assert_eq!(e.reason(), "resolver_unreachable");
    }
    drop(udp);
}

#[test]
fn bad_configs_are_refused() {
    assert!(Resolver::new(ResolverConfig::new(vec![])).is_err());
    let mut c = ResolverConfig::new(vec!["127.0.0.1:53".parse().unwrap()]);
    c.cache_floor = Duration::from_secs(10);
    c.cache_ceiling = Duration::from_secs(1);
    assert!(Resolver::new(c).is_err());
    let mut c = ResolverConfig::new(vec!["127.0.0.1:53".parse().unwrap()]);
    c.trust_anchor = rampart_dns::TrustAnchor::File("/nonexistent/anchor".into());
    let e = Resolver::new(c).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/anchor"), "{e}");
}
