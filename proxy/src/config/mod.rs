//! The operator's configuration file: TOML model, loading with located errors, validation and
//! the warnings `check` prints for weak choices.
//!
//! The model is extended per route by adding optional tables to [`RouteConfig`] (issue 4 adds
//! `waf` and `limits` there); every table uses `deny_unknown_fields` so a typo is an error.

mod locate;
mod model;
mod validate;

pub use locate::line_of_path;
pub use model::*;
pub use validate::{validate, warnings};

use std::path::{Path, PathBuf};

/// A configuration error that names the file, the line and the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

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
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        ConfigError::Parse {
            file: path.to_path_buf(),
            line,
            message: e.message().to_string(),
        }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.resolve_paths(base);
    validate(&config).map_err(|issue| ConfigError::Invalid {
        file: path.to_path_buf(),
        line: line_of_path(text, &issue.path),
        key: issue.path.join("."),
        message: issue.message,
    })?;
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
