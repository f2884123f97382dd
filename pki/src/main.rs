//! `rampart-pki`: the Rampart CA command line.
#![forbid(unsafe_code)]

mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc, as the edge does: a renewal allocates
/// and frees many small objects (rustls records, DER, JSON), and the audit
/// records are freed on the writer thread, not the one that built them.
/// Measured in docs/measurements/pki.md.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
