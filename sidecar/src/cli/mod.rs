//! Subcommands of `rampart-sidecar`.

mod check;
mod demo;
mod explain;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Rampart mesh sidecar.
#[derive(Debug, Parser)]
#[command(name = "rampart-sidecar", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install the iptables and ip6tables rules of transparent mode in this network namespace (run as root,
    /// before the app starts). Prints each command; `--dry-run` only prints.
    InitRedirect {
        /// The sidecar config file.
        #[arg(long)]
        config: PathBuf,
        /// The uid the sidecar runs as: its own connections are not redirected.
        #[arg(long)]
        proxy_uid: u32,
        /// Print the commands without running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// The CA and three workloads (frontend -> payments -> ledger) behind their sidecars on
    /// loopback, with the commands that show an allowed call, a denial and its explanation, a
    /// caller without a certificate, a dry-run denial and a reload cutting a connection.
    Demo {
        /// An empty or new folder for the CA, configs and logs (default: a new temp folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the sidecar.
    Run {
        /// The sidecar config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Validate a sidecar config with its policy and directory; warn on rules that can never
    /// match or that admit the whole trust domain. Exit 0 when it would load, 1 with
    /// `--strict` and warnings, 2 on errors.
    Check {
        /// The sidecar config file.
        #[arg(long)]
        config: PathBuf,
        /// Treat warnings as failures.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Decide one call and say why. Exit 0 when it passes (allow or audit), 3 when denied.
    Explain(explain::ExplainArgs),
}

/// Runs a parsed command line; `Err` is a message for the user (exit 2).
pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::Policy {
            command: PolicyCommand::Explain(a),
        } => explain::run(a),
        Command::Check { config, strict } => check::run(&config, strict),
        Command::InitRedirect {
            config,
            proxy_uid,
            dry_run,
        } => init_redirect(&config, proxy_uid, dry_run),
        Command::Demo { dir } => demo::run(dir),
        Command::Run { config } => {
            // Diagnostics (reloads, drain) on stderr, colour only on a terminal; the JSON
            // connection log is on stdout.
            rampart_ops::logging::init("RAMPART_LOG", "info");
            let config =
                rampart_sidecar::config::Config::load(&config).map_err(|e| e.to_string())?;
            let runtime = runtime_builder(config.threads)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            runtime.block_on(rampart_sidecar::runtime::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_redirect(config: &std::path::Path, uid: u32, dry_run: bool) -> Result<ExitCode, String> {
    let config = rampart_sidecar::config::Config::load(config).map_err(|e| e.to_string())?;
    let steps = rampart_sidecar::redirect::steps(&config, uid)?;
    rampart_sidecar::redirect::install(&steps, dry_run)?;
    Ok(ExitCode::SUCCESS)
}

/// `threads = 1`: tokio's current-thread runtime (every connection on the thread that waits for
/// the sockets: no hand-off between threads); more: a multi-thread runtime with that many workers.
fn runtime_builder(threads: u16) -> tokio::runtime::Builder {
    if threads <= 1 {
        return tokio::runtime::Builder::new_current_thread();
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(usize::from(threads));
    b
}
