//! The egress gateway (S.N.8) in network namespaces made by the test: a workload "pod" (app,
//! sidecar as uid 1337, init-redirect rules with the egress filter), a gateway "pod" (the same
//! binary with `[gateway]`, bound to a fixed source address), and an "internet" namespace
//! whose server records the source address of every TCP connection and UDP datagram. The pod's
//! default route goes through the gateway's namespace, so without the rules the app reaches
//! the internet directly (checked first); with them, the server sees only the gateway's fixed
//! address. Needs root, `ip`, `iptables`, `setpriv`, `curl`, `python3`; skips otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod egress_support;
mod support;

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use egress_support::{FRONTEND, GATEWAY};
use support::netns::*;
use support::{write_leaf, Sidecar, TestCa};

const SIDECAR_UID: &str = "1337";

/// The "internet" server: TCP on 8080-8082 and 8443 answers `pong`; UDP on 5353; one line per
/// connection or datagram: `tcp PORT SOURCE` / `udp SOURCE`.
const SERVER: &str = r#"
import socket, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, a = s.accept(); print("tcp %d %s" % (port, a[0]), flush=True)
        try:
            c.settimeout(5); c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\npong")
        except Exception: pass
        c.close()
for p in (8080, 8081, 8082, 8443): threading.Thread(target=tcp, args=(p,), daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    d, a = u.recvfrom(2048); print("udp %s" % a[0], flush=True)
"#;

/// What the internet server saw.
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    /// Waits (bounded) for a line starting with `prefix`.
    fn wait(&self, prefix: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Some(l) = self.lines().into_iter().find(|l| l.starts_with(prefix)) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the internet server never saw `{prefix}…`: {:?}",
            self.lines()
        );
    }
}

