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
    fn nothing_to_redirect_is_an_error() {
        let c = config("[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:8080\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(steps(&c, 0).unwrap_err().contains("transparent_listen"));
    }
}
