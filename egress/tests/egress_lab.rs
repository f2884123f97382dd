//! The egress path end to end on loopback: real ClientHellos (rustls), real sockets, and real
//! DNS (Knot serving signed, bogus and unsigned zones behind a validating Unbound, started by
//! `rampart_dns::testlab`). Every case asserts the decision's reason code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rampart_dns::testlab::DnsLab;
use rampart_dns::{AddressClass, DnsDenial, Resolver};
use rampart_egress::{Connected, Denied, DialOptions, Egress, EgressPolicy, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LO10: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);

/// A ClientHello as rustls sends it; an IP server name means no SNI.
fn client_hello(server: &str) -> Vec<u8> {
    rampart_egress::testkit::client_hello(server).unwrap()
}

/// An upstream on 127.0.0.10 that reports each connection's peer and first bytes.
async fn upstream() -> (u16, tokio::sync::mpsc::Receiver<(SocketAddr, Vec<u8>)>) {
    let l = TcpListener::bind((LO10, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                    .await
                    .unwrap_or(Ok(0))
                    .unwrap_or(0);
                buf.truncate(n);
                let _ = tx.send((peer, buf)).await;
            });
        }
    });
    (port, rx)
}

fn policy(port: u16, extra: &str) -> EgressPolicy {
    // (name, host, protocol, dnssec, internal network)
    let rules = [
        ("www", "www.signed.test", "tls", None, "127.0.0.10/32"),
        (
            "wild",
            "*.signed.test",
            "tls",
            Some("required"),
            "127.0.0.10/32",
        ),
        ("bogus", "www.bogus.test", "tls", None, "127.0.0.0/8"),
        (
            "plain-if-signed",
            "www.plain.test",
            "tls",
            None,
            "127.0.0.10/32",
        ),
        (
            "plain-http",
            "www.plain.test",
            "http",
            Some("required"),
            "127.0.0.10/32",
        ),
    ];
    let mut text = String::new();
    for (name, host, protocol, dnssec, internal) in rules {
        let dnssec = dnssec
            .map(|d| format!("dnssec = \"{d}\"\n"))
            .unwrap_or_default();
        text += &format!(
            "[[hosts]]\nname = \"{name}\"\nhost = \"{host}\"\nports = [{port}]\nprotocol = \"{protocol}\"\n{dnssec}internal = [\"{internal}\"]\n\n"
        );
    }
    text += extra;
    EgressPolicy::from_toml(&text, "egress_lab.toml").unwrap()
}

struct Fixture {
    egress: Egress,
    port: u16,
}

fn fixture(lab: &DnsLab, port: u16, extra: &str, options: DialOptions) -> Fixture {
    Fixture {
        egress: Egress {
            policy: Arc::new(policy(port, extra)),
            resolver: Arc::new(Resolver::new(lab.resolver_config()).unwrap()),
            options,
        },
        port,
    }
}

/// Runs `Egress::accept` on the server side of a loopback pair while the client sends `first`
/// (and, after a `200`, `then`). Returns the outcome and what the client received.
async fn run(
    egress: &Egress,
    mode: Mode,
    first: Vec<u8>,
    then: Option<Vec<u8>>,
) -> (Result<Connected, Denied>, Vec<u8>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&first).await.unwrap();
        let mut got = Vec::new();
        if let Some(then) = then {
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).await.unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            c.write_all(&then).await.unwrap_or(());
        }
        // Hold the connection open until the server side is done.
        let mut rest = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(10), c.read(&mut rest)).await;
        got
    });
    let (mut server, _) = l.accept().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), egress.accept(&mut server, mode))
        .await
        .unwrap_or_else(|_| panic!("egress decision did not finish within 30 s"));
    drop(server);
    let got = tokio::time::timeout(Duration::from_secs(15), client)
        .await
        .unwrap()
        .unwrap();
    (out, got)
}

fn transparent(ip: Ipv4Addr, port: u16) -> Mode {
    Mode::Transparent {
        original_dst: SocketAddr::from((ip, port)),
    }
}

/// The refusal of a transparent connection that sends a ClientHello for `sni`.
async fn refused(egress: &Egress, dst: Mode, sni: &str) -> Denied {
    let (out, _) = run(egress, dst, client_hello(sni), None).await;
    denied(out)
}

