//! The sidecar's egress path end to end, through the real binary, against the DNSSEC lab
//! (Knot + validating Unbound on loopback, zones made by rampart_dns::testlab): the app uses
//! the sidecar as its explicit proxy (HTTPS_PROXY); every case is checked by what the client
//! gets, what the destination saw, and the reason in the sidecar's log. Skips with a message
//! when the lab's tools are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod egress_support;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use egress_support::*;
use rampart_dns::testlab::DnsLab;
use serde_json::Value;
use support::{assert_contains_all, Sidecar};

const LO10: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

/// `port`: the TLS destination; `web`: the HTTP origin; `port2`: nothing listens.
fn policy(port: u16, web: u16, port2: u16, www_allowed: bool) -> String {
    let www = if www_allowed {
        format!(
            "[[egress.hosts]]\nname = \"signed-www\"\nhost = \"www.signed.test\"\nports = [{port}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.10/32\"]\n"
        )
    } else {
        String::new()
    };
    format!(
        "[egress]\ndnssec = \"if-signed\"\n{www}\
         [[egress.hosts]]\nname = \"signed-http\"\nhost = \"api.signed.test\"\nports = [{web}]\nprotocol = \"http\"\ninternal = [\"127.0.0.10/32\"]\n\
         [[egress.hosts]]\nname = \"apex-http\"\nhost = \"signed.test\"\nports = [{web}]\nprotocol = \"http\"\ninternal = [\"127.0.0.10/32\"]\n\
         [[egress.hosts]]\nname = \"bogus\"\nhost = \"www.bogus.test\"\nports = [{port}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.0/8\"]\n\
         [[egress.hosts]]\nname = \"plain-if-signed\"\nhost = \"www.plain.test\"\nports = [{port}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.10/32\"]\n\
         [[egress.hosts]]\nname = \"plain-required\"\nhost = \"www.plain.test\"\nports = [{port2}]\nprotocol = \"tls\"\ndnssec = \"required\"\ninternal = [\"127.0.0.10/32\"]\n\
         [[egress.hosts]]\nname = \"loopback-name\"\nhost = \"lo.signed.test\"\nports = [{port}]\nprotocol = \"tls\"\n\
         [[egress.hosts]]\nname = \"metadata-name\"\nhost = \"meta.signed.test\"\nports = [{port}]\nprotocol = \"tls\"\n\
         [[egress.hosts]]\nname = \"asked-last\"\nhost = \"private.signed.test\"\nports = [{port}]\nprotocol = \"tls\"\n"
    )
}

/// The egress line of the sidecar's log matching `pred`.
fn egress_line(sc: &mut Sidecar, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    sc.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && pred(v),
        what,
    )
}

