//! `rampart-sidecar init-redirect`: the iptables rules that send a workload's traffic through
//! its sidecar, installed in the workload's network namespace before the app starts (as
//! linkerd-init and istio-init do).
//!
//! - Inbound: TCP to each app port arriving from outside is redirected (nat PREROUTING) to the
//!   transparent inbound listener; the sidecar reads the app port from `SO_ORIGINAL_DST`.
//! - Outbound: TCP the workload opens (nat OUTPUT) is redirected to the transparent outbound
//!   listener, except the sidecar's own connections (matched by its uid, so they are not
//!   looped back) and loopback traffic (the sidecar talking to the app).
//!
//! A workload able to change its namespace's rules or open raw sockets can bypass a sidecar:
//! back the redirect with a network policy that only admits the sidecar's ports (see
//! docs/sidecar.md).

use crate::config::Config;

/// Chain names (one per direction, flushed and refilled on every run, so the step is
/// idempotent).
pub const INBOUND_CHAIN: &str = "RAMPART_INBOUND";
/// The outbound chain.
pub const OUTBOUND_CHAIN: &str = "RAMPART_OUTBOUND";
/// The egress filter chain (filter OUTPUT): with `[egress]` configured, whatever the
/// redirect does not capture (UDP, ICMP, other protocols) may not leave the workload.
pub const EGRESS_CHAIN: &str = "RAMPART_EGRESS";

/// One iptables invocation (arguments after `iptables`), and whether a failure is expected
/// when the thing already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Arguments.
    pub args: Vec<String>,
    /// `true` for `-N` (chain exists on a re-run) and for `-C` probes.
    pub may_fail: bool,
}

fn step(args: &[&str], may_fail: bool) -> Step {
    Step {
        args: args.iter().map(|a| a.to_string()).collect(),
        may_fail,
    }
}

/// The steps for a config; `proxy_uid` is the uid the sidecar runs as.
pub fn steps(config: &Config, proxy_uid: u32) -> Result<Vec<Step>, String> {
    if config.inbound_transparent.is_none() && config.outbound_transparent.is_none() {
        return Err(
            "the config sets neither inbound.transparent_listen nor outbound.transparent_listen: nothing to redirect"
                .into(),
        );
    }
    let mut out = Vec::new();
    if let Some(listen) = config.inbound_transparent {
        let to = listen.port().to_string();
        out.push(step(&["-t", "nat", "-N", INBOUND_CHAIN], true));
        out.push(step(&["-t", "nat", "-F", INBOUND_CHAIN], false));
        for p in &config.inbound {
            let port = p.port.to_string();
            out.push(step(
                &[
                    "-t",
                    "nat",
                    "-A",
                    INBOUND_CHAIN,
                    "-p",
                    "tcp",
                    "--dport",
                    &port,
                    "-j",
                    "REDIRECT",
                    "--to-ports",
                    &to,
                ],
                false,
            ));
        }
        out.push(step(
            &[
                "-t",
                "nat",
                "-D",
                "PREROUTING",
                "-p",
                "tcp",
                "-j",
                INBOUND_CHAIN,
            ],
            true,
        ));
        out.push(step(
            &[
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-p",
                "tcp",
                "-j",
                INBOUND_CHAIN,
            ],
            false,
        ));
    }
    if let Some(listen) = config.outbound_transparent {
        let to = listen.port().to_string();
        let uid = proxy_uid.to_string();
        out.push(step(&["-t", "nat", "-N", OUTBOUND_CHAIN], true));
        out.push(step(&["-t", "nat", "-F", OUTBOUND_CHAIN], false));
        out.push(step(
            &[
                "-t",
                "nat",
                "-A",
                OUTBOUND_CHAIN,
                "-m",
                "owner",
                "--uid-owner",
                &uid,
                "-j",
                "RETURN",
            ],
            false,
        ));
        out.push(step(
            &[
                "-t",
                "nat",
                "-A",
                OUTBOUND_CHAIN,
                "-o",
                "lo",
                "-j",
                "RETURN",
            ],
            false,
        ));
        out.push(step(
            &[
                "-t",
                "nat",
                "-A",
                OUTBOUND_CHAIN,
                "-p",
                "tcp",
                "-j",
                "REDIRECT",
                "--to-ports",
                &to,
            ],
            false,
        ));
        out.push(step(
            &[
                "-t",
                "nat",
                "-D",
                "OUTPUT",
                "-p",
                "tcp",
                "-j",
                OUTBOUND_CHAIN,
            ],
            true,
        ));
        out.push(step(
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-j",
                OUTBOUND_CHAIN,
            ],
            false,
        ));
    }
    if config.egress.is_some() {
        out.extend(egress_steps(config, proxy_uid)?);
    }
    Ok(out)
}

