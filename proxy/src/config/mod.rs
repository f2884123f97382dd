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
pub use types::{CaUrl, Cidr, HostPattern, HostPort};
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

    /// Every number of the annotated example, set to 0, i64::MAX and u64::MAX: accepted (0
    /// where it means "off") or refused with the file, the value's own line and the field
    /// named — never kept to overflow a deadline or size a buffer.
    #[test]
    fn every_number_at_its_extremes_is_refused_by_name_or_accepted() {
        let text = include_str!("../../../examples/rampart.toml");
        let numbers: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(n, l)| {
                let (key, value) = l.split_once('=')?;
                let value = value.split('#').next()?.trim();
                (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                    .then_some((n, key.trim()))
            })
            .collect();
        assert!(numbers.len() >= 25, "{numbers:?}");
        for (n, key) in numbers {
            for value in ["0", "9223372036854775807", "18446744073709551615"] {
                let bad: Vec<String> = text
                    .lines()
                    .enumerate()
                    .map(|(i, l)| {
                        if i == n {
                            format!("{key} = {value}")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                let bad = bad.join("\n");
                let e = match parse(Path::new("r.toml"), &bad) {
                    Ok(_) => {
                        assert_eq!(value, "0", "line {}: {key} = {value} was accepted", n + 1);
                        continue;
                    }
                    Err(e) => e.to_string(),
                };
                let line: usize = e
                    .strip_prefix("r.toml:")
                    .and_then(|r| r.split(':').next())
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_else(|| panic!("no line in {e}"));
                // The error is at the value's own line, however deep its table (`[protect.*]`,
                // `[upstreams.health]`, `[routes.waf]`).
                assert_eq!(line, n + 1, "{key} = {value}: {e}");
                // Past TOML's integers (i64) the reader refuses the number itself, at its line.
                let past_toml = value.len() > 19 && e.contains("too large");
                assert!(e.contains(key) || past_toml, "{key} = {value}: {e}");
            }
        }
    }

    #[test]
    fn an_exclusion_that_names_nothing_is_refused_at_its_own_entry() {
        let text = include_str!("../../../examples/rampart.toml");
        let bad = text.replacen("rule_id = 942100\n", "", 1);
        assert_ne!(
            bad, text,
            "examples/rampart.toml has an exclusion with rule_id = 942100"
        );
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with("[[routes.waf.exclusions]]"))
            .expect("examples/rampart.toml has a [[routes.waf.exclusions]]");
        let e = parse(Path::new("r.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("r.toml:{line}: `routes.0.waf.exclusions.0`: ")),
            "{e}"
        );
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

    /// An edge with an `[identity]`, one TLS listener whose certificate is CERT, one upstream
    /// with UPSTREAM.
    const WITH_IDENTITY: &str = r#"
[identity]
ca = "https://127.0.0.1:8443"
spiffe_id = "spiffe://example.org/edge/front"
bundle = "bundle.pem"
[[listeners]]
name = "https"
address = "127.0.0.1:8443"
[listeners.tls]
[[listeners.tls.certificates]]
CERT
[[upstreams]]
name = "pay"
endpoints = ["127.0.0.1:9000"]
UPSTREAM
"#;

    #[test]
    fn certificates_from_the_ca_and_mesh_upstreams_are_checked_at_load() {
        let base = WITH_IDENTITY;
        let text =
            |cert: &str, upstream: &str| base.replace("CERT", cert).replace("UPSTREAM", upstream);
        let ok = text(
            "from_ca = { dns_names = [\"www.example.org\"] }",
            "mtls = { spiffe_id = \"spiffe://example.org/ns/shop/sa/pay\" }",
        );
        let c = parse(Path::new("/etc/r.toml"), &ok).unwrap();
        let cert = &c.listeners[0].tls.as_ref().unwrap().certificates[0];
        assert!(matches!(cert.source, CertSource::Ca(_)));
        assert_eq!(c.identity.unwrap().bundle, Path::new("/etc/bundle.pem"));
        for (cert, upstream, says) in [
            (
                "cert = \"a.pem\"\nkey = \"a.key\"\nfrom_ca = { dns_names = [\"a.org\"] }",
                "",
                "not both",
            ),
            ("cert = \"a.pem\"", "", "`cert` needs its `key`"),
            (
                "default = true",
                "",
                "needs `cert` + `key` files or `from_ca",
            ),
            ("from_ca = { dns_names = [] }", "", "at least one name"),
            (
                "from_ca = { dns_names = [\"a.org\"], bogus = 1 }",
                "",
                "unknown field",
            ),
            (
                "cert = \"a.pem\"\nkey = \"a.key\"",
                "mtls = { spiffe_id = \"https://x\" }",
                "invalid SPIFFE ID \"https://x\": scheme must be spiffe://",
            ),
            (
                "cert = \"a.pem\"\nkey = \"a.key\"",
                "mtls = { spiffe_id = \"spiffe://other.org/a\" }",
                "trust domain `other.org`",
            ),
            (
                "cert = \"a.pem\"\nkey = \"a.key\"",
                "mtls = { spiffe_id = \"spiffe://example.org/a\" }\ntls = { sni = \"a\" }",
                "either `tls` or `mtls`",
            ),
        ] {
            let e = parse(Path::new("r.toml"), &text(cert, upstream))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("r.toml:") && e.contains(says), "{says}: {e}");
        }
        let no_identity = text(
            "cert = \"a.pem\"\nkey = \"a.key\"",
            "mtls = { spiffe_id = \"spiffe://example.org/a\" }",
        )
        .replace("[identity]", "[unused]");
        let no_identity = no_identity.replacen("[unused]\n", "", 1);
        let no_identity: String = no_identity
            .lines()
            .filter(|l| {
                !l.starts_with("ca =")
                    && !l.starts_with("spiffe_id =")
                    && !l.starts_with("bundle =")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let e = parse(Path::new("r.toml"), &no_identity)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs the edge's [identity]"), "{e}");
    }

    /// Several certificates `from_ca` on one listener: a bad TTL names which one, at its line.
    #[test]
    fn a_from_ca_ttl_out_of_range_names_its_certificate() {
        let two = WITH_IDENTITY.replace("UPSTREAM", "").replace(
            "CERT",
            "from_ca = { dns_names = [\"a.example.org\"], ttl_seconds = 3600 }\n\
             [[listeners.tls.certificates]]\n\
             from_ca = { dns_names = [\"b.example.org\"], ttl_seconds = TTL }",
        );
        assert!(parse(Path::new("r.toml"), &two.replace("TTL", "7200")).is_ok());
        let bad = two.replace("TTL", "0");
        let line = bad
            .lines()
            .position(|l| l.contains("ttl_seconds = 0"))
            .unwrap()
            + 1;
        let e = parse(Path::new("r.toml"), &bad).unwrap_err().to_string();
        let field = "listeners.0.tls.certificates.1.from_ca.ttl_seconds";
        assert!(e.starts_with(&format!("r.toml:{line}: `{field}`: ")), "{e}");
    }
}
