//! Secure response headers (S.N.13) and the headers that help attackers (S.N.14).
//!
//! A [`HeaderPolicy`] is compiled once per route at load; applying it is a handful of header
//! map operations on each response, upstream responses and edge error pages alike.

use super::header_edit;
use crate::config::HeaderOverrides;
use http::header::{CONTENT_SECURITY_POLICY, STRICT_TRANSPORT_SECURITY};
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::ResponseHeader;

/// Headers the OWASP Secure Headers Project lists for removal (headers_remove.json), plus
/// Pingora's own `Server`. Matched case-insensitively.
pub const REMOVE: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
    "x-runtime",
    "x-version",
    "x-backend-server",
    "x-drupal-cache",
    "x-drupal-dynamic-cache",
    "x-mod-pagespeed",
    "x-page-speed",
    "x-varnish",
    "x-varnish-backend",
    "x-varnish-server",
    "x-varnish-cache",
    "x-varnish-cacheable",
    "x-varnish-age",
    "x-server-powered-by",
    "x-powered-by-plesk",
    "x-powered-cms",
    "x-umbraco-version",
    "x-nginx-cache-status",
    "x-litespeed-cache",
    "x-litespeed-cache-control",
    "x-litespeed-purge",
    "x-litespeed-tag",
    "x-turbo-charged-by",
    "x-redirect-by",
    "x-envoy-upstream-service-time",
    "x-envoy-decorator-operation",
    "liferay-portal",
    "x-owa-version",
    "x-pingback",
    "host-header",
    "x-hudson",
    "x-jenkins",
    "x-jenkins-session",
    "x-hudson-theme",
    "x-instance-identity",
    "x-cf-powered-by",
    "x-content-encoded-by",
    "x-rack-cache",
    "x-sourcefiles",
    "x-aspnet-duration",
    "microsoftsharepointteamservices",
    "sharepointhealthscore",
    "x-sharepointhealthscore",
    "x-ms-invokeapp",
    "x-atmosphere-first-request",
    "x-atmosphere-tracking-id",
    "x-atmosphere-error",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-php-version",
    "x-dw-request-base-id",
    "x-oracle-dms-ecid",
    "x-oracle-dms-rid",
    "x-kubernetes-pf-flowschema-uid",
    "x-kubernetes-pf-prioritylevel-uid",
    "x-stack",
    "x-old-content-length",
    "x-magento-tags",
    "x-magento-cache-debug",
    "x-magento-cache-control",
    "x-wix-request-id",
    "x-shopify-stage",
    "x-confluence-request-time",
    "x-arequestid",
    "x-asen",
    "x-asmx-version",
];

/// Families removed by prefix (X-Drupal-*, X-Atmosphere-*, X-Kubernetes-PF-*, ...).
pub const REMOVE_PREFIXES: &[&str] = &[
    "x-drupal-",
    "x-atmosphere-",
    "x-kubernetes-pf-",
    "x-varnish-",
    "x-litespeed-",
    "x-envoy-",
    "x-aspnet",
];

pub const HSTS: &str = "max-age=63072000; includeSubDomains";
pub const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests";

/// The defaults added to every response (S.N.13). HSTS and CSP are handled specially.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("strict-transport-security", HSTS),
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// The headers one route adds, compiled: names parsed and values checked once at load.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    /// Always set (replacing an upstream value).
    set: Vec<(HeaderName, HeaderValue)>,
    /// HTTPS responses only.
    hsts: Option<HeaderValue>,
    /// Only when the upstream sent no CSP.
    csp: Option<HeaderValue>,
}

