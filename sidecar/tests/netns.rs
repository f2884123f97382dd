//! End to end in network namespaces made by the test: two "pods", each with its own address,
//! app, sidecar and redirect rules (`init-redirect`), joined by a veth pair. The apps use the
//! network as usual; the sidecars capture, decide and encrypt. Needs root, `ip` and
//! `iptables`; skips with a message otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use support::netns::*;
use support::*;

const FRONTEND: &str = "spiffe://mesh.local/ns/shop/sa/frontend";
const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";
const SIDECAR_UID: &str = "1337";

const APP: &str = r#"
import http.server, socketserver, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("xfcc=%s;path=%s" % (self.headers.get("x-forwarded-client-cert", ""), self.path)).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a): pass
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(4096)
            if not d: return
            self.request.sendall(d)
socketserver.TCPServer.allow_reuse_address = True
tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 7000), Echo)
threading.Thread(target=tcp.serve_forever, daemon=True).start()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 8080), H)
print("ready", flush=True)
srv.serve_forever()
"#;

#[test]
fn pods_in_namespaces_talk_through_their_sidecars() {
    if let Err(why) = can_run() {
        eprintln!(
            "SKIPPED pods_in_namespaces_talk_through_their_sidecars: {why}; CI runs it as root"
        );
        return;
    }
    let tag = std::process::id() % 10000;
    let (a, b) = (format!("rsa{tag}"), format!("rsb{tag}"));
    let subnet = format!("10.{}.{}", 100 + (tag % 100), tag % 250);
    let (ip_a, ip_b) = (format!("{subnet}.1"), format!("{subnet}.2"));
    let mut ns = Netns {
        names: vec![a.clone(), b.clone()],
        apps: Vec::new(),
    };
    must(&format!("ip netns add {a} && ip netns add {b}"));
    must(&format!(
        "ip link add va{tag} netns {a} type veth peer name vb{tag} netns {b}"
    ));
    must(&format!("ip -n {a} addr add {ip_a}/24 dev va{tag} && ip -n {a} link set va{tag} up && ip -n {a} link set lo up"));
    must(&format!("ip -n {b} addr add {ip_b}/24 dev vb{tag} && ip -n {b} link set vb{tag} up && ip -n {b} link set lo up"));

    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    for (pod, id) in [("a", FRONTEND), ("b", PAYMENTS)] {
        let leaf = ca.leaf(&[id]);
        write(&format!("{pod}.pem"), &leaf.chain_pem);
        write(&format!("{pod}.key"), &leaf.key_pem);
    }
    write("bundle.pem", &ca.root_pem);
    write(
        "directory.toml",
        &format!(
            "[[service]]\nname = \"frontend\"\nidentity = \"{FRONTEND}\"\nendpoints = [{{ port = 80, address = \"{ip_a}:80\" }}]\n\
             [[service]]\nname = \"payments\"\nidentity = \"{PAYMENTS}\"\nendpoints = [{{ port = 8080, address = \"{ip_b}:8080\" }}, {{ port = 7000, address = \"{ip_b}:7000\" }}]\n"
        ),
    );
    write(
        "a-policy.toml",
        "[[outbound]]\nname = \"deps\"\n[[outbound.rule]]\nname = \"to-payments\"\nservices = [\"payments\"]\n",
    );
    write(
        "b-policy.toml",
        &format!("[[inbound]]\nname = \"api\"\nports = [8080, 7000]\n[[inbound.rule]]\nname = \"frontend-reads\"\ncallers = [\"{FRONTEND}\"]\nports = [8080]\nmethods = [\"GET\"]\n[[inbound.rule]]\nname = \"frontend-raw\"\ncallers = [\"{FRONTEND}\"]\nports = [7000]\n"),
    );
    write(
        "a.toml",
        "service = \"frontend\"\ntrust_domain = \"mesh.local\"\npolicy = \"a-policy.toml\"\ndirectory = \"directory.toml\"\nidentity = { cert = \"a.pem\", key = \"a.key\", bundle = \"bundle.pem\" }\n[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n",
    );
    write(
        "b.toml",
        "service = \"payments\"\ntrust_domain = \"mesh.local\"\npolicy = \"b-policy.toml\"\ndirectory = \"directory.toml\"\nidentity = { cert = \"b.pem\", key = \"b.key\", bundle = \"bundle.pem\" }\n[inbound]\ntransparent_listen = \"0.0.0.0:15006\"\n[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\n[[inbound.port]]\nport = 7000\nprotocol = \"tcp\"\napp = \"127.0.0.1:7000\"\n[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n",
    );
    let bin = env!("CARGO_BIN_EXE_rampart-sidecar");
    let cfg = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    must(&format!(
        "ip netns exec {a} {bin} init-redirect --config {} --proxy-uid {SIDECAR_UID}",
        cfg("a.toml")
    ));
    must(&format!(
        "ip netns exec {b} {bin} init-redirect --config {} --proxy-uid {SIDECAR_UID}",
        cfg("b.toml")
    ));

    // The payments app, in pod b, on loopback only.
    let mut app = Command::new("ip")
        .args(["netns", "exec", &b, "python3", "-c", APP])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(app.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    ns.apps.push(app);

    let prefix = |n: &str| {
        vec![
            "ip".to_string(),
            "netns".into(),
            "exec".into(),
            n.to_string(),
            "setpriv".into(),
            "--reuid".into(),
            SIDECAR_UID.into(),
            "--regid".into(),
            SIDECAR_UID.into(),
            "--clear-groups".into(),
        ]
    };
    let pa = prefix(&a);
    let pb = prefix(&b);
    let mut sidecar_b = Sidecar::start_with(
        &pb.iter().map(String::as_str).collect::<Vec<_>>(),
        &dir.path().join("b.toml"),
    );
    let mut sidecar_a = Sidecar::start_with(
        &pa.iter().map(String::as_str).collect::<Vec<_>>(),
        &dir.path().join("a.toml"),
    );

    // The frontend app (curl, as root in pod a) calls payments' address as if there were no mesh.
    let curl = |args: &str| sh(&format!("ip netns exec {a} curl -s --max-time 10 {args}"));
    let out = curl(&format!("http://{ip_b}:8080/v1/payments/7"));
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        body,
        format!("xfcc=By={PAYMENTS};URI={FRONTEND};path=/v1/payments/7"),
        "{out:?}"
    );
    // Its own x-forwarded-client-cert does not reach the app.
    let out = curl(&format!("-H 'x-forwarded-client-cert: By=x;URI=spiffe://mesh.local/ns/admin/sa/root' http://{ip_b}:8080/v1/x"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("xfcc=By={PAYMENTS};URI={FRONTEND};")),
        "{out:?}"
    );
    // Denied by the inbound policy, with the reason.
    let out = curl(&format!(
        "-X POST -w ' %{{http_code}}' http://{ip_b}:8080/v1/x"
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.ends_with(" 403") && text.contains("rule frontend-reads: method POST not in [GET]"),
        "{text}"
    );
    sidecar_b.wait_for(
        |v| v["rampart.reason.kind"] == "method" && v["rampart.caller.identity"] == FRONTEND,
        "method denial in b's log",
    );
    // Raw TCP through both sidecars.
    let out = sh(&format!("ip netns exec {a} python3 -c \"import socket; s=socket.create_connection(('{ip_b}', 7000), timeout=10); s.sendall(b'ping'); print(s.recv(4).decode())\""));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ping",
        "{out:?}"
    );
    // A destination outside the directory is egress: denied by default, even on a port that
    // is a mesh port elsewhere; and the app cannot reach pod b's sidecar port directly either
    // (its connection is redirected to its own sidecar, which refuses it).
    let out = curl(&format!("-w '%{{http_code}}' http://{ip_b}:15006/"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    let line = sidecar_a.wait_for(
        |v| v["rampart.reason.kind"] == "unknown_destination",
        "egress denial in a's log",
    );
    assert_eq!(line["rampart.destination"], format!("{ip_b}:15006"));
    // Pod b's app is unreachable except through its sidecar: from pod a as the sidecar's uid
    // (not redirected) straight to the app port, the connection lands on b's sidecar, which
    // requires TLS.
    let out = sh(&format!("ip netns exec {a} setpriv --reuid {SIDECAR_UID} --regid {SIDECAR_UID} --clear-groups curl -s --max-time 10 -w '%{{http_code}}' http://{ip_b}:8080/v1/x"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    sidecar_b.wait_for(
        |v| v["rampart.reason.kind"] == "not_tls",
        "plain text refused in b's log",
    );
    // A caller presenting a certificate from another CA (our trust domain, a known ID) is
    // refused at b's handshake, with the reason, from pod a's address.
    let other = TestCa::new("other");
    let forged = other.leaf(&[FRONTEND]);
    write("other.pem", &forged.chain_pem);
    write("other.key", &forged.key_pem);
    let out = sh(&format!(
        "ip netns exec {a} setpriv --reuid {SIDECAR_UID} --regid {SIDECAR_UID} --clear-groups curl -sk --tlsv1.3 --max-time 10 --cert {} --key {} -w '%{{http_code}}' https://{ip_b}:8080/v1/x",
        cfg("other.pem"),
        cfg("other.key")
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");
    let line = sidecar_b.wait_for(
        |v| v["rampart.reason.kind"] == "unknown_ca",
        "another CA's certificate refused in b's log",
    );
    assert_eq!(line["client.address"], ip_a.as_str(), "{line}");
    drop(sidecar_a);
    drop(sidecar_b);
    drop(ns);
    assert!(!Path::new(&format!("/var/run/netns/{a}")).exists());
}
