//! Host + path-prefix routing, compiled once per config load.
//!
//! Precedence: an exact host beats a wildcard, a longer wildcard suffix beats a shorter one, and
//! `*` comes last; within the same host match the longest path prefix wins.

pub use crate::config::HostPattern;
use std::borrow::Cow;
use std::sync::Arc;

/// Routes compiled for lookup; `T` is the per-route runtime data.
pub struct Router<T> {
    routes: Vec<(Vec<HostPattern>, String, Arc<T>)>,
}

impl<T> Router<T> {
    pub fn new() -> Self {
        Router { routes: Vec::new() }
    }

    pub fn add(&mut self, hosts: Vec<HostPattern>, prefix: String, value: Arc<T>) {
        self.routes.push((hosts, prefix, value));
    }

    /// `host` must already be lowercase and without port.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<T>> {
        let mut best: Option<((usize, usize), &Arc<T>)> = None;
        for (hosts, prefix, value) in &self.routes {
            let Some(rank) = hosts.iter().filter_map(|h| h.rank(host)).max() else {
                continue;
            };
            if !path_has_prefix(path, prefix) {
                continue;
            }
            let key = (rank, prefix.len());
            if best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((key, value));
            }
        }
        best.map(|(_, v)| v)
    }
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`; a prefix ending in `/` matches
/// anything below it.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Lowercased host without port, from a Host header or URI authority; None when malformed.
/// Borrowed from `raw` when `raw` holds it already lowercase (the usual case), so a caller can
/// keep what `raw` came from instead of a copy.
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    if is_normal_host(raw) {
        return Some(Cow::Borrowed(raw));
    }
    normalize_general(raw)
}

/// [`normalize_host`] for any input.
fn normalize_general(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        &rest[..end]
    } else {
        match raw.rsplit_once(':') {
            // Unbracketed, a colon only separates the port: `name:80:81` is malformed, not a
            // host `name:80` (which the upstream and our forwarding headers would disagree on).
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.trim_end_matches('.');
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
    {
        return None;
    }
    Some(match host.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(host.to_ascii_lowercase()),
        false => Cow::Borrowed(host),
    })
}

/// `raw` is a host in normal form already (the usual Host header: lowercase letters, digits,
/// `-`, `.`, `_`, not ending in `.`), which [`normalize_host`] returns unchanged: one pass over
/// its bytes instead of the general path's trims, port split and checks.
fn is_normal_host(raw: &str) -> bool {
    !raw.is_empty()
        && !raw.ends_with('.')
        && raw.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<&'static str> {
        let mut r = Router::new();
        let p = |s: &str| HostPattern::parse(s).unwrap();
        r.add(vec![p("*")], "/".into(), Arc::new("any"));
        r.add(vec![p("*.example.com")], "/".into(), Arc::new("wild"));
        r.add(vec![p("www.example.com")], "/".into(), Arc::new("www"));
        r.add(vec![p("www.example.com")], "/api".into(), Arc::new("api"));
        r
    }

    #[test]
    fn precedence() {
        let r = router();
        assert_eq!(**r.find("www.example.com", "/api/x").unwrap(), "api");
        assert_eq!(**r.find("www.example.com", "/apix").unwrap(), "www");
        assert_eq!(**r.find("a.example.com", "/").unwrap(), "wild");
        assert_eq!(**r.find("example.com", "/").unwrap(), "any");
    }

    #[test]
    fn hosts() {
        assert_eq!(
            normalize_host("Example.COM:8443").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(normalize_host("a b"), None);
        assert_eq!(normalize_host("x:y"), None);
        assert_eq!(normalize_host("name:80:81"), None);
        assert!(HostPattern::parse("bad host").is_none());
    }

    /// The short cut returns exactly what the general path returns, for every string of up to
    /// four characters over an alphabet of each class that matters (and longer mixes).
    #[test]
    fn a_normal_host_is_what_the_general_path_returns() {
        let alphabet = [
            'a', 'Z', '0', '-', '.', '_', ':', '[', ']', ' ', '\t', '\u{b}', '\u{a0}', '/',
        ];
        let mut words = vec![String::new()];
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(level.iter().cloned());
        }
        words.extend(
            [
                "localhost",
                "app.example.com",
                "a_b-c.d9",
                "x.",
                "x..",
                "[::1]",
            ]
            .map(String::from),
        );
        let mut normal = 0;
        for w in &words {
            if is_normal_host(w) {
                normal += 1;
                let general = normalize_general(w);
                assert_eq!(general.as_deref(), Some(w.as_str()), "{w:?}");
                assert!(matches!(general, Some(Cow::Borrowed(_))), "{w:?}");
            }
            assert_eq!(normalize_host(w), normalize_general(w), "{w:?}");
        }
        assert!(normal > 500, "{normal}");
    }
}
