//! `rampart-sidecar init-redirect`: the iptables and ip6tables rules that send a workload's
//! traffic through its sidecar, installed in the workload's network namespace before the app
//! starts (as linkerd-init and istio-init do). Every rule is installed for IPv4 (`iptables`)
//! and IPv6 (`ip6tables`) alike, so IPv6 cannot go around the sidecar.
//!
//! - Inbound: TCP to each app port arriving from outside is redirected (nat PREROUTING) to the
//!   transparent inbound listener; the sidecar reads the app port from `SO_ORIGINAL_DST`
//!   (`IP6T_SO_ORIGINAL_DST` for IPv6).
//! - Outbound: TCP the workload opens (nat OUTPUT) is redirected to the transparent outbound
//!   listener, except the sidecar's own connections (matched by its uid, so they are not
//!   looped back) and loopback traffic (the sidecar talking to the app). IPv6 connections are
//!   redirected to `[::1]` (or the incoming interface's address inbound): the sidecar listens
//!   on the IPv6 counterpart of each transparent listener ([`ipv6_counterpart`]).
//!
//! A namespace with IPv6 active but no working `ip6tables` is refused (fail closed): the
//! IPv6 half of the rules would be missing. A namespace where IPv6 is disabled gets the IPv4
//! rules only, and says so.
//!
//! A workload able to change its namespace's rules or open raw sockets can bypass a sidecar:
//! back the redirect with a network policy that only admits the sidecar's ports (see
//! docs/sidecar.md).

use std::net::{Ipv6Addr, SocketAddr};

use crate::config::Config;

/// Chain names (one per direction, flushed and refilled on every run, so the step is
/// idempotent).
pub const INBOUND_CHAIN: &str = "RAMPART_INBOUND";
/// The outbound chain.
pub const OUTBOUND_CHAIN: &str = "RAMPART_OUTBOUND";
/// The egress filter chain (filter OUTPUT): with `[egress]` configured, whatever the
/// redirect does not capture (UDP, ICMP, other protocols) may not leave the workload.
pub const EGRESS_CHAIN: &str = "RAMPART_EGRESS";

/// The address family a rule is for: which program installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `iptables`.
    V4,
    /// `ip6tables`.
    V6,
}

impl Family {
    /// The program that installs this family's rules.
    pub fn program(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    /// The loopback network of this family.
    fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }
}

/// One iptables/ip6tables invocation (arguments after the program), and whether a failure is
/// expected when the thing already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which program runs it.
    pub family: Family,
    /// Arguments.
    pub args: Vec<String>,
    /// `true` for `-N` (chain exists on a re-run) and for `-D` of a rule that may be absent.
    pub may_fail: bool,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.family.program(), self.args.join(" "))
    }
}

/// The IPv6 listener that stands beside a transparent IPv4 listener on the same port: the
/// ip6tables REDIRECT sends IPv6 connections to `[::1]` (outbound, from `127.0.0.1`) or to the
/// incoming interface's address (inbound, from `0.0.0.0` → `[::]`). `None` when `listen` is
/// already IPv6 (it serves IPv6 itself) or a specific IPv4 address.
pub fn ipv6_counterpart(listen: SocketAddr) -> Option<SocketAddr> {
    match listen {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => {
            Some(SocketAddr::from((Ipv6Addr::LOCALHOST, v4.port())))
        }
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            Some(SocketAddr::from((Ipv6Addr::UNSPECIFIED, v4.port())))
        }
        _ => None,
    }
}

/// Binds the IPv6 counterpart of a transparent listener bound at `bound` (same port, IPv6
/// only, so it never competes with the IPv4 one). `Ok(None)` when there is none or when IPv6
/// is not available here (then there is no IPv6 traffic to capture either).
pub fn bind_ipv6_counterpart(bound: SocketAddr) -> Result<Option<tokio::net::TcpListener>, String> {
    let Some(at) = ipv6_counterpart(bound) else {
        return Ok(None);
    };
    if !ipv6_active() {
        return Ok(None);
    }
    let fail = |e: std::io::Error| format!("cannot listen on {at} (IPv6 beside {bound}): {e}");
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    );
    let socket = socket.map_err(fail)?;
    socket.set_only_v6(true).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    match socket.bind(&at.into()) {
        Ok(()) => {}
        // No IPv6 in this namespace (no ::1, or IPv6 disabled).
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => return Ok(None),
        Err(e) => return Err(fail(e)),
    }
    socket.listen(1024).map_err(fail)?;
    tokio::net::TcpListener::from_std(socket.into())
        .map(Some)
        .map_err(fail)
}

