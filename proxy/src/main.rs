#![forbid(unsafe_code)]
//! `rampart-proxy run|check|demo|audit dnssec`.

use clap::{Parser, Subcommand};
use rampart_proxy::demo::Ports;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: Pingora and the filters allocate and free many small
/// objects per request, and access-log records are freed on another thread than the one that
/// allocated them. Measured on the edge benchmark: see the commit that introduced it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rampart-proxy", version, about = "Rampart edge reverse proxy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a config file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file (and its certificates), print warnings for weak choices.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a self-contained demo on loopback: a careless upstream behind the edge.
    Demo {
        /// Directory for the demo's CA, certificates, config and logs (a temp dir by default).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Loopback port of the edge's TLS listener.
        #[arg(long, default_value_t = Ports::DEFAULT.tls)]
        tls_port: u16,
        /// Loopback port of the plain listener (it redirects to https).
        #[arg(long, default_value_t = Ports::DEFAULT.http)]
        http_port: u16,
        /// Loopback port of the admin endpoint (/metrics).
        #[arg(long, default_value_t = Ports::DEFAULT.admin)]
        admin_port: u16,
    },
    /// Audits of what the edge serves.
    Audit {
        #[command(subcommand)]
        what: Audit,
    },
}

#[derive(Subcommand)]
enum Audit {
    /// S.N.11: is the zone of every host name the edge serves signed, and does it validate?
    /// Prints each name secure / insecure / bogus / failed with the reason; fails unless all
    /// are secure.
    Dnssec {
        #[arg(long, short)]
        config: PathBuf,
        /// Validating resolver(s) to ask, ip:port (default: the nameservers of /etc/resolv.conf).
        #[arg(long)]
        resolver: Vec<std::net::SocketAddr>,
        /// DNSKEY trust anchor file (default: the root KSKs built into hickory).
        #[arg(long)]
        trust_anchor: Option<PathBuf>,
        /// One JSON object per name.
        #[arg(long)]
        json: bool,
    },
}

/// Handshake failures from scanners and probes are routine at an edge; they are counted in
/// metrics rather than logged one by one.
const DEFAULT_LOG: &str =
    "warn,pingora_core::services::listening=off,pingora_core::protocols=error";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => rampart_proxy::server::run(&config),
        Command::Check { config } => check(&config),
        Command::Demo {
            dir,
            tls_port,
            http_port,
            admin_port,
        } => rampart_proxy::demo::run(
            dir,
            Ports {
                tls: tls_port,
                http: http_port,
                admin: admin_port,
            },
        ),
        Command::Audit {
            what:
                Audit::Dnssec {
                    config,
                    resolver,
                    trust_anchor,
                    json,
                },
        } => match rampart_proxy::dnssec_audit::run(&config, resolver, trust_anchor, json) {
            Ok(true) => Ok(()),
            Ok(false) => Err("not every name is DNSSEC-secure (see above)".to_string()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-proxy: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> Result<(), String> {
    let config = rampart_proxy::config::load(path).map_err(|e| e.to_string())?;
    rampart_proxy::tls::install_crypto_provider();
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            rampart_proxy::tls::load_cert_set(&t.certificates)
                .map_err(|e| format!("listener `{}`: {e}", l.name))?;
        }
    }
    rampart_proxy::runtime::Runtime::build(config.clone())?;
    for w in rampart_proxy::config::warnings(&config) {
        println!("warning: {w}");
    }
    println!("{}: ok", path.display());
    Ok(())
}
