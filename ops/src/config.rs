//! Config and policy files: TOML read into `serde` types (with `deny_unknown_fields`, so a typo
//! is an error), with every error naming the file, the line and the field.
//!
//! Parse errors (the text does not fit the types: unknown key, wrong type, bad value rejected by
//! a newtype's `Deserialize`) carry the line of the offending text and the field path found by
//! `serde_path_to_error`. Checks that need the whole value (cross-references: a route naming an
//! upstream that does not exist) run after parsing and report through [`invalid`], which finds
//! the line of a key path in the text.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Conf { port: u16 }
//! let e = rampart_ops::config::parse_toml::<Conf>("a.toml".as_ref(), "port = 1\nprot = 2\n")
//!     .err().unwrap();
//! assert!(e.to_string().starts_with("a.toml:2: `prot`: unknown field `prot`"), "{e}");
//! ```

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a config file was refused. The `Display` form is `file:line: `field`: message`, ready to
/// print for the person who has to fix the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}", file = file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not fit the config's types.
    #[error("{}", Located { file, line: *line, field, message })]
    Parse {
        file: PathBuf,
        line: usize,
        /// Dotted key path, array items by index (`routes.2.upstream`); empty at the top level.
        field: String,
        message: String,
    },
    /// The values parsed but do not fit together (checked after parsing).
    #[error("{}", Located { file, line: *line, field, message })]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::Parse { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }
}

struct Located<'a> {
    file: &'a Path,
    line: usize,
    field: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        f.write_str(self.message)
    }
}

/// The range a number read from a config file may take, so that no value a file can hold
/// reaches arithmetic that overflows (`Instant + Duration`, `Duration + Duration`, a counter
/// times two), an allocation sized by the file, or a rate of zero. Each field names its range
/// where it is checked at load; an out-of-range value is refused there, with the field.
///
/// ```
/// use rampart_ops::config::Bounds;
/// const PEEK: Bounds = Bounds::new(1, 3600, "s");
/// assert_eq!(PEEK.secs("peek_timeout_secs", 10).unwrap().as_secs(), 10);
/// let e = PEEK.check("peek_timeout_secs", u64::MAX).unwrap_err();
/// assert_eq!(e, "peek_timeout_secs = 18446744073709551615 is out of range: give 1 to 3600 s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Smallest value accepted.
    pub min: u64,
    /// Largest value accepted.
    pub max: u64,
    /// Unit named in the error (`"s"`, `"ms"`, `"bytes"`, `""`).
    pub unit: &'static str,
}

impl Bounds {
    /// `min..=max`, in `unit`.
    pub const fn new(min: u64, max: u64, unit: &'static str) -> Self {
        Bounds { min, max, unit }
    }

    /// `value` if it is in range, else a message naming `field`, the value and the range.
    pub fn check<T: Copy + TryInto<u64> + fmt::Display>(
        &self,
        field: &str,
        value: T,
    ) -> Result<T, String> {
        let fits = value
            .try_into()
            .is_ok_and(|v: u64| (self.min..=self.max).contains(&v));
        if !fits {
            let unit = if self.unit.is_empty() { "" } else { " " };
            return Err(format!(
                "{field} = {value} is out of range: give {} to {}{unit}{}",
                self.min, self.max, self.unit
            ));
        }
        Ok(value)
    }

    /// Checks each `(field, value, range)` of `section`; the first out of range is the error
    /// (`section.field = value is out of range: …`).
    pub fn check_all(section: &str, checks: &[(&str, u64, Bounds)]) -> Result<(), String> {
        checks.iter().try_for_each(|(field, value, range)| {
            range.check(&format!("{section}.{field}"), *value).map(drop)
        })
    }

    /// [`Bounds::check`] of a number of seconds, as a `Duration`.
    pub fn secs(&self, field: &str, value: u64) -> Result<Duration, String> {
        self.check(field, value).map(Duration::from_secs)
    }

    /// [`Bounds::check`] of a number of milliseconds, as a `Duration`.
    pub fn millis(&self, field: &str, value: u64) -> Result<Duration, String> {
        self.check(field, value).map(Duration::from_millis)
    }
}

