//! Secure response headers (S.N.13) and the headers that help attackers (S.N.14).
//!
//! A [`HeaderPolicy`] is compiled once per route at load; applying it is a handful of header
//! map operations on each response, upstream responses and edge error pages alike.

use crate::config::HeaderOverrides;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
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

/// The names the defaults go out under: Pingora allocates a case-preserving copy of a custom
/// `HeaderName` on every insert, not of a name given as (shared) bytes.
fn wire_name(name: &'static str) -> Bytes {
    Bytes::from_static(
        match name {
            "x-content-type-options" => "X-Content-Type-Options",
            "x-frame-options" => "X-Frame-Options",
            "referrer-policy" => "Referrer-Policy",
            "permissions-policy" => "Permissions-Policy",
            "cross-origin-opener-policy" => "Cross-Origin-Opener-Policy",
            "cross-origin-resource-policy" => "Cross-Origin-Resource-Policy",
            other => other,
        }
        .as_bytes(),
    )
}

/// The headers one route adds, compiled.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    /// Always set (replacing an upstream value): checked names, as the bytes sent.
    set: Vec<(Bytes, HeaderValue)>,
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
                _ => policy.set.push((wire_name(name), v)),
            }
        }
        for (name, value) in &overrides.set {
            let lower = name.to_ascii_lowercase();
            if DEFAULTS.iter().any(|(n, _)| *n == lower) {
                continue;
            }
            if let (Ok(_), Ok(v)) = (HeaderName::try_from(&lower), HeaderValue::from_str(value)) {
                policy.set.push((Bytes::from(lower), v));
            }
        }
        policy
    }

    /// Strips the remove list and adds the secure headers.
    pub fn apply(&self, resp: &mut ResponseHeader, https: bool) {
        strip(resp);
        for (name, value) in &self.set {
            let _ = resp.insert_header(name.clone(), value.clone());
        }
        if https {
            if let Some(v) = &self.hsts {
                let _ = resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, v.clone());
            }
        } else {
            // HSTS over plain HTTP is ignored by browsers and misleading in scans.
            resp.remove_header(&http::header::STRICT_TRANSPORT_SECURITY);
        }
        if let Some(v) = &self.csp {
            if !resp
                .headers
                .contains_key(http::header::CONTENT_SECURITY_POLICY)
            {
                let _ = resp.insert_header(http::header::CONTENT_SECURITY_POLICY, v.clone());
            }
        }
    }
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy::compile(&HeaderOverrides::default())
    }
}

/// The remove list as a set: checked against every response header name.
static REMOVE_SET: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| REMOVE.iter().copied().collect());

/// Removes every header on the remove list.
pub fn strip(resp: &mut ResponseHeader) {
    let doomed = |k: &&HeaderName| {
        let k = k.as_str();
        REMOVE_SET.contains(k) || REMOVE_PREFIXES.iter().any(|p| k.starts_with(p))
    };
    // Most responses carry none of these: look before allocating the list to remove.
    if !resp.headers.keys().any(|k| doomed(&k)) {
        return;
    }
    let doomed: Vec<HeaderName> = resp.headers.keys().filter(doomed).cloned().collect();
    for name in doomed {
        resp.remove_header(&name);
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
