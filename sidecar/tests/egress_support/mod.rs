//! Shared by the egress and gateway tests: a destination that records who connected and what
//! it sent first, ClientHellos with a chosen SNI, an explicit-proxy client, a mesh folder with
//! one workload's identity, and the admin `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_dns::testlab::DnsLab;

use crate::support::{write_leaf, TestCa};

pub use crate::support::FRONTEND;
pub const GATEWAY: &str = "spiffe://mesh.local/ns/infra/sa/egress-gateway";
const IO: Duration = Duration::from_secs(10);

/// Connections a [`Recorder`] saw: (peer, first bytes).
type Seen = Arc<Mutex<Vec<(SocketAddr, Vec<u8>)>>>;

/// A TCP destination on `ip` that records each connection's peer address and first bytes,
/// answers `pong` and closes ([`Recorder::start`]); or an HTTP/1.1 origin that records each
/// request head with its connection's peer and answers `200 pong`, keeping the connection
/// open ([`Recorder::start_http`]).
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Seen,
}

/// The answer of an HTTP recorder.
pub const PONG: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong";

impl Recorder {
    pub fn start(ip: IpAddr) -> Recorder {
        Self::start_at(SocketAddr::new(ip, 0))
    }

    pub fn start_at(at: SocketAddr) -> Recorder {
        Self::serve(at, false)
    }

    /// An HTTP/1.1 origin (requests without bodies), one record per request.
    pub fn start_http(ip: IpAddr) -> Recorder {
        Self::serve(SocketAddr::new(ip, 0), true)
    }

    fn serve(at: SocketAddr, http: bool) -> Recorder {
        let l = TcpListener::bind(at).unwrap();
        let addr = l.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let peer = s.peer_addr().unwrap();
                    s.set_read_timeout(Some(IO)).unwrap();
                    let mut buf = Vec::new();
                    let mut chunk = vec![0u8; 16 * 1024];
                    loop {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        buf.extend_from_slice(&chunk[..n]);
                        if !http {
                            record.lock().unwrap().push((peer, buf));
                            let _ = s.write_all(b"pong");
                            return;
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            record.lock().unwrap().push((peer, head));
                            let _ = s.write_all(PONG);
                        }
                        if n == 0 {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { addr, seen }
    }

    /// Every connection so far: (peer, first bytes).
    pub fn seen(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The ClientHello a TLS client sends first, with `sni`.
pub fn client_hello(sni: &str) -> Vec<u8> {
    rampart_egress::testkit::client_hello(sni).unwrap()
}

/// What an explicit-proxy client got.
#[derive(Debug)]
pub struct Proxied {
    /// The proxy's answer head (`HTTP/1.1 200 …` or `HTTP/1.1 403 …` with its headers).
    pub head: String,
    /// Everything after the head until the connection closed.
    pub rest: Vec<u8>,
    /// The client's port (`client.port` in the sidecar's log line).
    pub local_port: u16,
}

impl Proxied {
    pub fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// What an app does for TLS to `name:port` through the explicit proxy: `CONNECT`, then a
/// ClientHello for `name`.
pub fn tls_via(proxy: SocketAddr, name: &str, port: u16) -> Proxied {
    connect_via(proxy, &format!("{name}:{port}"), &client_hello(name))
}

/// [`tls_via`], expecting it carried: `200` and the test destination's `pong`. Returns the
/// ClientHello the destination must have received.
pub fn carried_tls_via(proxy: SocketAddr, name: &str, port: u16) -> Vec<u8> {
    let hello = client_hello(name); // random fields: keep the one sent
    let got = connect_via(proxy, &format!("{name}:{port}"), &hello);
    assert_eq!(got.status(), 200, "{name}: {got:?}");
    assert_eq!(got.rest, b"pong", "{name}: {got:?}");
    hello
}

/// [`tls_via`], expecting it refused: nothing of a destination comes back.
pub fn refused_tls_via(proxy: SocketAddr, name: &str, port: u16) -> Proxied {
    let got = tls_via(proxy, name, port);
    assert!(got.rest.is_empty(), "{name}: {got:?}");
    got
}

/// `CONNECT target` through the proxy at `proxy`, then (after a `200`) `then` inside the
/// tunnel; reads until the connection closes.
pub fn connect_via(proxy: SocketAddr, target: &str, then: &[u8]) -> Proxied {
    let mut s = TcpStream::connect(proxy).unwrap();
    let local_port = s.local_addr().unwrap().port();
    s.set_read_timeout(Some(IO)).unwrap();
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return Proxied {
                head: String::from_utf8_lossy(&buf).into_owned(),
                rest: Vec::new(),
                local_port,
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end..].to_vec();
    if head.starts_with("HTTP/1.1 200") {
        let _ = s.write_all(then);
    }
    let _ = s.read_to_end(&mut rest);
    Proxied {
        head,
        rest,
        local_port,
    }
}

/// A kept-alive client connection (plain TCP, or any stream such as a rustls one): one
/// request, one response (bodies by Content-Length).
pub struct KeepAlive<S: Read + Write = TcpStream>(pub S);

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> KeepAlive {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO)).unwrap();
        KeepAlive(s)
    }

    /// Mutual TLS to `addr` presenting `leaf` (the server must be of `ca`'s trust domain).
    pub fn mtls(
        addr: SocketAddr,
        ca: &TestCa,
        leaf: &crate::support::Leaf,
    ) -> KeepAlive<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(IO)).unwrap();
        let config = crate::support::client_config(ca, Some(leaf));
        let name = rustls_pki_types::ServerName::try_from("egress-gateway").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        KeepAlive(rustls::StreamOwned::new(conn, tcp))
    }
}