impl HeaderPolicy {
    /// Defaults with a route's overrides; names and values were checked by validation, invalid
    /// ones are skipped here rather than failing.
    pub fn compile(overrides: &HeaderOverrides) -> Self {
        let removed = |n: &str| overrides.remove.iter().any(|r| r.eq_ignore_ascii_case(n));
        let overridden = |n: &str| {
            overrides
                .set
                .keys()
                .find(|k| k.eq_ignore_ascii_case(n))
                .map(|k| &overrides.set[k])
        };
        let mut policy = HeaderPolicy {
            set: Vec::new(),
            hsts: None,
            csp: None,
        };
        for (name, default) in DEFAULTS {
            if removed(name) {
                continue;
            }
            let value = overridden(name).map(String::as_str).unwrap_or(default);
            let Ok(v) = HeaderValue::from_str(value) else {
                continue;
            };
            match *name {
                "strict-transport-security" => policy.hsts = Some(v),
                "content-security-policy" => policy.csp = Some(v),
                _ => policy.set.push((HeaderName::from_static(name), v)),
            }
        }
        for (name, value) in &overrides.set {
            let lower = name.to_ascii_lowercase();
            if DEFAULTS.iter().any(|(n, _)| *n == lower) {
                continue;
            }
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(&lower), HeaderValue::from_str(value)) {
                policy.set.push((n, v));
            }
        }
        policy
    }

    /// Strips the remove list and adds the secure headers (see [`HeaderPolicy::apply_to`]).
    pub fn apply(&self, resp: &mut ResponseHeader, https: bool) {
        header_edit::response(resp, |h| self.apply_to(h, https));
    }

    /// Strips the remove list and adds the secure headers to a response's header map, room for
    /// them (and `extra` more) reserved at once.
    pub fn apply_to(&self, headers: &mut HeaderMap, https: bool) {
        self.apply_with(headers, https, 0)
    }

    /// [`HeaderPolicy::apply_to`] with room reserved for `extra` more headers the caller adds.
    pub fn apply_with(&self, headers: &mut HeaderMap, https: bool, extra: usize) {
        strip(headers);
        let _ = headers.try_reserve(self.set.len() + 2 + extra);
        for (name, value) in &self.set {
            header_edit::set(headers, name, value.clone());
        }
        if https {
            if let Some(v) = &self.hsts {
                header_edit::set(headers, &STRICT_TRANSPORT_SECURITY, v.clone());
            }
        } else {
            // HSTS over plain HTTP is ignored by browsers and misleading in scans.
            headers.remove(STRICT_TRANSPORT_SECURITY);
        }
        if let Some(v) = &self.csp {
            if !headers.contains_key(CONTENT_SECURITY_POLICY) {
                header_edit::set(headers, &CONTENT_SECURITY_POLICY, v.clone());
            }
        }
    }
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy::compile(&HeaderOverrides::default())
    }
}

/// The remove list's `x-` names as a set: checked against a response's `x-` header names.
static REMOVE_X: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        REMOVE
            .iter()
            .copied()
            .filter(|n| n.starts_with("x-"))
            .collect()
    });
/// The few others (`server`, ...): compared one by one.
static REMOVE_OTHER: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    REMOVE
        .iter()
        .copied()
        .filter(|n| !n.starts_with("x-"))
        .collect()
});

/// Whether a response header is on the remove list (a name or a family). Most names a response
/// carries (`content-type`, `date`, ...) do not start with `x-`: they are compared with the few
/// others only, never hashed.
fn doomed(name: &HeaderName) -> bool {
    let k = name.as_str();
    if k.starts_with("x-") {
        REMOVE_X.contains(k) || REMOVE_PREFIXES.iter().any(|p| k.starts_with(p))
    } else {
        REMOVE_OTHER.contains(&k)
    }
}

/// Removes every header on the remove list: one name at a time, no list allocated (a response
/// carries one or two of them, most often `Server`).
pub fn strip(headers: &mut HeaderMap) {
    while let Some(name) = headers.keys().find(|k| doomed(k)).cloned() {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resp() -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.insert_header("server", "Apache").unwrap();
        r.insert_header("x-powered-by", "PHP").unwrap();
        r.insert_header("x-drupal-foo", "1").unwrap();
        r
    }

    #[test]
    fn remove_list_and_families_are_doomed() {
        for name in REMOVE
            .iter()
            .chain(["x-drupal-foo", "x-envoy-bar", "server"].iter())
        {
            assert!(doomed(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["content-type", "date", "x-request-id", "serverx", "etag"] {
            assert!(!doomed(&HeaderName::from_static(name)), "{name}");
        }
        // Every family starts with `x-`: the fast path never skips one.
        assert!(REMOVE_PREFIXES.iter().all(|p| p.starts_with("x-")));
    }

    #[test]
    fn defaults_and_strip() {
        let mut r = resp();
        HeaderPolicy::default().apply(&mut r, true);
        assert!(r.headers.get("server").is_none());
        assert!(r.headers.get("x-powered-by").is_none());
        assert!(r.headers.get("x-drupal-foo").is_none());
        assert_eq!(r.headers.get("strict-transport-security").unwrap(), HSTS);
        assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
        assert!(r
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let mut r = resp();
        HeaderPolicy::default().apply(&mut r, false);
        assert!(r.headers.get("strict-transport-security").is_none());
    }

    #[test]
    fn upstream_csp_kept_and_overrides() {
        let mut set = BTreeMap::new();
        set.insert("X-Frame-Options".to_string(), "SAMEORIGIN".to_string());
        set.insert("X-Extra".to_string(), "1".to_string());
        let p = HeaderPolicy::compile(&HeaderOverrides {
            set,
            remove: vec!["Permissions-Policy".into()],
        });
        let mut r = resp();
        r.insert_header("content-security-policy", "default-src *")
            .unwrap();
        p.apply(&mut r, true);
        assert_eq!(
            r.headers.get("content-security-policy").unwrap(),
            "default-src *"
        );
        assert_eq!(r.headers.get("x-frame-options").unwrap(), "SAMEORIGIN");
        assert_eq!(r.headers.get("x-extra").unwrap(), "1");
        assert!(r.headers.get("permissions-policy").is_none());
    }
}
