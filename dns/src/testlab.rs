//! A DNSSEC lab on loopback, for the tests of this crate and of the crates built on it.
//!
//! Generates its own keys and zones in a temporary directory and starts, on free loopback ports:
//! - Knot (`knotd`), authoritative for
//!   - `test.`        the parent, signed by Knot (its DNSKEY is the trust anchor of the lab),
//!     delegating `signed.test` and `bogus.test` with DS records and `plain.test` without;
//!   - `signed.test`  signed by Knot (ECDSA P-256 CSK, NSEC);
//!   - `bogus.test`   signed offline by `ldns-signzone`, then its A records altered (served as-is),
//!     so every validator must call `www.bogus.test` bogus;
//!   - `plain.test`   unsigned (insecure: `test.` proves there is no DS);
//! - Unbound, validating, with the DS of `test.` as its one trust anchor and stubs to Knot (the
//!   root too, so nothing ever leaves loopback).
//!
//! Records (TTL 2 s unless said):
//! `signed.test`: apex, www, api, deep.api, alias (CNAME www) → 127.0.0.10; lo → 127.0.0.1;
//! meta → 169.254.169.254; meta6 → fd00:ec2::254 (AAAA); private → 10.0.0.1;
//! mixed → 127.0.0.10 and 169.254.169.254; rebind → 127.0.0.10 (TTL 1 s, see [`DnsLab::set_a`]).
//! `plain.test`: www → 127.0.0.10. `bogus.test`: www → 127.0.0.10, served as 127.0.0.66.
//!
//! Needs the Debian packages knot (knotd, keymgr, knotc), unbound and ldnsutils; see
//! [`DnsLab::missing_tools`]. The processes are killed when the lab is dropped.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::resolver::{ResolverConfig, TrustAnchor};

/// The lab could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("DNS lab tools missing: {0:?} (Debian packages knot, unbound, ldnsutils; scripts/ensure-deps.sh installs them)")]
    Missing(Vec<&'static str>),
    #[error("DNS lab: {0}")]
    Start(String),
}

/// Knot + Unbound on loopback, with generated zones and keys.
pub struct DnsLab {
    dir: tempfile::TempDir,
    /// Knot, authoritative (no validation, no recursion): what a non-validating upstream sees.
    pub auth: SocketAddr,
    /// Unbound, validating.
    pub resolver: SocketAddr,
    /// The DNSKEY of `test.` in "name TTL IN DNSKEY ..." form (hickory trust anchor file).
    pub anchor_file: PathBuf,
    knot: Option<Child>,
    unbound: Option<Child>,
    /// The network namespace the servers run in ([`DnsLab::start_in_netns`]).
    netns: Option<String>,
}

const TOOLS: [&str; 6] = [
    "knotd",
    "knotc",
    "keymgr",
    "unbound",
    "ldns-signzone",
    "ldns-keygen",
];