fn denied(r: Result<Connected, Denied>) -> Denied {
    match r {
        Ok(c) => panic!("expected a denial, got {} to {}", c.decision, c.peer),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_cases() {
    let Some(mut lab) = DnsLab::start_or_skip() else {
        return;
    };
    let (port, mut seen_upstream) = upstream().await;
    let fx = fixture(&lab, port, "", DialOptions::default());
    // The app "dialled" some address; transparently redirected, the SNI decides.
    let spoofed_dst = transparent(Ipv4Addr::new(203, 0, 113, 50), fx.port);

    // Allowed name: resolved by us (secure), the vetted address dialled, ClientHello forwarded.
    let hello = client_hello("www.signed.test");
    let (out, _) = run(&fx.egress, spoofed_dst, hello.clone(), None).await;
    let mut c = out.unwrap();
    assert_eq!(c.decision.rule, "www");
    assert_eq!(c.peer, SocketAddr::from((LO10, port)));
    let resolved = c.resolved.clone().unwrap();
    assert_eq!(resolved.security, rampart_dns::Security::Secure);
    assert_eq!(c.prefix, hello);
    c.upstream.write_all(&c.prefix).await.unwrap();
    let (peer, bytes) = tokio::time::timeout(Duration::from_secs(5), seen_upstream.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST), "default source");
    assert_eq!(bytes, hello, "upstream got the client's ClientHello");
    drop(c);

    // Unlisted name.
    let (out, _) = run(
        &fx.egress,
        spoofed_dst,
        client_hello("evil.example.net"),
        None,
    )
    .await;
    assert_eq!(denied(out).reason(), "no_rule");

    // Wildcard: one or more labels below, never the apex (which does resolve).
    for name in ["api.signed.test", "deep.api.signed.test"] {
        let (out, _) = run(&fx.egress, spoofed_dst, client_hello(name), None).await;
        assert_eq!(out.unwrap().decision.rule, "wild", "{name}");
    }
    let e = refused(&fx.egress, spoofed_dst, "signed.test").await;
    assert_eq!(e.reason(), "no_rule");
    assert!(e.to_string().contains("never signed.test itself"), "{e}");

    // Allowed names resolving to loopback / metadata / a private address: refused, rule named.
    for (name, class) in [
        ("lo.signed.test", AddressClass::Loopback),
        ("meta.signed.test", AddressClass::CloudMetadata),
        ("meta6.signed.test", AddressClass::CloudMetadata),
        ("private.signed.test", AddressClass::Private),
    ] {
        let (out, _) = run(&fx.egress, spoofed_dst, client_hello(name), None).await;
        match denied(out) {
            Denied::Dns {
                rule,
                source: DnsDenial::AddressRefused { refusal, .. },
            } => {
                assert_eq!((rule.as_str(), refusal.class), ("wild", class), "{name}");
            }
            other => panic!("{name}: {other}"),
        }
    }

    // Missing SNI (rustls sends none for an IP server name): denied without an address rule…
    let no_sni = client_hello("127.0.0.10");
    let (out, _) = run(&fx.egress, transparent(LO10, port), no_sni.clone(), None).await;
    assert_eq!(denied(out).reason(), "missing_sni");
    // …and allowed to exactly the named address with one.
    let with_addr = fixture(
        &lab,
        port,
        &format!(
            "[[addresses]]\nname = \"lo10\"\nnetworks = [\"127.0.0.10/32\"]\nports = [{port}]\nprotocol = \"tls\"\n"
        ),
        DialOptions::default(),
    );
    let (out, _) = run(&with_addr.egress, transparent(LO10, port), no_sni, None).await;
    let c = out.unwrap();
    assert_eq!(
        (c.decision.rule.as_str(), c.peer),
        ("lo10", SocketAddr::from((LO10, port)))
    );
    drop(c);

    // Explicit proxy: CONNECT to an allowed name with the same SNI inside passes.
    let connect =
        format!("CONNECT www.signed.test:{port} HTTP/1.1\r\nHost: www.signed.test:{port}\r\n\r\n");
    let (out, got) = run(
        &fx.egress,
        Mode::ExplicitProxy,
        connect.clone().into_bytes(),
        Some(client_hello("www.signed.test")),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{got:?}"
    );
    let c = out.unwrap();
    assert_eq!(
        (c.decision.rule.as_str(), c.peer),
        ("www", SocketAddr::from((LO10, port)))
    );
    drop(c);
    // SNI ≠ CONNECT target.
    let (out, _) = run(
        &fx.egress,
        Mode::ExplicitProxy,
        connect.into_bytes(),
        Some(client_hello("api.signed.test")),
    )
    .await;
    assert_eq!(denied(out).reason(), "connect_sni_mismatch");
    // IP literal that no rule names, whatever the SNI: refused before any 200.
    let (out, _) = run(
        &fx.egress,
        Mode::ExplicitProxy,
        format!("CONNECT 127.0.0.10:{port} HTTP/1.1\r\n\r\n").into_bytes(),
        None,
    )
    .await;
    let e = denied(out);
    assert_eq!(e.reason(), "raw_ip_not_named");
    assert!(String::from_utf8_lossy(&e.http_response()).contains("raw_ip_not_named"));

    // Unsigned zone: allowed if-signed (TLS rule), denied where the rule requires DNSSEC
    // (the plain-HTTP rule, Host header).
    let (out, _) = run(
        &fx.egress,
        spoofed_dst,
        client_hello("www.plain.test"),
        None,
    )
    .await;
    let c = out.unwrap();
    assert_eq!(c.decision.rule, "plain-if-signed");
    assert_eq!(
        c.resolved.as_ref().unwrap().security,
        rampart_dns::Security::Insecure
    );
    drop(c);
    let get = b"GET / HTTP/1.1\r\nHost: www.plain.test\r\n\r\n".to_vec();
    let (out, _) = run(&fx.egress, spoofed_dst, get, None).await;
    let e = denied(out);
    assert_eq!(
        (e.reason(), e.rule()),
        ("dnssec_unsigned", Some("plain-http")),
        "{e}"
    );

    // Bogus zone. (After the unsigned zone: the lab serves every zone from one Knot address,
    // and Unbound's retries against it after a validation failure can briefly delay other
    // lookups through it.)
    let e = refused(&fx.egress, spoofed_dst, "www.bogus.test").await;
    assert_eq!(
        (e.reason(), e.rule()),
        ("dnssec_bogus", Some("bogus")),
        "{e}"
    );

    // Resolver down: a fresh resolver (nothing cached) cannot reach it.
    lab.stop_resolver();
    let down = fixture(&lab, port, "", DialOptions::default());
    let e = refused(&down.egress, spoofed_dst, "www.signed.test").await;
    assert_eq!(
        (e.reason(), e.rule()),
        ("resolver_unreachable", Some("www")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_cannot_move_a_pinned_connection() {
    let Some(lab) = DnsLab::start_or_skip() else {
        return;
    };
    let (port, mut seen_upstream) = upstream().await;
    let fx = fixture(&lab, port, "", DialOptions::default());
    let dst = transparent(Ipv4Addr::new(203, 0, 113, 50), port);

    // First lookup: rebind.signed.test → 127.0.0.10, vetted and pinned.
    let (out, _) = run(&fx.egress, dst, client_hello("rebind.signed.test"), None).await;
    let first = out.unwrap();
    let pinned = first.resolved.clone().unwrap();
    assert_eq!(pinned.addrs, vec![IpAddr::V4(LO10)]);
    drop(first);
    let _ = seen_upstream.recv().await;

    // The name now answers 127.0.0.1.
    lab.set_a("rebind", Ipv4Addr::LOCALHOST, 1).unwrap();

    // The pinned answer still dials exactly what was vetted: no second lookup.
    let (mut s, peer) = rampart_egress::dial_vetted(&pinned, port, &DialOptions::default())
        .await
        .unwrap();
    assert_eq!(peer, SocketAddr::from((LO10, port)));
    s.write_all(b"pinned").await.unwrap();
    let (_, bytes) = tokio::time::timeout(Duration::from_secs(5), seen_upstream.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, b"pinned");

    // A new connection, once the 1 s TTL has passed, sees the new answer and refuses it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (out, _) = run(&fx.egress, dst, client_hello("rebind.signed.test"), None).await;
        match out {
            Err(Denied::Dns {
                source: DnsDenial::AddressRefused { refusal, .. },
                ..
            }) => {
                assert_eq!(refusal.class, AddressClass::Loopback);
                break;
            }
            Ok(c) => assert_eq!(c.peer.ip(), IpAddr::V4(LO10), "only the vetted address"),
            Err(e) => panic!("{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rebinding never observed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_dials_from_the_fixed_source_address() {
    let Some(lab) = DnsLab::start_or_skip() else {
        return;
    };
    let (port, mut seen_upstream) = upstream().await;
    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let fx = fixture(
        &lab,
        port,
        "",
        DialOptions {
            bind: Some(src),
            ..DialOptions::default()
        },
    );
    let dst = transparent(Ipv4Addr::new(203, 0, 113, 50), port);
    for _ in 0..3 {
        let (out, _) = run(&fx.egress, dst, client_hello("www.signed.test"), None).await;
        let mut c = out.unwrap();
        c.upstream.write_all(&c.prefix).await.unwrap();
        let (peer, _) = tokio::time::timeout(Duration::from_secs(5), seen_upstream.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            peer.ip(),
            src,
            "the upstream sees only the gateway's address"
        );
    }
}