/// The egress filter (`[egress]` configured): every TCP connection of the workload is already
/// redirected to the sidecar (nat OUTPUT), which decides it as egress (or mesh traffic); this
/// chain drops what the redirect cannot capture, so the workload cannot go around its sidecar
/// (or the egress gateway behind it) with UDP, ICMP or raw sockets. It lets through the
/// sidecar's own traffic (by uid), loopback destinations (where redirected connections go), and plain DNS
/// to the configured resolvers, so the app can still look names up.
fn egress_steps(config: &Config, proxy_uid: u32) -> Result<Vec<Step>, String> {
    if config.outbound_transparent.is_none() {
        return Err(
            "[egress] with transparent capture needs outbound.transparent_listen: without the redirect, the workload's egress does not reach the sidecar"
                .into(),
        );
    }
    let uid = proxy_uid.to_string();
    let mut out = vec![
        step(&["-t", "filter", "-N", EGRESS_CHAIN], true),
        step(&["-t", "filter", "-F", EGRESS_CHAIN], false),
        step(
            &[
                "-t",
                "filter",
                "-A",
                EGRESS_CHAIN,
                "-m",
                "owner",
                "--uid-owner",
                &uid,
                "-j",
                "RETURN",
            ],
            false,
        ),
        // Redirected connections: the filter hook still sees the pre-redirect output device
        // (`-o lo` does not match them), but their destination is already the loopback one.
        step(
            &[
                "-t",
                "filter",
                "-A",
                EGRESS_CHAIN,
                "-d",
                "127.0.0.0/8",
                "-j",
                "RETURN",
            ],
            false,
        ),
    ];
    for r in config.egress.iter().flat_map(|e| &e.resolvers) {
        if !r.is_ipv4() || r.ip().is_loopback() {
            continue;
        }
        let (ip, port) = (r.ip().to_string(), r.port().to_string());
        out.push(step(
            &[
                "-t",
                "filter",
                "-A",
                EGRESS_CHAIN,
                "-p",
                "udp",
                "-d",
                &ip,
                "--dport",
                &port,
                "-j",
                "RETURN",
            ],
            false,
        ));
    }
    out.extend([
        step(&["-t", "filter", "-A", EGRESS_CHAIN, "-j", "REJECT"], false),
        step(&["-t", "filter", "-D", "OUTPUT", "-j", EGRESS_CHAIN], true),
        step(&["-t", "filter", "-A", "OUTPUT", "-j", EGRESS_CHAIN], false),
    ]);
    Ok(out)
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

    #[test]
    fn redirects_app_ports_in_and_everything_but_the_sidecar_out() {
        let c = config(
            "[inbound]\ntransparent_listen = \"0.0.0.0:15006\"\n[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\n[outbound]\ntransparent_listen = \"127.0.0.1:15001\"\n",
        );
        let lines: Vec<String> = steps(&c, 1337)
            .unwrap()
            .iter()
            .map(|s| s.args.join(" "))
            .collect();
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
        let lines: Vec<String> = steps(&c, 1337)
            .unwrap()
            .iter()
            .map(|s| s.args.join(" "))
            .collect();
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
    fn nothing_to_redirect_is_an_error() {
        let c = config("[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(steps(&c, 0).unwrap_err().contains("transparent_listen"));
    }
}
