//! `rampart-sidecar`: the command line. Subcommands print what a person must fix; the work
//! lives in the library.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rampart-sidecar: {message}");
            ExitCode::from(2)
        }
    }
}