fn denied_line(sc: &mut Sidecar, reason: &str, rule: Option<&str>) -> Value {
    let line = egress_line(sc, &format!("egress denial {reason}"), |v| {
        v["rampart.reason.kind"] == reason
    });
    assert_eq!(line["rampart.decision"], "deny", "{line}");
    assert_eq!(line["rampart.direction"], "egress", "{line}");
    assert!(
        line["rampart.reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{line}"
    );
    if let Some(rule) = rule {
        assert_eq!(line["rampart.rule"], rule, "{line}");
    }
    line
}

/// A CONNECT refused before anything was dialled: a 403 naming `reason`, and the log line.
fn refused_before_dial(sc: &mut Sidecar, got: Proxied, reason: &str) {
    assert_eq!(got.status(), 403, "{got:?}");
    assert_eq!(got.header("x-rampart-deny-reason").as_deref(), Some(reason));
    denied_line(sc, reason, None);
}

#[test]
fn egress_through_the_sidecar_against_the_dnssec_lab() {
    let mut lab = match DnsLab::start() {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("SKIPPED egress_through_the_sidecar_against_the_dnssec_lab: {e}");
            return;
        }
    };
    let dest = Recorder::start(LO10);
    let port = dest.addr.port();
    let web = Recorder::start_http(LO10);
    let web_port = web.addr.port();
    let port2 = port.checked_add(1).unwrap_or(port - 1);
    let mesh = MeshDir::new(
        &[("frontend", FRONTEND)],
        &format!("[[service]]\nname = \"frontend\"\nidentity = \"{FRONTEND}\"\nendpoints = [{{ port = 80, address = \"127.0.0.1:80\" }}]\n"),
    );
    let policy_path = mesh.write("frontend-policy.toml", &policy(port, web_port, port2, true));
    let config = mesh.config(
        "frontend",
        "frontend",
        &format!(
            "[egress]\n{}",
            lab_resolver(
                &lab,
                "proxy_listen = \"127.0.0.1:0\"\ncache_floor_secs = 0\n"
            )
        ),
    );
    let mut sc = Sidecar::start(&config);
    let proxy = sc.addr("egress:proxy");

    // Allowed name: resolved by our resolver (secure), the vetted address dialled, the
    // ClientHello delivered as sent.
    let hello = carried_tls_via(proxy, "www.signed.test", port);
    assert!(dest.seen().iter().any(|(_, b)| *b == hello));
    let line = egress_line(&mut sc, "allowed egress", |v| {
        v["rampart.rule"] == "signed-www" && v["rampart.decision"] == "allow"
    });
    assert_eq!(line["rampart.dns.security"], "secure", "{line}");
    assert_eq!(line["network.peer.address"], "127.0.0.10", "{line}");
    assert_eq!(line["server.address"], "www.signed.test", "{line}");
    assert_eq!(line["rampart.egress.mode"], "proxy", "{line}");

    // Plain HTTP, request by request on one kept-alive connection (absolute form): an allowed
    // name; an unlisted one → 403 with the reason, the origin never sees it; another allowed
    // name → a decision and a connection of its own.
    let get = |host: &str, path: &str| {
        format!("GET http://{host}:{web_port}{path} HTTP/1.1\r\nHost: {host}:{web_port}\r\n\r\n")
    };
    let mut app = KeepAlive::connect(proxy);
    let (status, head, body) = app.exchange(&get("api.signed.test", "/v1"));
    assert_eq!((status, body.as_slice()), (200, &b"pong"[..]), "{head}");
    let (status, head, _) = app.exchange(&get("deep.api.signed.test", "/unlisted"));
    assert_eq!(status, 403, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-rampart-deny-reason: no_rule"),
        "{head}"
    );
    let line = egress_line(&mut sc, "the second request's denial", |v| {
        v["url.path"] == "/unlisted"
    });
    assert_eq!(line["rampart.reason.kind"], "no_rule", "{line}");
    assert_eq!(line["rampart.decision"], "deny", "{line}");
    let (status, head, _) = app.exchange(&get("signed.test", "/apex"));
    assert_eq!(status, 200, "{head}");
    egress_line(&mut sc, "the third request's own decision", |v| {
        v["rampart.rule"] == "apex-http" && v["rampart.decision"] == "allow"
    });
    // The same inside a CONNECT tunnel, by Host header: every request must name the target.
    let mut tunnel = KeepAlive::connect(proxy);
    let target = format!("api.signed.test:{web_port}");
    let (status, head, _) = tunnel.exchange(&format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
    ));
    assert_eq!(status, 200, "{head}");
    let origin =
        |host: &str, path: &str| format!("GET {path} HTTP/1.1\r\nHost: {host}:{web_port}\r\n\r\n");
    let (status, head, _) = tunnel.exchange(&origin("api.signed.test", "/in-tunnel"));
    assert_eq!(status, 200, "{head}");
    let (status, head, _) = tunnel.exchange(&origin("signed.test", "/other-host"));
    assert_eq!(status, 403, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-rampart-deny-reason: host_mismatch"),
        "{head}"
    );
    let heads: Vec<(SocketAddr, String)> = web
        .seen()
        .into_iter()
        .map(|(peer, h)| (peer, String::from_utf8_lossy(&h).into_owned()))
        .collect();
    let first = |line: &str| {
        heads
            .iter()
            .find(|(_, h)| h.starts_with(line))
            .unwrap_or_else(|| panic!("the origin never saw {line}: {heads:?}"))
            .0
    };
    // Origin form towards the origin; the denied requests never arrived; each allowed name
    // had a connection of its own.
    assert!(
        heads
            .iter()
            .all(|(_, h)| !h.contains("/unlisted") && !h.contains("/other-host")),
        "{heads:?}"
    );
    assert_ne!(first("GET /v1 HTTP/1.1"), first("GET /apex HTTP/1.1"));
    first("GET /in-tunnel HTTP/1.1");

    // Unlisted name: 403 before anything is dialled, with the reason.
    let before = dest.seen().len();
    refused_before_dial(
        &mut sc,
        connect_via(proxy, &format!("deep.api.signed.test:{port}"), &hello),
        "no_rule",
    );

    // IP literal, even carrying an allowed SNI inside.
    refused_before_dial(
        &mut sc,
        connect_via(proxy, &format!("127.0.0.10:{port}"), &hello),
        "raw_ip_not_named",
    );

    // SNI spoofing: CONNECT to an allowed name, a ClientHello for another inside.
    let got = connect_via(
        proxy,
        &format!("www.signed.test:{port}"),
        &client_hello("evil.example"),
    );
    assert_eq!(
        got.status(),
        200,
        "the CONNECT target alone is allowed: {got:?}"
    );
    assert!(got.rest.is_empty(), "{got:?}");
    let line = denied_line(&mut sc, "connect_sni_mismatch", None);
    assert!(
        line["rampart.reason"]
            .as_str()
            .unwrap()
            .contains("evil.example"),
        "{line}"
    );

    // Bogus zone: signatures that do not validate.
    refused_tls_via(proxy, "www.bogus.test", port);
    denied_line(&mut sc, "dnssec_bogus", Some("bogus"));

    // Unsigned zone: allowed under if-signed, denied under required.
    let got = tls_via(proxy, "www.plain.test", port);
    assert_eq!(got.rest, b"pong", "{got:?}");
    let line = egress_line(&mut sc, "unsigned allowed", |v| {
        v["client.port"] == got.local_port
    });
    assert_eq!(line["rampart.rule"], "plain-if-signed", "{line}");
    assert_eq!(line["rampart.decision"], "allow", "{line}");
    assert_eq!(line["rampart.dns.security"], "insecure", "{line}");
    refused_tls_via(proxy, "www.plain.test", port2);
    denied_line(&mut sc, "dnssec_unsigned", Some("plain-required"));

    // An allowed name resolving to loopback or the metadata address is refused (vetting).
    for (name, rule) in [
        ("lo.signed.test", "loopback-name"),
        ("meta.signed.test", "metadata-name"),
    ] {
        refused_tls_via(proxy, name, port);
        let line = egress_line(&mut sc, &format!("{name} refused"), |v| {
            v["rampart.reason.kind"] == "address_refused" && v["rampart.rule"] == rule
        });
        assert_eq!(line["rampart.decision"], "deny");
    }
    // Nothing denied ever reached the destination.
    let after: Vec<Vec<u8>> = dest.seen()[before..]
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        after,
        vec![client_hello_for_plain(&dest)],
        "only the unsigned if-signed case connected"
    );

    // Metrics by reason and rule.
    let metrics = admin_get(sc.addr("admin"), "/metrics");
    assert_contains_all(
        &metrics,
        &[
            "direction=\"egress\",mode=\"enforce\",reason=\"dnssec_bogus\",rule=\"bogus\"",
            "direction=\"egress\",mode=\"enforce\",reason=\"no_rule\",rule=\"\"",
            "direction=\"egress\",mode=\"enforce\",reason=\"dnssec_unsigned\",rule=\"plain-required\"",
            "rampart_sidecar_connections_total{direction=\"egress\",result=\"allow\"} 5",
        ],
    );

    // Hot reload: the rule goes away with the rest of the policy; new connections are denied.
    std::fs::write(&policy_path, policy(port, web_port, port2, false)).unwrap();
    sc.hup();
    sc.wait_for(
        |v| v["event.name"] == "rampart.sidecar.reload" && v["rampart.reload.result"] == "ok",
        "reload",
    );
    let got = connect_via(proxy, &format!("www.signed.test:{port}"), &hello);
    assert_eq!(got.status(), 403, "{got:?}");
    let line = egress_line(&mut sc, "denied after reload", |v| {
        v["rampart.reason.kind"] == "no_rule"
            && v["rampart.reason"]
                .as_str()
                .is_some_and(|r| r.contains("www.signed.test"))
    });
    assert_ne!(
        line["rampart.policy.version"],
        sc.ready["rampart.policy.version"]
    );
    // A bad egress section is refused at reload, naming file, line and field; the running
    // policy stays.
    std::fs::write(
        &policy_path,
        "[egress]\n[[egress.hosts]]\nhost = \"*.*.example\"\nports = [443]\nprotocol = \"tls\"\n",
    )
    .unwrap();
    sc.hup();
    let line = sc.wait_for(
        |v| v["event.name"] == "rampart.sidecar.reload" && v["rampart.reload.result"] == "error",
        "refused reload",
    );
    let msg = line["error.message"].as_str().unwrap();
    assert!(
        msg.contains("frontend-policy.toml:3:") && msg.contains("egress.hosts[0].host"),
        "{msg}"
    );
    let (status, head, _) = KeepAlive::connect(proxy).exchange(&get("api.signed.test", "/v2"));
    assert_eq!(status, 200, "the running policy stays: {head}");

    // Resolver down: told apart from a bogus answer in the log and the metrics.
    lab.stop_resolver();
    refused_tls_via(proxy, "private.signed.test", port);
    let line = egress_line(&mut sc, "resolver down", |v| {
        v["rampart.rule"] == "asked-last"
    });
    assert_eq!(
        line["rampart.reason.kind"], "resolver_unreachable",
        "{line}"
    );
}

/// The ClientHello the unsigned if-signed case sent (for the destination's record).
fn client_hello_for_plain(dest: &Recorder) -> Vec<u8> {
    // ClientHellos carry random values: take the one the destination saw for www.plain.test.
    dest.seen()
        .iter()
        .map(|(_, b)| b.clone())
        .find(|b| b.windows(14).any(|w| w == b"www.plain.test"))
        .unwrap()
}