impl<S: Read + Write> KeepAlive<S> {
    /// Sends `request` (a head without body) and reads one response: (status, head, body).
    pub fn exchange(&mut self, request: &str) -> (u16, String, Vec<u8>) {
        self.0.write_all(request.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(&buf) {
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= n + len {
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    return (resp.code.unwrap(), head, buf[n..n + len].to_vec());
                }
            }
            let got = self.0.read(&mut chunk).unwrap();
            assert!(
                got > 0,
                "closed before a whole response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..got]);
        }
    }
}

/// Sends raw bytes to `addr` and reads until close (absolute-form requests through the proxy).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// GET `path` on an admin listener.
pub fn admin_get(addr: SocketAddr, path: &str) -> String {
    let out = send_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// A folder holding a CA bundle and SVID files for the given workloads, plus `directory.toml`.
pub struct MeshDir {
    pub dir: tempfile::TempDir,
    pub ca: TestCa,
}

impl MeshDir {
    /// `ids`: (file stem, SPIFFE ID).
    pub fn new(ids: &[(&str, &str)], directory: &str) -> MeshDir {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("mesh");
        std::fs::write(dir.path().join("bundle.pem"), &ca.root_pem).unwrap();
        for (stem, id) in ids {
            write_leaf(dir.path(), stem, &ca.leaf(&[id]));
        }
        std::fs::write(dir.path().join("directory.toml"), directory).unwrap();
        MeshDir { dir, ca }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A sidecar config for `service` with SVID files `STEM.pem`/`STEM.key`, policy
    /// `STEM-policy.toml`, and `extra` appended.
    pub fn config(&self, stem: &str, service: &str, extra: &str) -> PathBuf {
        self.write(
            &format!("{stem}.toml"),
            &format!(
                "service = \"{service}\"\ntrust_domain = \"mesh.local\"\npolicy = \"{stem}-policy.toml\"\n\
                 directory = \"directory.toml\"\nidentity = {{ cert = \"{stem}.pem\", key = \"{stem}.key\", bundle = \"bundle.pem\" }}\n\
                 admin = {{ listen = \"127.0.0.1:0\" }}\n{extra}"
            ),
        )
    }
}

/// The set-up of the gateway tests on loopback: the DNSSEC lab, a destination on 127.0.0.10,
/// a free port for the gateway, and a mesh folder with frontend's and the gateway's identities
/// (and `more`), whose directory names both services.
pub struct GatewaySetup {
    pub lab: DnsLab,
    pub dest: Recorder,
    pub port: u16,
    pub gw_port: u16,
    pub mesh: MeshDir,
}

impl GatewaySetup {
    /// `None` (after saying why) when the DNS lab cannot start here.
    pub fn start(test: &str, more: &[(&str, &str)]) -> Option<GatewaySetup> {
        let lab = match DnsLab::start() {
            Ok(lab) => lab,
            Err(e) => {
                eprintln!("SKIPPED {test}: {e}");
                return None;
            }
        };
        let dest = Recorder::start(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10)));
        let gw_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut ids = vec![("frontend", FRONTEND), ("gateway", GATEWAY)];
        ids.extend_from_slice(more);
        let mesh = MeshDir::new(
            &ids,
            &format!(
                "[[service]]\nname = \"frontend\"\nidentity = \"{FRONTEND}\"\nendpoints = [{{ port = 80, address = \"127.0.0.1:80\" }}]\n\
                 [[service]]\nname = \"egress-gateway\"\nidentity = \"{GATEWAY}\"\nendpoints = [{{ port = 15443, address = \"127.0.0.1:{gw_port}\" }}]\n"
            ),
        );
        Some(GatewaySetup {
            port: dest.addr.port(),
            lab,
            dest,
            gw_port,
            mesh,
        })
    }
}

/// The `[egress]` lines of a config resolving through `lab`, then `extra`.
pub fn lab_resolver(lab: &DnsLab, extra: &str) -> String {
    format!(
        "resolvers = [\"{}\"]\ntrust_anchor = \"{}\"\n{extra}",
        lab.resolver,
        toml_path(&lab.anchor_file)
    )
}

/// Path as a TOML string value.
pub fn toml_path(p: &Path) -> String {
    p.to_str().unwrap().replace('\\', "\\\\")
}