#[test]
fn egress_leaves_only_through_the_gateway_from_its_fixed_address() {
    if let Err(why) = can_run() {
        eprintln!("SKIPPED egress_leaves_only_through_the_gateway_from_its_fixed_address: {why}; CI runs it as root");
        return;
    }
    let tag = std::process::id() % 10000;
    let (w, g, i) = (
        format!("egw{tag}"),
        format!("egg{tag}"),
        format!("egi{tag}"),
    );
    let n = 100 + (tag % 100);
    let m = tag % 250;
    let (pod_ip, gw_pod_ip) = (format!("10.{n}.{m}.1"), format!("10.{n}.{m}.2"));
    let net = format!("172.{}.{}", 16 + (tag % 16), m);
    let (gw_out_ip, fixed_ip, inet_ip) =
        (format!("{net}.1"), format!("{net}.3"), format!("{net}.2"));
    let mut ns = Netns {
        names: vec![w.clone(), g.clone(), i.clone()],
        apps: Vec::new(),
    };
    must(&format!(
        "ip netns add {w} && ip netns add {g} && ip netns add {i}"
    ));
    must(&format!(
        "ip link add ew{tag} netns {w} type veth peer name eg{tag} netns {g}"
    ));
    must(&format!(
        "ip link add eo{tag} netns {g} type veth peer name ei{tag} netns {i}"
    ));
    must(&format!("ip -n {w} addr add {pod_ip}/24 dev ew{tag} && ip -n {w} link set ew{tag} up && ip -n {w} link set lo up && ip -n {w} route add default via {gw_pod_ip}"));
    must(&format!("ip -n {g} addr add {gw_pod_ip}/24 dev eg{tag} && ip -n {g} link set eg{tag} up && ip -n {g} link set lo up"));
    must(&format!("ip -n {g} addr add {gw_out_ip}/24 dev eo{tag} && ip -n {g} addr add {fixed_ip}/24 dev eo{tag} && ip -n {g} link set eo{tag} up"));
    must(&format!(
        "ip netns exec {g} sysctl -qw net.ipv4.ip_forward=1"
    ));
    must(&format!("ip -n {i} addr add {inet_ip}/24 dev ei{tag} && ip -n {i} link set ei{tag} up && ip -n {i} link set lo up && ip -n {i} route add 10.{n}.{m}.0/24 via {gw_out_ip}"));

    // The internet server.
    let mut server = Command::new("ip")
        .args(["netns", "exec", &i, "python3", "-c", SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = server.stdout.take().unwrap();
    ns.apps.push(server);
    let seen = Seen(Arc::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let record = seen.0.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready_tx.send(());
            } else {
                record.lock().unwrap().push(line);
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("internet server ready");

    // Without the rules, the pod reaches the internet directly (the route is real).
    let app = |cmd: &str| sh(&format!("ip netns exec {w} {cmd}"));
    let direct = app(&format!("curl -s --max-time 10 http://{inet_ip}:8082/"));
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout),
        "pong",
        "{direct:?}"
    );
    assert_eq!(seen.wait("tcp 8082"), format!("tcp 8082 {pod_ip}"));
    let before = seen.lines().len();

    // Mesh files.
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    };
    for (stem, id) in [("w", FRONTEND), ("g", GATEWAY)] {
        write_leaf(dir.path(), stem, &ca.leaf(&[id]));
        std::fs::set_permissions(
            dir.path().join(format!("{stem}.key")),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    write("bundle.pem", &ca.root_pem);
    write(
        "directory.toml",
        &format!(
            "[[service]]\nname = \"frontend\"\nidentity = \"{FRONTEND}\"\nendpoints = [{{ port = 80, address = \"{pod_ip}:80\" }}]\n\
             [[service]]\nname = \"egress-gateway\"\nidentity = \"{GATEWAY}\"\nendpoints = [{{ port = 15443, address = \"{gw_pod_ip}:15443\" }}]\n"
        ),
    );
    // The pod may reach the server on 8080 and 8081; the gateway lets frontend use 8080 only.
    write(
        "w-policy.toml",
        &format!("[egress]\n[[egress.addresses]]\nname = \"partner\"\nnetworks = [\"{inet_ip}/32\"]\nports = [8080, 8081]\nprotocol = \"http\"\n"),
    );
    write(
        "g-policy.toml",
        &format!("[gateway.frontend]\n[[gateway.frontend.addresses]]\nname = \"fe-partner\"\nnetworks = [\"{inet_ip}/32\"]\nports = [8080]\nprotocol = \"http\"\n"),
    );
    let common = |stem: &str, service: &str| {
        format!("service = \"{service}\"\ntrust_domain = \"mesh.local\"\npolicy = \"{stem}-policy.toml\"\ndirectory = \"directory.toml\"\nidentity = {{ cert = \"{stem}.pem\", key = \"{stem}.key\", bundle = \"bundle.pem\" }}\n")
    };
    let w_cfg = write(
        "w.toml",
        &format!("{}[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n[egress]\ngateway = {{ service = \"egress-gateway\", port = 15443 }}\n", common("w", "frontend")),
    );
    // The gateway's resolver is never asked here (address rules); it must exist all the same.
    let g_cfg = write(
        "g.toml",
        &format!("{}[egress]\nresolvers = [\"127.0.0.1:53\"]\n[gateway]\nlisten = \"{gw_pod_ip}:15443\"\nsource = \"{fixed_ip}\"\n", common("g", "egress-gateway")),
    );
    let bin = env!("CARGO_BIN_EXE_rampart-sidecar");
    let redirect = sh(&format!(
        "ip netns exec {w} {bin} init-redirect --config {} --proxy-uid {SIDECAR_UID}",
        w_cfg.display()
    ));
    let printed = String::from_utf8_lossy(&redirect.stdout);
    assert!(redirect.status.success(), "{redirect:?}");
    assert!(
        printed.contains("-t filter -A RAMPART_EGRESS -j REJECT"),
        "{printed}"
    );

    let prefix = |n: &str| in_ns_as(n, SIDECAR_UID);
    let pg = prefix(&g);
    let mut gateway =
        Sidecar::start_with(&pg.iter().map(String::as_str).collect::<Vec<_>>(), &g_cfg);
    assert_eq!(
        gateway.addr("gateway").to_string(),
        format!("{gw_pod_ip}:15443")
    );
    let pw = prefix(&w);
    let mut sidecar =
        Sidecar::start_with(&pw.iter().map(String::as_str).collect::<Vec<_>>(), &w_cfg);

    // Going around, by UDP: dropped by the egress filter (the app is told at once).
    let udp = app(&format!(
        "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n s.sendto(b'x', ('{inet_ip}', 5353)); print('sent')\nexcept OSError as e: print('blocked', e)\""
    ));
    assert!(
        String::from_utf8_lossy(&udp.stdout).starts_with("blocked"),
        "{udp:?}"
    );
    // Going around, by TCP to a port the policy does not allow: redirected to the sidecar,
    // which refuses it.
    let out = app(&format!(
        "curl -s --max-time 10 -w '%{{http_code}}' http://{inet_ip}:8082/"
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    let line = sidecar.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "deny",
        "egress denial in the pod's sidecar",
    );
    assert_eq!(line["rampart.reason.kind"], "port_not_allowed", "{line}");
    assert_eq!(
        line["rampart.destination"],
        format!("{inet_ip}:8082"),
        "{line}"
    );

    // Transparent TLS: the SNI decides, not the address dialled. A name no rule allows, sent to
    // the server's address, is refused before anything is dialled.
    let out = app(&format!(
        "curl -sk --max-time 10 -w '%{{http_code}}' --resolve evil.example:8443:{inet_ip} https://evil.example:8443/"
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    let line = sidecar.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.reason.kind"] == "no_rule",
        "the SNI refusal in the pod's sidecar",
    );
    assert!(
        line["rampart.reason"]
            .as_str()
            .unwrap()
            .contains("evil.example:8443 (tls)"),
        "{line}"
    );
    assert_eq!(
        line["rampart.destination"],
        format!("{inet_ip}:8443"),
        "{line}"
    );
    // TLS without SNI (an IP literal) to an address no rule names.
    let out = app(&format!(
        "curl -sk --max-time 10 -w '%{{http_code}}' https://{gw_pod_ip}:8443/"
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    sidecar.wait_for(
        |v| {
            v["event.name"] == "rampart.sidecar.egress" && v["rampart.reason.kind"] == "missing_sni"
        },
        "the missing-SNI refusal in the pod's sidecar",
    );

    // Allowed: through the sidecar, over mTLS to the gateway, out from the fixed address.
    let out = app(&format!(
        "curl -s --max-time 10 http://{inet_ip}:8080/hello"
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pong", "{out:?}");
    assert_eq!(seen.wait("tcp 8080"), format!("tcp 8080 {fixed_ip}"));
    let line = sidecar.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "allow",
        "allowed egress in the pod's sidecar",
    );
    assert_eq!(
        line["rampart.egress.gateway"],
        format!("{gw_pod_ip}:15443"),
        "{line}"
    );
    assert_eq!(line["rampart.rule"], "partner", "{line}");
    let line = gateway.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "allow",
        "allowed egress in the gateway",
    );
    assert_eq!(line["rampart.caller.identity"], FRONTEND, "{line}");
    assert_eq!(line["rampart.caller.service"], "frontend", "{line}");
    assert_eq!(line["rampart.rule"], "fe-partner", "{line}");
    assert_eq!(line["network.local.address"], fixed_ip, "{line}");

    // The gateway re-checks: the pod's policy allows 8081, the gateway's does not for frontend.
    let out = app(&format!(
        "curl -s --max-time 10 -w '%{{http_code}}' http://{inet_ip}:8081/"
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    let line = gateway.wait_for(
        |v| v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == "deny",
        "denial in the gateway",
    );
    assert_eq!(line["rampart.reason.kind"], "port_not_allowed", "{line}");
    assert_eq!(line["rampart.caller.service"], "frontend", "{line}");
    let line = sidecar.wait_for(
        |v| {
            v["event.name"] == "rampart.sidecar.egress"
                && v["rampart.egress.denied_by"] == "gateway"
        },
        "the gateway's refusal in the pod's sidecar",
    );
    assert_eq!(line["rampart.reason.kind"], "port_not_allowed", "{line}");
    assert_eq!(line["rampart.rule"], "fe-partner", "{line}");

    // The server saw nothing but the gateway's fixed address once the rules were in (and
    // nothing on 8443).
    let after = seen.lines()[before..].to_vec();
    assert!(!after.is_empty());
    assert!(
        !after.iter().any(|l| l.starts_with("tcp 8443")),
        "{after:?}"
    );
    for l in &after {
        assert!(
            l.ends_with(&format!(" {fixed_ip}")),
            "not from the gateway's address: {l} (all: {after:?})"
        );
    }
    drop(sidecar);
    drop(gateway);
    drop(ns);
    assert!(!std::path::Path::new(&format!("/var/run/netns/{w}")).exists());
}
