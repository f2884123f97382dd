//! The egress gateway (S.N.8) in network namespaces made by the test: a workload "pod" (app,
//! sidecar as uid 1337, init-redirect rules with the egress filter), a gateway "pod" (the same
//! binary with `[gateway]`, bound to a fixed source address), and an "internet" namespace
//! whose server records the source address of every TCP connection and UDP datagram, over
//! IPv4 and IPv6. The pod's default routes go through the gateway's namespace, so without the
//! rules the app reaches the internet directly (checked first); with them, the server sees only
//! the gateway's fixed address. Three cases, each in namespaces of its own:
//! - IPv4, address rules;
//! - IPv6 (ip6tables capture and filter): denied without a rule, allowed with one, and nothing
//!   around the gateway;
//! - names: the DNSSEC lab (Knot + Unbound) runs inside the gateway's namespace, so the gateway
//!   resolves and validates the name itself; a bogus name is refused at the gateway.
//!
//! Needs root, `ip`, `iptables`, `ip6tables`, `setpriv`, `curl`, `python3` (and the DNS lab's
//! tools for the third); skips otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod egress_support;
mod support;

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use egress_support::{FRONTEND, GATEWAY};
use rampart_dns::testlab::DnsLab;
use serde_json::Value;
use support::netns::*;
use support::{write_leaf, Sidecar, TestCa};

const SIDECAR_UID: &str = "1337";

/// The "internet" server: TCP on 8080-8082 and 8443 answers `pong`; UDP on 5353; IPv4 and
/// IPv6 (separate sockets); one line per connection or datagram: `tcp PORT SOURCE` /
/// `udp SOURCE`.
const SERVER: &str = r#"
import socket, threading
def tcp(family, port):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port)); s.listen(16)
    while True:
        c, a = s.accept(); print("tcp %d %s" % (port, a[0]), flush=True)
        try:
            c.settimeout(5); c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\npong")
        except Exception: pass
        c.close()
def udp(family):
    u = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6: u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 5353))
    while True:
        d, a = u.recvfrom(2048); print("udp %s" % a[0], flush=True)
for f in (socket.AF_INET, socket.AF_INET6):
    for p in (8080, 8081, 8082, 8443): threading.Thread(target=tcp, args=(f, p), daemon=True).start()
    threading.Thread(target=udp, args=(f,), daemon=True).start()
import time; time.sleep(0.2)
print("ready", flush=True)
while True: time.sleep(60)
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
    /// Every line after the first `from`, each of which must come from `source`.
    fn all_from(&self, from: usize, source: &str) -> Vec<String> {
        let after = self.lines()[from..].to_vec();
        for l in &after {
            assert!(
                l.ends_with(&format!(" {source}")),
                "not from the gateway's address {source}: {l} (all: {after:?})"
            );
        }
        after
    }
}

/// One family's addresses: the pod, the gateway's pod-side address, the gateway's fixed
/// source address, the internet server.
struct Addrs {
    pod: String,
    gw_pod: String,
    fixed: String,
    inet: String,
}

