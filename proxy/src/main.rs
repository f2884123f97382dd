#![forbid(unsafe_code)]
//! `rampart-proxy run|check|audit dnssec` (the loopback demo is the `rampart-proxy-demo` binary).

use clap::{Parser, Subcommand};
use rampart_proxy::error::EdgeError;
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

fn main() -> ExitCode {
    rampart_ops::logging::init_with(
        "RAMPART_LOG",
        rampart_proxy::control::server::DEFAULT_LOG,
        vec![rampart_proxy::tls::client_hello_log::ClientHelloWarnings::layer()],
    );
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => {
            rampart_proxy::control::allocator::exec_with_defaults();
            rampart_proxy::control::server::run(&config).map_err(|e| e.to_string())
        }
        Command::Check { config } => check(&config).map_err(|e| e.to_string()),
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

fn check(path: &std::path::Path) -> Result<(), EdgeError> {
    let config = rampart_proxy::config::load(path)?;
    rampart_proxy::tls::install_crypto_provider();
    // Offline: certificate files are read, certificates from the CA are not asked for.
    rampart_proxy::runtime::Runtime::build(config.clone(), None)?;
    for w in rampart_proxy::config::warnings(&config) {
        println!("warning: {w}");
    }
    println!("{}: ok", path.display());
    Ok(())
}
