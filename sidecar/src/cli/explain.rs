//! `rampart-sidecar policy explain --from ID --to SERVICE:PORT [--method M --path P]`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rampart_sidecar::config::{Config, Protocol};
use rampart_sidecar::directory::Directory;
use rampart_sidecar::policy::{Decision, HttpRequest, InboundRequest, Policy, Verdict};
use rampart_tls::spiffe::SpiffeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Side {
    Inbound,
    Outbound,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The sidecar config (gives policy, directory, ports and which side is asked).
    #[arg(long, conflicts_with = "policy")]
    config: Option<PathBuf>,
    /// A policy file, when no config is given.
    #[arg(long, required_unless_present = "config")]
    policy: Option<PathBuf>,
    /// A directory file, when no config is given.
    #[arg(long, requires = "policy")]
    directory: Option<PathBuf>,
    /// The caller's SPIFFE ID (omit to ask about a caller without a client certificate).
    #[arg(long)]
    from: Option<String>,
    /// The callee: SERVICE:PORT.
    #[arg(long, required_unless_present = "egress", conflicts_with = "egress")]
    to: Option<String>,
    /// An egress destination HOST:PORT: decided by the `[egress]` section (or, with `--from
    /// SERVICE`, by the gateway's `[gateway.SERVICE]`), offline, as the data path decides.
    #[arg(long)]
    egress: Option<String>,
    /// HTTP method (HTTP ports).
    #[arg(long)]
    method: Option<String>,
    /// HTTP path (HTTP ports).
    #[arg(long)]
    path: Option<String>,
    /// The caller's source address.
    #[arg(long)]
    source: Option<IpAddr>,
    /// Which side decides; by default inbound when SERVICE is the config's own service,
    /// outbound when the caller is the config's own identity.
    #[arg(long, value_enum)]
    side: Option<Side>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ExplainArgs) -> Result<ExitCode, String> {
    if let Some(dest) = &a.egress {
        return egress(&a, dest);
    }
    let to = a.to.clone().unwrap_or_default();
    let (service, port) = to
        .rsplit_once(':')
        .and_then(|(s, p)| Some((s.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--to {to}: expected SERVICE:PORT"))?;
    let caller = a
        .from
        .as_deref()
        .map(SpiffeId::parse)
        .transpose()
        .map_err(|e| format!("--from: {e}"))?;
    let config = config(&a)?;
    let (policy_path, directory_path) = match &config {
        Some(c) => (c.policy.clone(), Some(c.directory.clone())),
        None => (a.policy.clone().unwrap_or_default(), a.directory.clone()),
    };
    let policy = Policy::load(&policy_path).map_err(|e| e.to_string())?;
    let directory = directory_path
        .as_deref()
        .map(Directory::load)
        .transpose()
        .map_err(|e| e.to_string())?;

    let side = match (a.side, &config, &directory) {
        (Some(side), _, _) => side,
        (None, Some(c), _) if c.service == service => Side::Inbound,
        (None, Some(c), Some(d)) => {
            let own = d.service(&c.service).map(|s| &s.identity);
            if caller.is_some() && own == caller.as_ref() {
                Side::Outbound
            } else {
                return Err(format!(
                    "this config is for service `{}`: ask about calls to it (--to {}:PORT) or from its identity{}; or say --side",
                    c.service,
                    c.service,
                    own.map(|i| format!(" (--from {i})")).unwrap_or_default()
                ));
            }
        }
        (None, _, _) => Side::Inbound,
    };

    let decision: Decision = match side {
        Side::Inbound => {
            let http_port = config
                .as_ref()
                .and_then(|c| c.inbound_port(port))
                .map(|p| p.protocol == Protocol::Http);
            let wants_http = a.method.is_some() || a.path.is_some();
            if http_port == Some(true) && !wants_http {
                return Err(format!(
                    "port {port} is an HTTP port: give --method and --path"
                ));
            }
            if http_port == Some(false) && wants_http {
                return Err(format!(
                    "port {port} is a TCP port: --method and --path do not apply"
                ));
            }
            let method = a.method.clone().unwrap_or_else(|| "GET".into());
            let path = a.path.clone().unwrap_or_else(|| "/".into());
            let path = path.split(['?', '#']).next().unwrap_or("/").to_string();
            policy.inbound(&InboundRequest {
                caller: caller.as_ref(),
                port,
                source: a.source,
                http: wants_http.then_some(HttpRequest {
                    method: &method,
                    path: &path,
                }),
            })
        }
        Side::Outbound => {
            let directory = directory
                .ok_or("outbound questions need the directory (--config or --directory)")?;
            policy.outbound_to(&directory, &service, port)
        }
    };
    if a.json {
        let text = serde_json::to_string_pretty(&decision).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print_human(&decision);
    }
    Ok(if decision.verdict == Verdict::Deny {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--egress HOST:PORT [--from SERVICE]`.
fn egress(a: &ExplainArgs, dest: &str) -> Result<ExitCode, String> {
    let config = config(a)?;
    let path = match &config {
        Some(c) => c.policy.clone(),
        None => a.policy.clone().unwrap_or_default(),
    };
    let policy = Policy::load(&path).map_err(|e| e.to_string())?;
    let (allowed, text) = rampart_sidecar::policy::explain_egress::run(
        &policy,
        config.as_ref(),
        a.from.as_deref(),
        dest,
        a.json,
    )?;
    print!("{text}");
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_human(d: &Decision) {
    println!(
        "decision: {} ({})",
        d.verdict.as_str(),
        d.direction.as_str()
    );
    println!("policy:   {} {}", d.policy.file, d.policy.version);
    match (&d.rule, d.verdict) {
        (Some(r), Verdict::Allow) => println!(
            "rule:     {} (set {}, {} mode, line {})",
            r.rule,
            r.set,
            mode_name(r.mode),
            r.line
        ),
        (Some(r), _) => println!(
            "closest:  {} (set {}, {} mode, line {})",
            r.rule,
            r.set,
            mode_name(r.mode),
            r.line
        ),
        (None, _) => {}
    }
    if let Some(reason) = d.reason_text() {
        println!("reason:   {reason}");
    }
    if d.verdict == Verdict::AuditDeny {
        println!("note:     audit mode: this would be denied, the traffic passes");
    }
    if let Some(audit) = &d.audit {
        if audit.verdict == Verdict::AuditDeny {
            let rule = audit
                .rule
                .as_ref()
                .map(|r| format!("rule {}: ", r.rule))
                .unwrap_or_default();
            let reason = audit
                .reason
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default();
            println!("audit:    an audit set would deny: {rule}{reason}");
        }
    }
    println!("summary:  {d}");
}

fn mode_name(mode: rampart_sidecar::policy::Mode) -> &'static str {
    match mode {
        rampart_sidecar::policy::Mode::Enforce => "enforce",
        rampart_sidecar::policy::Mode::Audit => "audit",
    }
}

/// The `--config` file, loaded, if one was given.
fn config(a: &ExplainArgs) -> Result<Option<Config>, String> {
    a.config
        .as_deref()
        .map(Config::load)
        .transpose()
        .map_err(|e| e.to_string())
}