impl DnsLab {
    /// Tools the lab needs that are not on PATH (or in /usr/sbin).
    pub fn missing_tools() -> Vec<&'static str> {
        TOOLS
            .iter()
            .copied()
            .filter(|t| which(t).is_none())
            .collect()
    }

    /// Generates zones and keys, starts Knot and Unbound, and waits (bounded) until Unbound
    /// validates `www.signed.test`.
    pub fn start() -> Result<DnsLab, LabError> {
        let missing = Self::missing_tools();
        if !missing.is_empty() {
            return Err(LabError::Missing(missing));
        }
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(lab) => return Ok(lab),
                Err(e) => last = e.to_string(),
            }
        }
        Err(LabError::Start(last))
    }

    /// [`DnsLab::start`] for a test: `None` (after printing `SKIP:` and what to install) when
    /// the lab's tools are missing; any other failure to start panics with the reason.
    pub fn start_or_skip() -> Option<DnsLab> {
        match Self::start() {
            Ok(l) => Some(l),
            Err(LabError::Missing(tools)) => {
                eprintln!(
                    "SKIP: DNS lab tools not installed: {tools:?} (run scripts/ensure-deps.sh as root)"
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// [`DnsLab::start`] inside the network namespace `name` (an `ip netns` name, made by the
    /// caller with `lo` up): Knot and Unbound listen on that namespace's loopback, so a process
    /// started in it (`ip netns exec`) resolves through [`DnsLab::resolver`]; from anywhere else
    /// they cannot be reached. Needs root. The lab's own queries (readiness, [`DnsLab::set_a`])
    /// run in that namespace too.
    pub fn start_in_netns(name: &str) -> Result<DnsLab, LabError> {
        let mut lab = in_netns(name, Self::start)??;
        lab.netns = Some(name.to_string());
        Ok(lab)
    }

    fn try_start() -> Result<DnsLab, LabError> {
        let dir = tempfile::Builder::new()
            .prefix("rampart-dnslab-")
            .tempdir()
            .map_err(|e| err("tempdir", e))?;
        let d = dir.path();
        let knot_port = free_port()?;
        let unbound_port = free_port()?;
        let auth = SocketAddr::from((Ipv4Addr::LOCALHOST, knot_port));
        let resolver = SocketAddr::from((Ipv4Addr::LOCALHOST, unbound_port));
        for sub in ["zones", "kasp", "ldns"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| err("mkdir", e))?;
        }
        let conf = d.join("knot.conf");
        write(&conf, &knot_conf(d, auth))?;

        // Keys: Knot's for test. and signed.test (made offline with keymgr), ldns's for bogus.test.
        for zone in ["test.", "signed.test."] {
            run(Command::new(tool("keymgr")?).args([
                "-c",
                path_str(&conf)?,
                zone,
                "generate",
                "algorithm=ecdsap256sha256",
                "ksk=yes",
                "zsk=yes",
            ]))?;
        }
        let signed_ds = run(Command::new(tool("keymgr")?).args([
            "-c",
            path_str(&conf)?,
            "signed.test.",
            "ds",
        ]))?;
        let test_ds =
            run(Command::new(tool("keymgr")?).args(["-c", path_str(&conf)?, "test.", "ds"]))?;
        let test_dnskey =
            run(Command::new(tool("keymgr")?).args(["-c", path_str(&conf)?, "test.", "dnskey"]))?;
        let bogus_ds = sign_bogus(d)?;

        // Zones.
        let mut parent = String::from(
            "$ORIGIN test.\n$TTL 2\n@ SOA ns.test. hostmaster.test. 1 60 60 3600 2\n@ NS ns.test.\nns A 127.0.0.1\n\
             signed NS ns.test.\nbogus NS ns.test.\nplain NS ns.test.\n",
        );
        for line in signed_ds.lines().chain(bogus_ds.lines()) {
            // keymgr: "signed.test. DS 1234 13 2 abcd"; ldns: "bogus.test.\tIN\tDS\t1234 13 2 abcd".
            // Keep the SHA-256 digests (type 2).
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(i) = f.iter().position(|t| *t == "DS") else {
                continue;
            };
            if f.len() == i + 5 && f[i + 3] == "2" {
                let _ = writeln!(parent, "{} 2 IN DS {}", f[0], f[i + 1..].join(" "));
            }
        }
        if parent.matches(" IN DS ").count() != 2 {
            return Err(LabError::Start(format!(
                "expected the DS of signed.test and bogus.test, got:\n{signed_ds}\n{bogus_ds}"
            )));
        }
        write(&d.join("zones/test.zone"), &parent)?;
        write(
            &d.join("zones/signed.test.zone"),
            "$ORIGIN signed.test.\n$TTL 2\n@ SOA ns.test. hostmaster.test. 1 60 60 3600 2\n@ NS ns.test.\n\
             @ A 127.0.0.10\nwww A 127.0.0.10\napi A 127.0.0.10\ndeep.api A 127.0.0.10\n\
             alias CNAME www.signed.test.\nlo A 127.0.0.1\nmeta A 169.254.169.254\n\
             meta6 AAAA fd00:ec2::254\nprivate A 10.0.0.1\nmixed A 127.0.0.10\nmixed A 169.254.169.254\n\
             rebind 1 A 127.0.0.10\n",
        )?;
        write(
            &d.join("zones/plain.test.zone"),
            "$ORIGIN plain.test.\n$TTL 2\n@ SOA ns.test. hostmaster.test. 1 60 60 3600 2\n@ NS ns.test.\n\
             www A 127.0.0.10\n",
        )?;

        // Trust anchors: hickory wants "name TTL IN DNSKEY ...", Unbound takes the DS inline.
        let dnskey = test_dnskey
            .lines()
            .find(|l| l.contains("DNSKEY") && l.contains(" 257 "))
            .ok_or_else(|| LabError::Start(format!("no KSK in keymgr output: {test_dnskey}")))?;
        let anchor_file = d.join("test.anchor");
        write(
            &anchor_file,
            &format!("{}\n", dnskey.replacen(" DNSKEY ", " 300 IN DNSKEY ", 1)),
        )?;
        let anchor_ds = test_ds
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("2"))
            .ok_or_else(|| LabError::Start(format!("no DS for test.: {test_ds}")))?;
        write(
            &d.join("unbound.conf"),
            &unbound_conf(d, resolver, auth, anchor_ds),
        )?;

        let knot = Command::new(tool("knotd")?)
            .args(["-c", path_str(&conf)?])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| err("spawn knotd", e))?;
        let mut lab = DnsLab {
            dir,
            auth,
            resolver,
            anchor_file,
            knot: Some(knot),
            unbound: None,
            netns: None,
        };
        let signed = lab.wait(auth, "signed.test.", RecordType::SOA, |m| {
            m.answers
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG)
        });
        let parent = lab.wait(auth, "signed.test.", RecordType::DS, |m| {
            m.answers
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG)
        });
        if !(signed && parent) {
            return Err(LabError::Start(format!(
                "knotd on {auth} did not serve the signed zones within 20 s; log:\n{}",
                lab.log("knot.log")
            )));
        }
        let unbound = Command::new(tool("unbound")?)
            .args(["-d", "-c", path_str(&lab.dir.path().join("unbound.conf"))?])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| err("spawn unbound", e))?;
        lab.unbound = Some(unbound);
        let validated = lab.wait(resolver, "www.signed.test.", RecordType::A, |m| {
            m.metadata.authentic_data && m.metadata.response_code == ResponseCode::NoError
        });
        if !validated {
            return Err(LabError::Start(format!(
                "unbound on {resolver} did not validate www.signed.test within 20 s; log:\n{}",
                lab.log("unbound.log")
            )));
        }
        Ok(lab)
    }

    /// A resolver configuration for this lab: upstream Unbound, the lab's anchor, short
    /// timeouts, no cache floor (tests see TTL changes at once).
    pub fn resolver_config(&self) -> ResolverConfig {
        let mut c = ResolverConfig::new(vec![self.resolver]);
        c.trust_anchor = TrustAnchor::File(self.anchor_file.clone());
        c.timeout = Duration::from_secs(2);
        // A lost datagram on a loaded machine must not turn into a verdict: hickory reports a
        // DNSKEY/DS fetch that timed out as bogus.
        c.attempts = 3;
        c.cache_floor = Duration::ZERO;
        c.cache_ceiling = Duration::from_secs(30);
        c
    }

    /// Replaces the A records of `owner` (a name in `signed.test.`) with `ip`, through a Knot
    /// zone transaction (Knot re-signs), and waits until Knot serves the new data.
    pub fn set_a(&self, owner: &str, ip: Ipv4Addr, ttl: u32) -> Result<(), LabError> {
        let sock = self.dir.path().join("knot.sock");
        let knotc = |args: &[&str]| -> Result<String, LabError> {
            let mut c = Command::new(tool("knotc")?);
            c.arg("-s").arg(&sock).args(args);
            run(&mut c)
        };
        let zone = "signed.test.";
        knotc(&["zone-begin", zone])?;
        let ttl_s = ttl.to_string();
        let ip_s = ip.to_string();
        let r = knotc(&["zone-unset", zone, owner, "A"])
            .and_then(|_| knotc(&["zone-set", zone, owner, &ttl_s, "A", &ip_s]))
            .and_then(|_| knotc(&["zone-commit", zone]));
        if r.is_err() {
            let _ = knotc(&["zone-abort", zone]);
        }
        r?;
        let want = ip;
        let fqdn = if owner.ends_with('.') {
            owner.to_string()
        } else {
            format!("{owner}.{zone}")
        };
        if self.wait(self.auth, &fqdn, RecordType::A, |m| {
            m.answers
                .iter()
                .any(|r| r.data.ip_addr() == Some(want.into()))
        }) {
            Ok(())
        } else {
            Err(LabError::Start(format!("knot did not serve {fqdn} A {ip}")))
        }
    }

    /// Stops the validating resolver (the "resolver down" case).
    pub fn stop_resolver(&mut self) {
        if let Some(mut c) = self.unbound.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `server` (at most 20 s) until `ok` holds for its answer to `name type`.
    fn wait(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        ok: impl Fn(&Message) -> bool + Send,
    ) -> bool {
        if let Some(ns) = &self.netns {
            // A thread of our own enters the namespace, so the query reaches its loopback.
            return in_netns(ns, || poll(server, name, rtype, ok)).unwrap_or(false);
        }
        poll(server, name, rtype, ok)
    }
}