/// `ip:port`, bracketed for IPv6.
fn at(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The three namespaces, their links (IPv4 and IPv6), the internet server, and the mesh files
/// (CA, the pod's and the gateway's certificates, the directory).
struct Pods {
    w: String,
    g: String,
    v4: Addrs,
    v6: Addrs,
    seen: Seen,
    dir: tempfile::TempDir,
    /// Last: the namespaces (and every process left in them) go when the rest has.
    ns: Netns,
}

/// What an egress log line must say.
fn egress(v: &Value, decision: &str) -> bool {
    v["event.name"] == "rampart.sidecar.egress" && v["rampart.decision"] == decision
}

impl Pods {
    /// `case` tells the tests of this file apart (namespace and link names).
    fn new(case: u32) -> Pods {
        let tag = (std::process::id() * 3 + case) % 10000;
        let (w, g, i) = (
            format!("egw{tag}"),
            format!("egg{tag}"),
            format!("egi{tag}"),
        );
        let ns = Netns {
            names: vec![w.clone(), g.clone(), i.clone()],
            apps: Vec::new(),
        };
        let v4 = Addrs {
            pod: "10.100.7.1".into(),
            gw_pod: "10.100.7.2".into(),
            fixed: "172.16.7.3".into(),
            inet: "172.16.7.2".into(),
        };
        let v6 = Addrs {
            pod: "fd00:7a::1".into(),
            gw_pod: "fd00:7a::2".into(),
            fixed: "fd00:7b::3".into(),
            inet: "fd00:7b::2".into(),
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
        let (pw, pg, po, pi) = (
            format!("ew{tag}"),
            format!("eg{tag}"),
            format!("eo{tag}"),
            format!("ei{tag}"),
        );
        // IPv6 addresses without duplicate address detection, so they are usable at once.
        let addr = |ns: &str, a: &str, len: u8, dev: &str| {
            let v6 = if a.contains(':') { " nodad" } else { "" };
            must(&format!("ip -n {ns} addr add {a}/{len} dev {dev}{v6}"));
        };
        for (n, dev) in [(&w, &pw), (&g, &pg), (&g, &po), (&i, &pi)] {
            must(&format!(
                "ip -n {n} link set {dev} up && ip -n {n} link set lo up"
            ));
        }
        addr(&w, &v4.pod, 24, &pw);
        addr(&w, &v6.pod, 64, &pw);
        addr(&g, &v4.gw_pod, 24, &pg);
        addr(&g, &v6.gw_pod, 64, &pg);
        for a in [&v4.fixed, &v4.inet] {
            let (ns, dev) = if a == &v4.inet { (&i, &pi) } else { (&g, &po) };
            addr(ns, a, 24, dev);
        }
        addr(&g, "172.16.7.1", 24, &po);
        addr(&g, "fd00:7b::1", 64, &po);
        addr(&g, &v6.fixed, 64, &po);
        addr(&i, &v6.inet, 64, &pi);
        must(&format!(
            "ip -n {w} route add default via {} && ip -n {w} -6 route add default via {}",
            v4.gw_pod, v6.gw_pod
        ));
        must(&format!(
            "ip netns exec {g} sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"
        ));
        must(&format!(
            "ip -n {i} route add 10.100.7.0/24 via 172.16.7.1 && ip -n {i} -6 route add fd00:7a::/64 via fd00:7b::1"
        ));

        let mut pods = Pods {
            w,
            g,
            v4,
            v6,
            seen: Seen(Arc::default()),
            dir: tempfile::tempdir().unwrap(),
            ns,
        };
        pods.start_server(&i);
        pods.mesh_files();
        pods
    }

    fn start_server(&mut self, i: &str) {
        let mut server = Command::new("ip")
            .args(["netns", "exec", i, "python3", "-c", SERVER])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = server.stdout.take().unwrap();
        self.ns.apps.push(server);
        let (ready_tx, ready_rx) = mpsc::channel();
        let record = self.seen.0.clone();
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
    }

    /// Writes a file readable by the sidecars' uid.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    fn mesh_files(&self) {
        let ca = TestCa::new("mesh");
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for (stem, id) in [("w", FRONTEND), ("g", GATEWAY)] {
            write_leaf(self.dir.path(), stem, &ca.leaf(&[id]));
            std::fs::set_permissions(
                self.dir.path().join(format!("{stem}.key")),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        self.write("bundle.pem", &ca.root_pem);
        self.write(
            "directory.toml",
            &format!(
                "[[service]]\nname = \"frontend\"\nidentity = \"{FRONTEND}\"\nendpoints = [{{ port = 80, address = \"{}:80\" }}]\n\
                 [[service]]\nname = \"egress-gateway\"\nidentity = \"{GATEWAY}\"\nendpoints = [{{ port = 15443, address = \"{}:15443\" }}]\n",
                self.v4.pod, self.v4.gw_pod
            ),
        );
    }

    /// Runs a shell command in the pod as the app (root, not the sidecar's uid).
    fn app(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} {cmd}", self.w))
    }

    /// `curl` from the pod: the body, then the status code (`000` when refused or reset).
    fn curl(&self, args: &str) -> String {
        let out = self.app(&format!(
            "curl -s --max-time 10 -w ' %{{http_code}}' {args}"
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Without the rules, the pod reaches the internet server directly over `v` (the routes
    /// are real).
    fn check_direct_route(&self, v: &Addrs) {
        assert_eq!(
            self.curl(&format!("http://{}/", at(&v.inet, 8082))),
            "pong 200"
        );
        assert_eq!(self.seen.wait("tcp 8082"), format!("tcp 8082 {}", v.pod));
    }

    /// Writes the policies and configs, installs the pod's rules (init-redirect, as root in the
    /// pod) and starts the gateway (leaving from `source`, with `gateway_egress` as its
    /// `[egress]` body) and the pod's sidecar (through the gateway), both as uid 1337.
    fn start(
        &self,
        pod_policy: &str,
        gateway_policy: &str,
        gateway_egress: &str,
        source: &str,
    ) -> (Sidecar, Sidecar) {
        self.write("w-policy.toml", &format!("[egress]\n{pod_policy}"));
        self.write("g-policy.toml", gateway_policy);
        let common = |stem: &str, service: &str| {
            format!("service = \"{service}\"\ntrust_domain = \"mesh.local\"\npolicy = \"{stem}-policy.toml\"\ndirectory = \"directory.toml\"\nidentity = {{ cert = \"{stem}.pem\", key = \"{stem}.key\", bundle = \"bundle.pem\" }}\n")
        };
        let w_cfg = self.write(
            "w.toml",
            &format!("{}[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n[egress]\ngateway = {{ service = \"egress-gateway\", port = 15443 }}\n", common("w", "frontend")),
        );
        let g_cfg = self.write(
            "g.toml",
            &format!(
                "{}[egress]\n{gateway_egress}[gateway]\nlisten = \"{}:15443\"\nsource = \"{source}\"\n",
                common("g", "egress-gateway"),
                self.v4.gw_pod
            ),
        );
        let bin = env!("CARGO_BIN_EXE_rampart-sidecar");
        let redirect = sh(&format!(
            "ip netns exec {} {bin} init-redirect --config {} --proxy-uid {SIDECAR_UID}",
            self.w,
            w_cfg.display()
        ));
        let printed = String::from_utf8_lossy(&redirect.stdout);
        assert!(redirect.status.success(), "{redirect:?}");
        for family in ["iptables", "ip6tables"] {
            assert!(
                printed.contains(&format!("{family} -t filter -A RAMPART_EGRESS -j REJECT")),
                "{printed}"
            );
            assert!(
                printed.contains(&format!(
                    "{family} -t nat -A RAMPART_OUTBOUND -p tcp -j REDIRECT --to-ports 15001"
                )),
                "{printed}"
            );
        }
        let prefix = |n: &str| in_ns_as(n, SIDECAR_UID);
        let pg = prefix(&self.g);
        let gateway =
            Sidecar::start_with(&pg.iter().map(String::as_str).collect::<Vec<_>>(), &g_cfg);
        assert_eq!(
            gateway.addr("gateway").to_string(),
            at(&self.v4.gw_pod, 15443)
        );
        let pw = prefix(&self.w);
        let sidecar =
            Sidecar::start_with(&pw.iter().map(String::as_str).collect::<Vec<_>>(), &w_cfg);
        (gateway, sidecar)
    }

    /// UDP from the app to the internet server over `v`: dropped by the egress filter (the app
    /// is told at once).
    fn check_udp_blocked(&self, v: &Addrs) {
        let family = if v.inet.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let udp = self.app(&format!(
            "python3 -c \"import socket; s=socket.socket(socket.{family}, socket.SOCK_DGRAM)\ntry:\n s.sendto(b'x', ('{}', 5353)); print('sent')\nexcept OSError as e: print('blocked', e)\"",
            v.inet
        ));
        assert!(
            String::from_utf8_lossy(&udp.stdout).starts_with("blocked"),
            "{udp:?}"
        );
    }
}

/// Whether the namespace tests can run here (root and the tools); says why not.
/// A plain-HTTP request the pod's sidecar refused: curl's body and status, a 403 naming why.
fn refused_by_sidecar(curl_out: &str) -> bool {
    curl_out.starts_with("egress denied: ") && curl_out.ends_with(" 403")
}

fn runnable(test: &str) -> bool {
    match can_run() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}; CI runs it as root");
            false
        }
    }
}

/// An address rule (`[[TABLE.addresses]]`) for `net`, plain HTTP.
fn address_rule(table: &str, name: &str, net: &str, ports: &str) -> String {
    format!("[[{table}.addresses]]\nname = \"{name}\"\nnetworks = [\"{net}\"]\nports = [{ports}]\nprotocol = \"http\"\n")
}

/// The gateway's `[egress]` body when it never resolves (address rules); a resolver must be
/// configured all the same.
const NO_RESOLVER: &str = "resolvers = [\"127.0.0.1:53\"]\n";

/// Namespaces for `case`, the direct route checked (IPv6 with `v6`), then the rules and both
/// sidecars: the pod may reach the internet server's address on `pod_ports`, the gateway lets
/// frontend use 8080 only; the gateway leaves from its fixed address of that family. Returns
/// the pods, how many connections the server had seen before the rules, the gateway and the
/// pod's sidecar.
fn address_case(case: u32, v6: bool, pod_ports: &str) -> (Pods, usize, Sidecar, Sidecar) {
    let pods = Pods::new(case);
    let (v, len, suffix) = if v6 {
        (&pods.v6, 128, "6")
    } else {
        (&pods.v4, 32, "")
    };
    pods.check_direct_route(v);
    let before = pods.seen.lines().len();
    let net = format!("{}/{len}", v.inet);
    let (gateway, sidecar) = pods.start(
        &address_rule("egress", &format!("partner{suffix}"), &net, pod_ports),
        &format!(
            "[gateway.frontend]\n{}",
            address_rule(
                "gateway.frontend",
                &format!("fe-partner{suffix}"),
                &net,
                "8080"
            )
        ),
        NO_RESOLVER,
        &v.fixed,
    );
    (pods, before, gateway, sidecar)
}

#[test]
fn egress_leaves_only_through_the_gateway_from_its_fixed_address() {
    if !runnable("egress_leaves_only_through_the_gateway_from_its_fixed_address") {
        return;
    }
    // The pod may reach the server on 8080 and 8081; the gateway lets frontend use 8080 only.
    let (pods, before, mut gateway, mut sidecar) = address_case(0, false, "8080, 8081");
    let v = &pods.v4;

    // Going around, by UDP: dropped by the egress filter.
    pods.check_udp_blocked(v);
    // Going around, by TCP to a port the policy does not allow: redirected to the sidecar,
    // which refuses it.
    let out = pods.curl(&format!("http://{}/", at(&v.inet, 8082)));
    assert!(refused_by_sidecar(&out), "{out}");
    let line = sidecar.wait_for(|v| egress(v, "deny"), "egress denial in the pod's sidecar");
    assert_eq!(line["rampart.reason.kind"], "port_not_allowed", "{line}");
    assert_eq!(line["rampart.destination"], at(&v.inet, 8082), "{line}");

    // Transparent TLS: the SNI decides, not the address dialled. A name no rule allows, sent to
    // the server's address, is refused before anything is dialled.
    assert_eq!(
        pods.curl(&format!(
            "-k --resolve evil.example:8443:{} https://evil.example:8443/",
            v.inet
        )),
        " 000"
    );
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
    assert_eq!(line["rampart.destination"], at(&v.inet, 8443), "{line}");
    // TLS without SNI (an IP literal) to an address no rule names.
    assert_eq!(
        pods.curl(&format!("-k https://{}/", at(&v.gw_pod, 8443))),
        " 000"
    );
    sidecar.wait_for(
        |v| {
            v["event.name"] == "rampart.sidecar.egress" && v["rampart.reason.kind"] == "missing_sni"
        },
        "the missing-SNI refusal in the pod's sidecar",
    );

    // Allowed: through the sidecar, over mTLS to the gateway, out from the fixed address.
    assert_eq!(
        pods.curl(&format!("http://{}/hello", at(&v.inet, 8080))),
        "pong 200"
    );
    assert_eq!(pods.seen.wait("tcp 8080"), format!("tcp 8080 {}", v.fixed));
    let line = sidecar.wait_for(
        |v| egress(v, "allow"),
        "allowed egress in the pod's sidecar",
    );
    assert_eq!(
        line["rampart.egress.gateway"],
        at(&v.gw_pod, 15443),
        "{line}"
    );
    assert_eq!(line["rampart.rule"], "partner", "{line}");
    let line = gateway.wait_for(|v| egress(v, "allow"), "allowed egress in the gateway");
    assert_eq!(line["rampart.caller.identity"], FRONTEND, "{line}");
    assert_eq!(line["rampart.caller.service"], "frontend", "{line}");
    assert_eq!(line["rampart.rule"], "fe-partner", "{line}");
    assert_eq!(line["network.local.address"], v.fixed, "{line}");

    // Plain HTTP is decided request by request: on the same kept-alive connection, a request
    // for a host no rule names gets a 403 with the reason and never leaves the pod.
    let out = pods.app(&format!(
        "python3 -c \"import socket\ns = socket.create_connection(('{ip}', 8080), timeout=10)\n\
         for host, path in (('{ip}:8080', '/first'), ('evil.example:8080', '/second')):\n\
         \x20s.sendall(('GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (path, host)).encode())\n\
         \x20print(s.recv(4096).split(b'\\r\\n')[0].decode(), flush=True)\"",
        ip = v.inet
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["HTTP/1.0 200 OK", "HTTP/1.1 403 Forbidden"],
        "{out:?}"
    );
    let line = sidecar.wait_for(
        |v| egress(v, "deny") && v["url.path"] == "/second",
        "the second request's denial in the pod's sidecar",
    );
    assert_eq!(line["rampart.reason.kind"], "no_rule", "{line}");
    assert_eq!(
        pods.seen
            .lines()
            .iter()
            .filter(|l| l.starts_with("tcp 8080"))
            .count(),
        2,
        "the allowed curl and the first kept-alive request, nothing else"
    );

    // A refused first request is answered the same way: a 403 naming the reason (then the
    // connection closes), not a bare close.
    let out = pods.app(&format!(
        "python3 -c \"import socket\ns = socket.create_connection(('{ip}', 8080), timeout=10)\n\
         s.sendall(b'GET /first-denied HTTP/1.1\\r\\nHost: evil.example:8080\\r\\n\\r\\n')\n\
         print(s.recv(4096).decode(), flush=True)\"",
        ip = v.inet
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 403 Forbidden")
            && text
                .to_ascii_lowercase()
                .contains("x-rampart-deny-reason: no_rule"),
        "{out:?}"
    );
    sidecar.wait_next(
        |v| {
            egress(v, "deny")
                && v["rampart.reason.kind"] == "no_rule"
                && v["rampart.reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("evil.example"))
        },
        "the refused first request's denial in the pod's sidecar",
    );

    // The gateway re-checks: the pod's policy allows 8081, the gateway's does not for frontend.
    let out = pods.curl(&format!("http://{}/", at(&v.inet, 8081)));
    assert!(
        out.ends_with(" 403") && out.contains("rule fe-partner"),
        "the gateway's refusal reaches the app: {out}"
    );
    let line = gateway.wait_for(|v| egress(v, "deny"), "denial in the gateway");
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
    let after = pods.seen.all_from(before, &v.fixed);
    assert!(!after.is_empty());
    assert!(
        !after.iter().any(|l| l.starts_with("tcp 8443")),
        "{after:?}"
    );
    let w = pods.w.clone();
    drop((sidecar, gateway, pods));
    assert!(!std::path::Path::new(&format!("/var/run/netns/{w}")).exists());
}

#[test]
fn ipv6_is_captured_and_leaves_only_through_the_gateway() {
    if !runnable("ipv6_is_captured_and_leaves_only_through_the_gateway") {
        return;
    }
    let (pods, before, mut gateway, mut sidecar) = address_case(1, true, "8080");
    let v = &pods.v6;
    assert!(
        sidecar.ready["rampart.listen.outbound:transparent6"]
            .as_str()
            .is_some_and(|a| a == "[::1]:15001"),
        "{}",
        sidecar.ready
    );

    // Around the gateway: UDP over IPv6 is dropped by the ip6tables filter.
    pods.check_udp_blocked(v);
    // No rule for the address: captured by the sidecar over IPv6 and denied.
    let out = pods.curl(&format!("http://{}/", at(&v.gw_pod, 8080)));
    assert!(refused_by_sidecar(&out), "{out}");
    let line = sidecar.wait_for(|v| egress(v, "deny"), "IPv6 denial in the pod's sidecar");
    assert_eq!(line["rampart.reason.kind"], "raw_ip_not_named", "{line}");
    assert_eq!(line["rampart.destination"], at(&v.gw_pod, 8080), "{line}");
    // A port the rule does not allow.
    let out = pods.curl(&format!("http://{}/", at(&v.inet, 8082)));
    assert!(refused_by_sidecar(&out), "{out}");
    let line = sidecar.wait_for(
        |v| egress(v, "deny") && v["rampart.reason.kind"] == "port_not_allowed",
        "IPv6 port denial in the pod's sidecar",
    );
    assert_eq!(line["rampart.destination"], at(&v.inet, 8082), "{line}");

    // The rule's address: through the sidecar and the gateway, out from its fixed IPv6 address.
    assert_eq!(
        pods.curl(&format!("http://{}/v6", at(&v.inet, 8080))),
        "pong 200"
    );
    assert_eq!(pods.seen.wait("tcp 8080"), format!("tcp 8080 {}", v.fixed));
    let line = sidecar.wait_for(|v| egress(v, "allow"), "allowed IPv6 egress in the pod");
    assert_eq!(line["rampart.rule"], "partner6", "{line}");
    assert_eq!(line["rampart.destination"], at(&v.inet, 8080), "{line}");
    let line = gateway.wait_for(|v| egress(v, "allow"), "allowed IPv6 egress in the gateway");
    assert_eq!(line["rampart.rule"], "fe-partner6", "{line}");
    assert_eq!(line["network.local.address"], v.fixed, "{line}");
    let after = pods.seen.all_from(before, &v.fixed);
    assert!(!after.is_empty());
}

#[test]
fn names_resolve_and_validate_at_the_gateway() {
    if !runnable("names_resolve_and_validate_at_the_gateway") {
        return;
    }
    let missing = DnsLab::missing_tools();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED names_resolve_and_validate_at_the_gateway: DNS lab tools missing: {missing:?}"
        );
        return;
    }
    let pods = Pods::new(2);
    let v = &pods.v4;
    // Knot and Unbound on the gateway namespace's loopback; api.signed.test (signed) points at
    // the internet server.
    let lab = DnsLab::start_in_netns(&pods.g).expect("DNS lab in the gateway's namespace");
    lab.set_a("api", v.inet.parse().unwrap(), 60).unwrap();
    let hosts = |table: &str| {
        format!(
            "[[{table}.hosts]]\nname = \"api\"\nhost = \"api.signed.test\"\nports = [8080]\nprotocol = \"http\"\ndnssec = \"required\"\ninternal = [\"{}/32\"]\n\
             [[{table}.hosts]]\nname = \"bogus\"\nhost = \"www.bogus.test\"\nports = [8080]\nprotocol = \"http\"\ninternal = [\"{}/32\"]\n",
            v.inet, v.inet
        )
    };
    let before = pods.seen.lines().len();
    let (mut gateway, mut sidecar) = pods.start(
        &hosts("egress"),
        &format!("[gateway.frontend]\n{}", hosts("gateway.frontend")),
        &format!(
            "resolvers = [\"{}\"]\ntrust_anchor = \"{}\"\ncache_floor_secs = 0\n",
            lab.resolver,
            lab.anchor_file.display()
        ),
        &v.fixed,
    );

    // The app's own lookup does not matter (curl --resolve); the gateway resolves the name.
    assert_eq!(
        pods.curl(&format!(
            "--resolve api.signed.test:8080:{} http://api.signed.test:8080/named",
            v.inet
        )),
        "pong 200"
    );
    assert_eq!(pods.seen.wait("tcp 8080"), format!("tcp 8080 {}", v.fixed));
    let line = gateway.wait_for(|v| egress(v, "allow"), "the named egress in the gateway");
    assert_eq!(line["rampart.rule"], "api", "{line}");
    assert_eq!(line["server.address"], "api.signed.test", "{line}");
    assert_eq!(line["rampart.dns.security"], "secure", "{line}");
    assert_eq!(line["network.peer.address"], v.inet, "{line}");
    assert_eq!(line["network.local.address"], v.fixed, "{line}");
    let line = sidecar.wait_for(|v| egress(v, "allow"), "the named egress in the pod");
    assert_eq!(line["server.address"], "api.signed.test", "{line}");

    // A name whose signatures do not validate: refused at the gateway (a 403 the app reads,
    // with the reason), nothing dialled.
    let out = pods.curl(&format!(
        "--resolve www.bogus.test:8080:{} http://www.bogus.test:8080/",
        v.inet
    ));
    assert!(out.ends_with(" 403") && out.contains("DNSSEC"), "{out}");
    let line = gateway.wait_for(|v| egress(v, "deny"), "the bogus name in the gateway");
    assert_eq!(line["rampart.reason.kind"], "dnssec_bogus", "{line}");
    assert_eq!(line["rampart.rule"], "bogus", "{line}");
    let line = sidecar.wait_for(
        |v| egress(v, "deny") && v["rampart.egress.denied_by"] == "gateway",
        "the gateway's DNSSEC refusal in the pod",
    );
    assert_eq!(line["rampart.reason.kind"], "dnssec_bogus", "{line}");
    let after = pods.seen.all_from(before, &v.fixed);
    assert_eq!(after.len(), 1, "{after:?}");
    drop(lab);
}

#[test]
fn init_redirect_fails_closed_without_ip6tables() {
    if !runnable("init_redirect_fails_closed_without_ip6tables") {
        return;
    }
    let tag = (std::process::id() * 3 + 3) % 10000;
    let name = format!("egx{tag}");
    let _ns = Netns {
        names: vec![name.clone()],
        apps: Vec::new(),
    };
    must(&format!(
        "ip netns add {name} && ip -n {name} link set lo up"
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(
        &cfg,
        "service = \"frontend\"\ntrust_domain = \"mesh.local\"\npolicy = \"p.toml\"\ndirectory = \"d.toml\"\nidentity = { cert = \"c\", key = \"k\", bundle = \"b\" }\n\
         [outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n[egress]\nresolvers = [\"10.0.0.53:53\"]\n",
    )
    .unwrap();
    // A PATH with iptables but no ip6tables.
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let iptables = String::from_utf8(sh("command -v iptables").stdout).unwrap();
    std::os::unix::fs::symlink(iptables.trim(), bin_dir.join("iptables")).unwrap();
    let bin = env!("CARGO_BIN_EXE_rampart-sidecar");
    let run = || {
        sh(&format!(
            "ip netns exec {name} env PATH={} {bin} init-redirect --config {} --proxy-uid 1337",
            bin_dir.display(),
            cfg.display()
        ))
    };
    // IPv6 active: refused, and says what would be left open.
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("ip6tables") && err.contains("bypass the sidecar"),
        "{err}"
    );
    // IPv6 disabled in the namespace: the IPv4 rules, and a note that IPv6 is not covered.
    must(&format!(
        "ip netns exec {name} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1"
    ));
    let out = run();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(printed.contains("IPv6 is disabled"), "{printed}");
    assert!(
        printed.contains("iptables -t filter -A RAMPART_EGRESS -j REJECT")
            && !printed.contains("ip6tables"),
        "{printed}"
    );
}