/// Whether IPv6 is active in this network namespace (the kernel lists IPv6 addresses).
pub fn ipv6_active() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| !t.trim().is_empty())
}

/// Runs `steps` (prints each; `dry_run` only prints). IPv6 steps when IPv6 is not active in
/// this namespace are skipped with a note; when it is active and `ip6tables` is missing or
/// fails, this fails (IPv6 would otherwise bypass the sidecar).
pub fn install(steps: &[Step], dry_run: bool) -> Result<(), String> {
    let v6 = dry_run || ipv6_active();
    if !v6 {
        println!(
            "# IPv6 is disabled in this network namespace: IPv4 rules only (enable IPv6 later and \
             init-redirect must run again, or IPv6 goes around the sidecar)"
        );
    }
    for step in steps {
        if step.family == Family::V6 && !v6 {
            continue;
        }
        println!("{step}");
        if dry_run {
            continue;
        }
        let program = step.family.program();
        let out = std::process::Command::new(program)
            .args(&step.args)
            .output()
            .map_err(|e| match step.family {
                Family::V4 => format!("cannot run iptables (install the `iptables` package): {e}"),
                Family::V6 => format!(
                    "cannot run ip6tables ({e}), and IPv6 is active in this network namespace: \
                     without the IPv6 rules the workload's IPv6 traffic would bypass the sidecar. \
                     Install ip6tables (Debian package `iptables`), or disable IPv6 in the pod \
                     (sysctl net.ipv6.conf.all.disable_ipv6=1) and run init-redirect again"
                ),
            })?;
        if !out.status.success() && !step.may_fail {
            return Err(format!(
                "{step} failed: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                if step.family == Family::V6 {
                    " (IPv6 is active in this namespace: refusing to leave it uncaptured)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

/// The steps for a config, IPv4 then IPv6; `proxy_uid` is the uid the sidecar runs as.
pub fn steps(config: &Config, proxy_uid: u32) -> Result<Vec<Step>, String> {
    if config.inbound_transparent.is_none() && config.outbound_transparent.is_none() {
        return Err(
            "the config sets neither inbound.transparent_listen nor outbound.transparent_listen: nothing to redirect"
                .into(),
        );
    }
    if config.egress.is_some() && config.outbound_transparent.is_none() {
        return Err(
            "[egress] with transparent capture needs outbound.transparent_listen: without the redirect, the workload's egress does not reach the sidecar"
                .into(),
        );
    }
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        family_steps(config, proxy_uid, family, &mut out);
    }
    Ok(out)
}

/// One family's rules (the same for both: only the loopback network and the resolvers of the
/// family differ, and IPv6 lets neighbour discovery out).
fn family_steps(config: &Config, proxy_uid: u32, family: Family, out: &mut Vec<Step>) {
    // One rule per line; `-N` fails when the chain exists (a re-run) and `-D` when the jump is
    // absent (a first run): both are expected, the `-F` and `-A` after them are not.
    let mut add = |line: &str| {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let may_fail = matches!(args.get(2).map(String::as_str), Some("-N" | "-D"));
        out.push(Step {
            family,
            args,
            may_fail,
        })
    };
    let uid = proxy_uid;
    if let Some(listen) = config.inbound_transparent {
        let to = listen.port();
        add(&format!("-t nat -N {INBOUND_CHAIN}"));
        add(&format!("-t nat -F {INBOUND_CHAIN}"));
        for p in &config.inbound {
            add(&format!(
                "-t nat -A {INBOUND_CHAIN} -p tcp --dport {} -j REDIRECT --to-ports {to}",
                p.port
            ));
        }
        add(&format!("-t nat -D PREROUTING -p tcp -j {INBOUND_CHAIN}"));
        add(&format!("-t nat -A PREROUTING -p tcp -j {INBOUND_CHAIN}"));
    }
    if let Some(listen) = config.outbound_transparent {
        let to = listen.port();
        add(&format!("-t nat -N {OUTBOUND_CHAIN}"));
        add(&format!("-t nat -F {OUTBOUND_CHAIN}"));
        add(&format!(
            "-t nat -A {OUTBOUND_CHAIN} -m owner --uid-owner {uid} -j RETURN"
        ));
        add(&format!("-t nat -A {OUTBOUND_CHAIN} -o lo -j RETURN"));
        add(&format!(
            "-t nat -A {OUTBOUND_CHAIN} -p tcp -j REDIRECT --to-ports {to}"
        ));
        add(&format!("-t nat -D OUTPUT -p tcp -j {OUTBOUND_CHAIN}"));
        add(&format!("-t nat -A OUTPUT -p tcp -j {OUTBOUND_CHAIN}"));
    }
    let Some(egress) = &config.egress else {
        return;
    };
    // The egress filter (`[egress]` configured): every TCP connection of the workload is
    // already redirected to the sidecar (nat OUTPUT), which decides it as egress (or mesh
    // traffic); this chain drops what the redirect cannot capture, so the workload cannot go
    // around its sidecar (or the egress gateway behind it) with UDP, ICMP or raw sockets. It
    // lets through the sidecar's own traffic (by uid), loopback destinations (where redirected
    // connections go: the filter hook still sees the pre-redirect output device, so `-o lo`
    // does not match them, but their destination is already the loopback one), plain DNS to
    // the configured resolvers of the family, and for IPv6 neighbour and router discovery
    // (what ARP does for IPv4, which iptables does not see).
    add(&format!("-t filter -N {EGRESS_CHAIN}"));
    add(&format!("-t filter -F {EGRESS_CHAIN}"));
    add(&format!(
        "-t filter -A {EGRESS_CHAIN} -m owner --uid-owner {uid} -j RETURN"
    ));
    add(&format!(
        "-t filter -A {EGRESS_CHAIN} -d {} -j RETURN",
        family.loopback()
    ));
    if family == Family::V6 {
        for kind in [
            "neighbour-solicitation",
            "neighbour-advertisement",
            "router-solicitation",
        ] {
            add(&format!(
                "-t filter -A {EGRESS_CHAIN} -p ipv6-icmp --icmpv6-type {kind} -j RETURN"
            ));
        }
    }
    for r in &egress.resolvers {
        if r.is_ipv4() != (family == Family::V4) || r.ip().is_loopback() {
            continue;
        }
        add(&format!(
            "-t filter -A {EGRESS_CHAIN} -p udp -d {} --dport {} -j RETURN",
            r.ip(),
            r.port()
        ));
    }
    add(&format!("-t filter -A {EGRESS_CHAIN} -j REJECT"));
    add(&format!("-t filter -D OUTPUT -j {EGRESS_CHAIN}"));
    add(&format!("-t filter -A OUTPUT -j {EGRESS_CHAIN}"));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::SourceFile;

    fn config(extra: &str) -> Config {
        let text = format!(
            "service = \"payments\"\ntrust_domain = \"mesh.local\"\npolicy = \"p\"\ndirectory = \"d\"\nidentity = {{ cert = \"c\", key = \"k\", bundle = \"b\" }}\n{extra}"
        );
        Config::from_source(SourceFile::from_text(Path::new("c.toml"), text)).unwrap()
    }

    /// The rules of one family, one line each (arguments only).
    fn lines(c: &Config, family: Family) -> Vec<String> {
        steps(c, 1337)
            .unwrap()
            .iter()
            .filter(|s| s.family == family)
            .map(|s| s.args.join(" "))
            .collect()
    }

    #[test]
    fn redirects_app_ports_in_and_everything_but_the_sidecar_out() {
        let c = config(
            "[inbound]\ntransparent_listen = \"0.0.0.0:15006\"\n[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\n[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n",
        );
        let lines = lines(&c, Family::V4);
        assert!(
            lines.contains(
                &"-t nat -A RAMPART_INBOUND -p tcp --dport 8080 -j REDIRECT --to-ports 15006"
                    .to_string()
            ),
            "{lines:#?}"
        );
        assert!(lines.contains(
            &"-t nat -A RAMPART_OUTBOUND -m owner --uid-owner 1337 -j RETURN".to_string()
        ));
        let uid_skip = lines
            .iter()
            .position(|l| l.contains("--uid-owner"))
            .unwrap();
        let redirect = lines
            .iter()
            .position(|l| l.contains("--to-ports 15001"))
            .unwrap();
        assert!(
            uid_skip < redirect,
            "the sidecar's own traffic must be skipped before the redirect"
        );
        assert!(lines.contains(&"-t nat -A OUTPUT -p tcp -j RAMPART_OUTBOUND".to_string()));
    }

    #[test]
    fn egress_filters_what_the_redirect_cannot_capture() {
        let c = config(
            "[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n[egress]\nresolvers = [\"10.0.0.53:53\", \"127.0.0.1:53\"]\n",
        );
        let lines = lines(&c, Family::V4);
        let at = |l: &str| {
            lines
                .iter()
                .position(|x| x == l)
                .unwrap_or_else(|| panic!("{l} not in {lines:#?}"))
        };
        let uid = at("-t filter -A RAMPART_EGRESS -m owner --uid-owner 1337 -j RETURN");
        let lo = at("-t filter -A RAMPART_EGRESS -d 127.0.0.0/8 -j RETURN");
        let dns = at("-t filter -A RAMPART_EGRESS -p udp -d 10.0.0.53 --dport 53 -j RETURN");
        let reject = at("-t filter -A RAMPART_EGRESS -j REJECT");
        assert!(uid < reject && lo < reject && dns < reject);
        assert!(reject < at("-t filter -A OUTPUT -j RAMPART_EGRESS"));
        assert!(!lines.iter().any(|l| l.contains("127.0.0.1 --dport 53")));
        // Without egress, no filter rules (the mesh-only setup is unchanged).
        let c = config("[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n");
        assert!(!steps(&c, 1337)
            .unwrap()
            .iter()
            .any(|s| s.args.contains(&"filter".to_string())));
    }

    #[test]
    fn ipv6_gets_the_same_redirect_and_filter() {
        let c = config(
            "[inbound]\ntransparent_listen = \"0.0.0.0:15006\"\n[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\n[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n[egress]\nresolvers = [\"10.0.0.53:53\", \"[fd00::53]:53\"]\n",
        );
        let all = steps(&c, 1337).unwrap();
        let (v4, v6) = (lines(&c, Family::V4), lines(&c, Family::V6));
        // The same rules for both families, but for loopback, resolvers and neighbour discovery.
        let common =
            |l: &&String| !l.contains("-d ") && !l.contains("icmpv6") && !l.contains("--dport 53");
        assert_eq!(
            v4.iter().filter(common).collect::<Vec<_>>(),
            v6.iter().filter(common).collect::<Vec<_>>()
        );
        for l in [
            "-t nat -A RAMPART_OUTBOUND -m owner --uid-owner 1337 -j RETURN",
            "-t nat -A RAMPART_OUTBOUND -p tcp -j REDIRECT --to-ports 15001",
            "-t nat -A RAMPART_INBOUND -p tcp --dport 8080 -j REDIRECT --to-ports 15006",
            "-t filter -A RAMPART_EGRESS -d ::1/128 -j RETURN",
            "-t filter -A RAMPART_EGRESS -p udp -d fd00::53 --dport 53 -j RETURN",
            "-t filter -A RAMPART_EGRESS -p ipv6-icmp --icmpv6-type neighbour-solicitation -j RETURN",
            "-t filter -A RAMPART_EGRESS -j REJECT",
            "-t filter -A OUTPUT -j RAMPART_EGRESS",
        ] {
            assert!(v6.iter().any(|x| x == l), "{l} not in {v6:#?}");
        }
        assert!(!v6
            .iter()
            .any(|l| l.contains("10.0.0.53") || l.contains("127.0.0.0/8")));
        assert!(!v4
            .iter()
            .any(|l| l.contains("fd00::53") || l.contains("icmpv6")));
        assert!(all.iter().any(|s| s
            .to_string()
            .starts_with("ip6tables -t filter -A RAMPART_EGRESS")));
        // The IPv6 listeners beside the IPv4 ones.
        assert_eq!(
            ipv6_counterpart("127.0.0.1:15001".parse().unwrap()),
            Some("[::1]:15001".parse().unwrap())
        );
        assert_eq!(
            ipv6_counterpart("0.0.0.0:15006".parse().unwrap()),
            Some("[::]:15006".parse().unwrap())
        );
        assert_eq!(ipv6_counterpart("10.1.2.3:15006".parse().unwrap()), None);
        assert_eq!(ipv6_counterpart("[::1]:15001".parse().unwrap()), None);
    }

    #[test]
    fn nothing_to_redirect_is_an_error() {
        let c = config("[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(steps(&c, 0).unwrap_err().contains("transparent_listen"));
    }
}
