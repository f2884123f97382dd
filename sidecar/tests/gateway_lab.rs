//! The egress gateway on loopback against the DNSSEC lab, through the real binary: a workload
//! sidecar (explicit proxy, no resolver of its own) sends its allowed egress over mTLS to the
//! gateway, which resolves with DNSSEC, vets, and dials from its fixed source address
//! (127.0.0.2): the destination sees only that address. The gateway's refusals reach the
//! sidecar's log with the gateway's reason and rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod egress_support;
mod support;

use std::net::{IpAddr, Ipv4Addr};

use egress_support::*;
use support::Sidecar;

/// An identity of the trust domain that no directory service has.
const ROGUE: &str = "spiffe://mesh.local/ns/shop/sa/rogue";

#[test]
fn the_gateway_resolves_checks_and_leaves_from_its_fixed_address() {
    let Some(s) = GatewaySetup::start(
        "the_gateway_resolves_checks_and_leaves_from_its_fixed_address",
        &[("rogue", ROGUE)],
    ) else {
        return;
    };
    let (lab, dest, port, gw_port, mesh) = (s.lab, s.dest, s.port, s.gw_port, s.mesh);
    let web = Recorder::start_http(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10)));
    let web_port = web.addr.port();
    let host = |name: &str, rule: &str| {
        format!("name = \"{rule}\"\nhost = \"{name}\"\nports = [{port}]\nprotocol = \"tls\"\ninternal = [\"127.0.0.0/8\"]\n")
    };
    // The workload allows three names; the gateway lets frontend reach two of them.
    mesh.write(
        "frontend-policy.toml",
        &format!(
            "[egress]\n[[egress.hosts]]\n{}[[egress.hosts]]\n{}[[egress.hosts]]\n{}",
            host("www.signed.test", "www"),
            host("www.bogus.test", "bogus"),
            host("api.signed.test", "api"),
        ),
    );
    let gateway_policy = |www: bool| {
        format!(
            "[gateway.frontend]\ndnssec = \"required\"\n{}[[gateway.frontend.hosts]]\n{}",
            if www {
                format!(
                    "[[gateway.frontend.hosts]]\n{}",
                    host("www.signed.test", "gw-www")
                )
            } else {
                String::new()
            },
            host("www.bogus.test", "gw-bogus"),
        ) + &format!(
            "[[gateway.frontend.hosts]]\nname = \"gw-web\"\nhost = \"signed.test\"\nports = [{web_port}]\nprotocol = \"http\"\ninternal = [\"127.0.0.10/32\"]\n"
        )
    };
    let gateway_policy_path = mesh.write("gateway-policy.toml", &gateway_policy(true));
    mesh.write(
        "rogue-policy.toml",
        &format!(
            "[egress]\n[[egress.hosts]]\n{}",
            host("www.signed.test", "www")
        ),
    );
    let gateway_cfg = mesh.config(
        "gateway",
        "egress-gateway",
        &format!(
            "[egress]\n{}[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\nsource = \"127.0.0.2\"\n",
            lab_resolver(&lab, "cache_floor_secs = 0\n")
        ),
    );
    let frontend_cfg = mesh.config(
        "frontend",
        "frontend",
        "[egress]\nproxy_listen = \"127.0.0.1:0\"\ngateway = { service = \"egress-gateway\", port = 15443 }\n",
    );
    let mut gateway = Sidecar::start(&gateway_cfg);
    let mut sidecar = Sidecar::start(&frontend_cfg);
    let proxy = sidecar.addr("egress:proxy");

    // Allowed by both: the destination sees the gateway's fixed address, never the workload's.
    let hello = carried_tls_via(proxy, "www.signed.test", port);
    let seen = dest.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(seen[0].1, hello);
    let line = gateway.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "allow",
        "the gateway's allow line",
    );
    assert_eq!(line["rampart.caller.identity"], FRONTEND, "{line}");
    assert_eq!(line["rampart.rule"], "gw-www", "{line}");
    assert_eq!(line["rampart.dns.security"], "secure", "{line}");
    assert_eq!(line["network.local.address"], "127.0.0.2", "{line}");
    let line = sidecar.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "allow",
        "the sidecar's allow line",
    );
    assert_eq!(
        line["rampart.egress.gateway"],
        format!("127.0.0.1:{gw_port}"),
        "{line}"
    );
    assert_eq!(line["rampart.rule"], "www", "{line}");

    // DNSSEC is the gateway's to check: a bogus answer is refused there, with its reason, and
    // the sidecar logs the gateway's reason and rule.
    refused_tls_via(proxy, "www.bogus.test", port);
    let line = sidecar.wait_for(
        |v| {
            v["event.name"] == "rampart.sidecar.egress"
                && v["rampart.egress.denied_by"] == "gateway"
        },
        "the gateway's DNSSEC refusal in the sidecar's log",
    );
    assert_eq!(line["rampart.reason.kind"], "dnssec_bogus", "{line}");
    assert_eq!(line["rampart.rule"], "gw-bogus", "{line}");
    gateway.wait_for(
        |v| v["rampart.reason.kind"] == "dnssec_bogus" && v["rampart.caller.service"] == "frontend",
        "the bogus denial in the gateway's log",
    );

    // The gateway re-checks the caller's policy: the workload allows api.signed.test, the
    // gateway does not for frontend.
    refused_tls_via(proxy, "api.signed.test", port);
    let line = sidecar.wait_for(
        |v| v["rampart.egress.denied_by"] == "gateway" && v["rampart.reason.kind"] == "no_rule",
        "the gateway's policy refusal in the sidecar's log",
    );
    assert!(
        line["rampart.reason"]
            .as_str()
            .unwrap()
            .contains("no egress rule allows api.signed.test"),
        "{line}"
    );
    assert_eq!(
        dest.seen().len(),
        1,
        "nothing refused reached the destination"
    );

    // The gateway decides every plain-HTTP request itself, whatever the caller does: a caller
    // speaking to it directly (frontend's certificate) sends an allowed request, then one for
    // a name the gateway does not allow, on the same connection.
    let mut caller = KeepAlive::mtls(
        format!("127.0.0.1:{gw_port}").parse().unwrap(),
        &mesh.ca,
        &mesh.ca.leaf(&[FRONTEND]),
    );
    let get = |host: &str, path: &str| {
        format!("GET http://{host}:{web_port}{path} HTTP/1.1\r\nHost: {host}:{web_port}\r\n\r\n")
    };
    let (status, head, body) = caller.exchange(&get("signed.test", "/one"));
    assert_eq!((status, body.as_slice()), (200, &b"pong"[..]), "{head}");
    let (status, head, _) = caller.exchange(&get("deep.api.signed.test", "/two"));
    assert_eq!(status, 403, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-rampart-deny-reason: no_rule"),
        "{head}"
    );
    gateway.wait_for(
        |v| v["url.path"] == "/two" && v["rampart.reason.kind"] == "no_rule",
        "the second request's denial in the gateway's log",
    );
    let heads: Vec<String> = web
        .seen()
        .iter()
        .map(|(peer, h)| {
            assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
            String::from_utf8_lossy(h).into_owned()
        })
        .collect();
    assert!(
        heads.len() == 1 && heads[0].starts_with("GET /one HTTP/1.1"),
        "{heads:?}"
    );

    // A caller whose identity no directory service has is refused by the gateway.
    let rogue_cfg = mesh.config(
        "rogue",
        "rogue",
        "[egress]\nproxy_listen = \"127.0.0.1:0\"\ngateway = { service = \"egress-gateway\", port = 15443 }\n",
    );
    let mut rogue = Sidecar::start(&rogue_cfg);
    let got = connect_via(
        rogue.addr("egress:proxy"),
        &format!("www.signed.test:{port}"),
        &hello,
    );
    assert!(got.rest.is_empty(), "{got:?}");
    let line = rogue.wait_for(
        |v| v["rampart.egress.denied_by"] == "gateway",
        "the gateway's refusal of an unknown caller",
    );
    assert_eq!(line["rampart.reason.kind"], "unknown_caller", "{line}");
    gateway.wait_for(
        |v| v["rampart.reason.kind"] == "unknown_caller" && v["rampart.caller.identity"] == ROGUE,
        "the unknown caller in the gateway's log",
    );

    // The gateway's policy reloads like any policy: without gw-www, frontend's call is refused.
    std::fs::write(&gateway_policy_path, gateway_policy(false)).unwrap();
    gateway.hup();
    gateway.wait_for(
        |v| v["event.name"] == "rampart.sidecar.reload" && v["rampart.reload.result"] == "ok",
        "the gateway's reload",
    );
    let got = connect_via(proxy, &format!("www.signed.test:{port}"), &hello);
    assert!(got.rest.is_empty(), "{got:?}");
    sidecar.wait_for(
        |v| {
            v["rampart.egress.denied_by"] == "gateway"
                && v["rampart.reason.kind"] == "no_rule"
                && v["rampart.reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("no egress rule allows www.signed.test"))
        },
        "the reloaded gateway policy's refusal",
    );
    assert_eq!(
        dest.seen().len(),
        1,
        "nothing refused reached the destination"
    );
}
