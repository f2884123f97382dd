//! One `tracing` setup for every binary: human-readable lines on stderr, filtered by an
//! environment variable, with ANSI colour only when stderr is a terminal (stderr redirected to a
//! file or a pipe gets plain text, not escape codes).

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Installs the global subscriber. `env_var` (e.g. `RAMPART_LOG`) holds an `EnvFilter`
/// directive; when unset or invalid, `default_filter` is used. A second call is a no-op.
pub fn init(env_var: &str, default_filter: &str) {
    init_with(env_var, default_filter, Vec::new());
}

/// [`init`] with more layers beside the stderr one, each with its own filter (the env filter
/// applies to stderr only), e.g. one that counts a noisy library warning instead of printing it.
pub fn init_with(
    env_var: &str,
    default_filter: &str,
    extra: Vec<Box<dyn Layer<Registry> + Send + Sync>>,
) {
    let filter =
        EnvFilter::try_from_env(env_var).unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_filter(filter)
        .boxed();
    let mut layers = vec![stderr];
    layers.extend(extra);
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Whether log lines on stderr should carry colour codes.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal()
}
