//! One `tracing` setup for every binary: human-readable lines on stderr, filtered by an
//! environment variable, with ANSI colour only when stderr is a terminal (stderr redirected to a
//! file or a pipe gets plain text, not escape codes).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `env_var` (e.g. `RAMPART_LOG`) holds an `EnvFilter`
/// directive; when unset or invalid, `default_filter` is used. A second call is a no-op.
pub fn init(env_var: &str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env(env_var).unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_env_filter(filter)
        .try_init();
}

/// Whether log lines on stderr should carry colour codes.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal()
}