/// Runs `f` on a thread of its own that first enters the network namespace `ns`
/// (`/var/run/netns/NAME`, as `ip netns` makes them); processes it spawns live in that
/// namespace too.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let fd = std::fs::File::open(&path).map_err(|e| err("open netns", e))?;
                nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| err("setns", e))?;
                Ok(f())
            })
            .join()
            .map_err(|_| LabError::Start(format!("the thread in netns {ns} panicked")))?
    })
}

/// Polls `server` (at most 20 s) until `ok` holds for its answer to `name type`.
fn poll(server: SocketAddr, name: &str, rtype: RecordType, ok: impl Fn(&Message) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(m) = query_sync(server, name, rtype) {
            if ok(&m) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

impl Drop for DnsLab {
    fn drop(&mut self) {
        for c in [self.unbound.take(), self.knot.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One blocking UDP query with DO set (and RD), 500 ms timeout.
pub fn query_sync(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    query_sync_flags(server, name, rtype, false)
}

/// [`query_sync`] with Checking Disabled: the resolver answers even data that does not validate.
pub fn query_sync_cd(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    query_sync_flags(server, name, rtype, true)
}

fn query_sync_flags(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    checking_disabled: bool,
) -> Option<Message> {
    let msg = crate::resolver::dnssec_query(Name::from_ascii(name).ok()?, rtype, checking_disabled);
    let bytes = msg.to_vec().ok()?;
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    sock.connect(server).ok()?;
    sock.send(&bytes).ok()?;
    let mut buf = vec![0u8; 65_535];
    let n = sock.recv(&mut buf).ok()?;
    let reply = Message::from_vec(buf.get(..n)?).ok()?;
    (reply.metadata.id == msg.metadata.id).then_some(reply)
}

fn sign_bogus(d: &Path) -> Result<String, LabError> {
    let ldns = d.join("ldns");
    let zone = ldns.join("bogus.test.zone");
    write(
        &zone,
        "$ORIGIN bogus.test.\n$TTL 2\n@ SOA ns.test. hostmaster.test. 1 60 60 3600 2\n@ NS ns.test.\n\
         www A 127.0.0.10\n",
    )?;
    let keygen = |ksk: bool| -> Result<String, LabError> {
        let mut c = Command::new(tool("ldns-keygen")?);
        c.current_dir(&ldns).args(["-a", "ECDSAP256SHA256"]);
        if ksk {
            c.arg("-k");
        }
        c.arg("bogus.test");
        Ok(run(&mut c)?.trim().to_string())
    };
    let ksk = keygen(true)?;
    let zsk = keygen(false)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| err("clock", e))?
        .as_secs();
    let out = ldns.join("bogus.signed");
    run(Command::new(tool("ldns-signzone")?)
        .current_dir(&ldns)
        .args([
            "-i",
            &(now - 3600).to_string(),
            "-e",
            &(now + 30 * 86_400).to_string(),
            "-f",
            path_str(&out)?,
            path_str(&zone)?,
            &zsk,
            &ksk,
        ]))?;
    // The sabotage: change the A data after signing, so RRSIG A no longer matches.
    let signed = std::fs::read_to_string(&out).map_err(|e| err("read signed zone", e))?;
    let mut tampered = 0;
    let text: String = signed
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 5 && f[0] == "www.bogus.test." && f[3] == "A" && f[4] == "127.0.0.10" {
                tampered += 1;
                format!("{}\t{}\tIN\tA\t127.0.0.66\n", f[0], f[1])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    if tampered != 1 {
        return Err(LabError::Start(format!(
            "tampering bogus.test changed {tampered} records, expected 1"
        )));
    }
    write(&d.join("zones/bogus.test.zone.signed"), &text)?;
    std::fs::read_to_string(ldns.join(format!("{ksk}.ds"))).map_err(|e| err("read bogus DS", e))
}

fn knot_conf(d: &Path, listen: SocketAddr) -> String {
    let d = d.display();
    format!(
        "server:\n    rundir: {d}\n    listen: {ip}@{port}\n\
         control:\n    listen: {d}/knot.sock\n\
         log:\n  - target: {d}/knot.log\n    any: info\n\
         database:\n    storage: {d}\n    kasp-db: {d}/kasp\n\
         policy:\n  - id: csk\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n    manual: on\n    nsec3: off\n\
         template:\n  - id: default\n    storage: {d}/zones\n    zonefile-sync: -1\n    journal-content: none\n\
         zone:\n\
         \x20 - domain: test\n    file: test.zone\n    dnssec-signing: on\n    dnssec-policy: csk\n\
         \x20 - domain: signed.test\n    file: signed.test.zone\n    dnssec-signing: on\n    dnssec-policy: csk\n\
         \x20 - domain: plain.test\n    file: plain.test.zone\n\
         \x20 - domain: bogus.test\n    file: bogus.test.zone.signed\n",
        ip = listen.ip(),
        port = listen.port(),
    )
}

fn unbound_conf(d: &Path, listen: SocketAddr, auth: SocketAddr, anchor_ds: &str) -> String {
    let d = d.display();
    format!(
        "server:\n    interface: {ip}@{port}\n    port: {port}\n    do-ip6: no\n    username: \"\"\n    chroot: \"\"\n\
         \x20   directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    logfile: \"{d}/unbound.log\"\n    use-syslog: no\n\
         \x20   verbosity: {verbosity}\n    val-log-level: 2\n    num-threads: 1\n    so-reuseport: no\n\
         \x20   access-control: 127.0.0.0/8 allow\n    do-not-query-localhost: no\n\
         \x20   module-config: \"validator iterator\"\n    trust-anchor: \"{anchor}\"\n\
         \x20   local-zone: \"test.\" nodefault\n    cache-max-ttl: 1\n    cache-max-negative-ttl: 1\n\
         \x20   qname-minimisation: no\n    ede: yes\n\
         remote-control:\n    control-enable: no\n\
         stub-zone:\n    name: \"test.\"\n    stub-addr: {aip}@{aport}\n\
         # one stub per child zone too: Knot hosts them all, so a referral names ns.test, whose\n\
         # address Unbound would then ask on port 53 (nothing there) until the delegation expires\n\
         stub-zone:\n    name: \"signed.test.\"\n    stub-addr: {aip}@{aport}\n\
         stub-zone:\n    name: \"bogus.test.\"\n    stub-addr: {aip}@{aport}\n\
         stub-zone:\n    name: \"plain.test.\"\n    stub-addr: {aip}@{aport}\n\
         # everything else goes to Knot too (which refuses it): nothing leaves loopback\n\
         stub-zone:\n    name: \".\"\n    stub-addr: {aip}@{aport}\n",
        ip = listen.ip(),
        port = listen.port(),
        anchor = anchor_ds.trim(),
        aip = auth.ip(),
        aport = auth.port(),
        verbosity = std::env::var("RAMPART_DNSLAB_UNBOUND_VERBOSITY")
            .ok()
            .and_then(|v| v.parse::<u8>().ok())
            .unwrap_or(1),
    )
}

fn free_port() -> Result<u16, LabError> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| err("bind", e))?;
        let port = udp.local_addr().map_err(|e| err("bind", e))?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(LabError::Start("no free loopback port".into()))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

fn tool(name: &str) -> Result<PathBuf, LabError> {
    which(name).ok_or_else(|| LabError::Start(format!("{name} not found")))
}

fn run(cmd: &mut Command) -> Result<String, LabError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(&format!("{cmd:?}"), e))?;
    if !out.status.success() {
        return Err(LabError::Start(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|e| err(&format!("write {}", path.display()), e))
}

fn path_str(p: &Path) -> Result<&str, LabError> {
    p.to_str()
        .ok_or_else(|| LabError::Start(format!("non-UTF-8 path {}", p.display())))
}

fn err(what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Start(format!("{what}: {e}"))
}
