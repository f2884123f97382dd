//! The operator's configuration file: TOML model, loading with located errors, validation and
//! the warnings `check` prints for weak choices.
//!
//! The model is extended per route by adding optional tables to [`RouteConfig`] (issue 4 adds
//! `waf` and `limits` there); every table uses `deny_unknown_fields` so a typo is an error.

mod model;
mod types;
mod validate;

pub use model::*;
pub use rampart_ops::config::line_of_path;
pub use types::{Cidr, HostPattern, HostPort};
pub use validate::{validate, warnings};

use std::path::Path;

pub use rampart_ops::config::ConfigError;

/// Reads, parses and validates a config file. Relative paths inside it are resolved against the
/// file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and validates config text; `path` is used for error messages and relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut config: Config = rampart_ops::config::parse_toml(path, text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.resolve_paths(base);
    validate(&config)
        .map_err(|issue| rampart_ops::config::invalid(path, text, &issue.path, issue.message))?;
    Ok(config)
}

/// A validation problem found after parsing: where (a key path) and what.
#[derive(Debug, Clone)]
pub struct Issue {
    pub path: Vec<String>,
    pub message: String,
}

impl Issue {
    pub fn new(path: &[&str], message: impl Into<String>) -> Self {
        Issue {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_example_is_valid() {
        let text = include_str!("../../../examples/rampart.toml");
        let c = parse(Path::new("/etc/rampart/rampart.toml"), text).unwrap();
        assert_eq!(c.listeners.len(), 3);
        assert!(warnings(&c).iter().any(|w| w.contains("csrf_token")));
    }

    #[test]
    fn typed_values_are_refused_at_their_line() {
        let text = include_str!("../../../examples/rampart.toml");
        for (from, to, field) in [
            ("hosts = [", "hosts = [\"bad host\", ", "routes.0.hosts.0"),
            (
                "endpoints = [",
                "endpoints = [\"app\", ",
                "upstreams.0.endpoints.0",
            ),
            (
                "trusted_proxies = [",
                "trusted_proxies = [\"10.0.0/8\", ",
                "server.trusted_proxies.0",
            ),
        ] {
            assert!(text.contains(from), "the example has `{from}`");
            let bad = text.replacen(from, to, 1);
            let line = bad.lines().position(|l| l.contains(to)).unwrap() + 1;
            let e = parse(Path::new("r.toml"), &bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("r.toml:{line}: `{field}`: ")), "{e}");
        }
    }

    #[test]
    fn bench_examples_are_valid() {
        for (name, text) in [
            (
                "edge-bench.toml",
                include_str!("../../../examples/bench/edge-bench.toml"),
            ),
            (
                "edge-flood.toml",
                include_str!("../../../examples/bench/edge-flood.toml"),
            ),
        ] {
            let c = parse(Path::new(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                c.routes
                    .iter()
                    .all(|r| r.waf.mode == model::WafMode::Block && r.waf.paranoia == 1),
                "{name}: WAF blocks at paranoia 1"
            );
        }
    }
}