/// The certificate lifetime a sidecar or the edge may ask the CA for (`ttl_secs`,
/// `ttl_seconds`): 1 s (tests renew every few seconds) to 90 days, the CA's longest
/// (`rampart-pki` checks they agree).
pub const SVID_TTL_SECS: Bounds = Bounds::new(1, 90 * 86_400, "s");

/// Reads `path` and parses it as `T`. Returns the text too, for [`invalid`] errors found later.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Parses TOML `text` as `T`; `path` only names the file in errors.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = dotted(e.path());
        let inner = e.into_inner();
        let line = match inner.span() {
            Some(span) => line_at(text, span.start),
            None if field.is_empty() => 1,
            None => line_of_path(text, &split_path(&field)),
        };
        ConfigError::Parse {
            file: path.to_path_buf(),
            line,
            field,
            message: inner.message().trim_end().to_string(),
        }
    })
}

/// An error for a value that parsed but is refused by a check done afterwards. `key` is the key
/// path (`["routes", "0", "upstream"]`); the line is found in `text`.
pub fn invalid(path: &Path, text: &str, key: &[String], message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: path.to_path_buf(),
        line: line_of_path(text, key),
        field: key.join("."),
        message: message.into(),
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_at(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        let part = match seg {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.clone(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => continue,
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&part);
    }
    out
}

fn split_path(dotted: &str) -> Vec<String> {
    dotted.split('.').map(str::to_string).collect()
}

/// Line number (1-based) of `path` in `text`: the line of the value the path names, found by
/// walking the parsed document's spans (a number indexes an array or an array of tables; dotted
/// keys, `[a.b]` sub-tables and inline tables all resolve). A path only partly written (a field
/// left at its default) falls back to the deepest table or value that is written, then to 1.
pub fn line_of_path(text: &str, path: &[String]) -> usize {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return 1;
    };
    let mut item = doc.as_item();
    let mut at = None;
    for part in path {
        let next = match part.parse::<usize>() {
            Ok(i) => item.get(i).or_else(|| item.get(part)),
            Err(_) => item.get(part),
        };
        let Some(next) = next else { break };
        item = next;
        at = item.span().map(|s| s.start).or(at);
    }
    at.map_or(1, |at| line_at(text, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_in_nth_array_table() {
        let text = "[[routes]]\nname = \"a\"\nupstream = \"x\"\n\n[[routes]]\nname = \"b\"\nupstream = \"y\"\n";
        let path = vec!["routes".to_string(), "1".into(), "upstream".into()];
        assert_eq!(line_of_path(text, &path), 7);
        let path = vec!["routes".to_string(), "0".into(), "name".into()];
        assert_eq!(line_of_path(text, &path), 2);
    }

    fn at(text: &str, dotted: &str) -> usize {
        line_of_path(text, &split_path(dotted))
    }

    /// Each value at its own line, however the file nests it (sub-table headers that name a
    /// prefix of the path, arrays of tables inside arrays of tables, dotted keys, inline
    /// tables); a longer key sharing the field's prefix is not taken for it.
    #[test]
    fn finds_the_value_line_of_nested_paths() {
        let text = "\
name = \"x\"                       # 1
[protect.connections]              # 2
max_per_ip_connections = 5         # 3
max_connections = 10               # 4
[protect.rate_limit]               # 5
burst = 2                          # 6
max_keys = 100                     # 7
[protect.rate_limit.routes.api]    # 8
rps = 3                            # 9
[[upstreams]]                      # 10
name = \"a\"                       # 11
[upstreams.health]                 # 12
eject_after = 3                    # 13
[[upstreams]]                      # 14
name = \"b\"                       # 15
health = { eject_after = 4, eject_seconds = 9 }  # 16
[[routes]]                         # 17
waf.mode = \"block\"               # 18
[[routes]]                         # 19
[routes.waf]                       # 20
paranoia = 2                       # 21
[[routes.waf.exclusions]]          # 22
rule = 1                           # 23
[[routes.waf.exclusions]]          # 24
rule = 2                           # 25
ports = [                          # 26
  80,                              # 27
  443,                             # 28
]                                  # 29
";
        assert_eq!(at(text, "protect.connections.max_connections"), 4);
        assert_eq!(at(text, "protect.connections.max_per_ip_connections"), 3);
        assert_eq!(at(text, "protect.rate_limit.max_keys"), 7);
        assert_eq!(at(text, "protect.rate_limit.routes.api.rps"), 9);
        assert_eq!(at(text, "upstreams.0.health.eject_after"), 13);
        assert_eq!(at(text, "upstreams.1.health.eject_seconds"), 16);
        assert_eq!(at(text, "upstreams.1.name"), 15);
        assert_eq!(at(text, "routes.0.waf.mode"), 18);
        assert_eq!(at(text, "routes.1.waf.paranoia"), 21);
        assert_eq!(at(text, "routes.1.waf.exclusions.1.rule"), 25);
        assert_eq!(at(text, "routes.1.waf.exclusions.0"), 22);
        assert_eq!(at(text, "routes.1.waf.exclusions.1.ports.1"), 28);
        // Not written (left at its default): the deepest table or array that is.
        assert_eq!(at(text, "protect.rate_limit.window_secs"), 5);
        assert_eq!(at(text, "upstreams.0.health.eject_seconds"), 12);
        assert_eq!(at(text, "routes.1.waf.exclusions.7.rule"), 22);
        assert_eq!(at(text, "protect.shed.max"), 1);
        assert_eq!(at(text, "nothing"), 1);
    }

    #[test]
    fn follows_nested_arrays_of_tables_and_implied_tables() {
        let text = "[[l]]\nname = \"a\"\n[l.tls]\n[[l.tls.c]]\nk = { t = 1 }\n[[l.tls.c]]\nk = { t = 2 }\n\
                    [[l]]\nname = \"b\"\n[l.tls]\n[[l.tls.c]]\nk = { t = 3 }\n[p.h2]\nmax = 1\n\
                    [p.routes.\"api.v1\"]\nrps = 2\n";
        assert_eq!(at(text, "l.0.tls.c.1.k.t"), 7);
        assert_eq!(at(text, "l.0.tls.c.0.k"), 5);
        assert_eq!(at(text, "l.1.tls.c.0.k"), 12);
        assert_eq!(at(text, "l.1.name"), 9);
        assert_eq!(at(text, "l.0.tls.c.2.k"), 4); // no third: the array of the first two
        assert_eq!(at(text, "p.h2.max"), 14);
        assert_eq!(at(text, "p.h2"), 13);
        assert_eq!(at(text, "nowhere.x"), 1);
        // A quoted key holding a dot is one segment.
        let path = ["p", "routes", "api.v1", "rps"].map(String::from);
        assert_eq!(line_of_path(text, &path), 16);
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        name: String,
        #[serde(default)]
        routes: Vec<Route>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Route {
        name: String,
        port: u16,
    }

    fn err(text: &str) -> String {
        parse_toml::<Conf>(Path::new("conf.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let e = err("name = \"x\"\n[[routes]]\nname = \"a\"\nport = 1\n[[routes]]\nname = \"b\"\nprot = 2\n");
        assert!(
            e.starts_with("conf.toml:7: `routes.1.prot`: unknown field `prot`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let e = err("name = \"x\"\n[[routes]]\nname = \"a\"\nport = 70000\n");
        assert!(e.starts_with("conf.toml:4: `routes.0.port`: "), "{e}");
    }

    #[test]
    fn missing_field_names_the_table() {
        let e = err("name = \"x\"\n[[routes]]\nname = \"a\"\n");
        assert!(e.contains("missing field `port`"), "{e}");
        assert!(e.starts_with("conf.toml:2:"), "{e}");
    }

    #[test]
    fn unreadable_file() {
        let e = load_toml::<Conf>(Path::new("/nonexistent/conf.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert_eq!(e.file(), Path::new("/nonexistent/conf.toml"));
    }

    #[test]
    fn invalid_finds_the_key_line() {
        let text = "name = \"x\"\n[[routes]]\nname = \"a\"\nport = 1\n";
        let e = invalid(
            Path::new("c.toml"),
            text,
            &["routes".into(), "0".into(), "port".into()],
            "no such port",
        );
        assert_eq!(e.to_string(), "c.toml:4: `routes.0.port`: no such port");
    }
}
