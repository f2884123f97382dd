//! Secure response headers (S.N.13) and the headers that help attackers (S.N.14).
//!
//! A [`HeaderPolicy`] is compiled once per route at load into ready header maps; applying it
//! copies one and adds the response's own headers after it, on upstream responses and edge error
//! pages alike.

use super::header_edit::{self, X_REQUEST_ID};
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

/// The headers one route adds, compiled at load into the heads responses start from: names
/// parsed, values checked and every header hashed into a map once.
///
/// A response's headers are rebuilt on the head's copy (a copy keeps the hashes): the policy's
/// headers come first, then the response's own, less those on the remove list and those the
/// policy replaces. The response's own headers are hashed again as they are added (a response
/// carries a handful; the policy adds eight or nine, with longer names). The result is what the
/// edge adds to a response and strips from it, in a different order (our headers before the
/// response's: the order of fields of different names carries no meaning, RFC 9110 section
/// 5.3); the values of one name keep their order.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    /// By [`head_index`]: over HTTPS or plain HTTP, with an X-Request-Id slot or without.
    heads: [Head; 4],
}

/// What a response starts from.
#[derive(Debug, Clone)]
struct Head {
    /// The policy's headers; with the X-Request-Id slot first (a placeholder value) where the
    /// head has one.
    headers: HeaderMap,
    /// The names whose values in the response are dropped: the policy's own (they replace the
    /// response's, as an insert would) and, over plain HTTP, HSTS. Not CSP: the response's own
    /// CSP replaces the policy's.
    replaced: Vec<HeaderName>,
    /// The lengths of those names, as bits (63: that long or longer): most of a response's own
    /// names are told apart by their length alone.
    replaced_lengths: u64,
}

/// Room for the response's own headers in a head's map, so adding them does not grow its index.
const ROOM: usize = 24;

fn head_index(https: bool, with_id: bool) -> usize {
    usize::from(https) * 2 + usize::from(with_id)
}

impl Head {
    /// A layout's head: its headers set, in order, on an empty map, as they would be on a
    /// response that has none of them.
    fn new(layout: &Layout, https: bool, with_id: bool) -> Head {
        let Layout { set, hsts, csp } = layout;
        let mut headers = HeaderMap::with_capacity(set.len() + 3 + ROOM);
        if with_id {
            header_edit::set(&mut headers, &X_REQUEST_ID, HeaderValue::from_static(""));
        }
        for (name, value) in set {
            // The request id replaces whatever the route sets under its name.
            if !(with_id && *name == X_REQUEST_ID) {
                header_edit::set(&mut headers, name, value.clone());
            }
        }
        if let (true, Some(v)) = (https, hsts) {
            header_edit::set(&mut headers, &STRICT_TRANSPORT_SECURITY, v.clone());
        }
        if let Some(v) = csp {
            header_edit::set(&mut headers, &CONTENT_SECURITY_POLICY, v.clone());
        }
        let mut replaced: Vec<HeaderName> = headers
            .keys()
            .filter(|k| **k != CONTENT_SECURITY_POLICY)
            .cloned()
            .collect();
        if !https {
            // HSTS over plain HTTP is ignored by browsers and misleading in scans.
            replaced.push(STRICT_TRANSPORT_SECURITY);
        }
        let replaced_lengths = replaced.iter().fold(0, |m, n| m | length_bit(n));
        Head {
            headers,
            replaced,
            replaced_lengths,
        }
    }

    /// Whether the response's values of `name` are dropped.
    fn replaces(&self, name: &HeaderName) -> bool {
        self.replaced_lengths & length_bit(name) != 0 && self.replaced.contains(name)
    }
}

fn length_bit(name: &HeaderName) -> u64 {
    1 << name.as_str().len().min(63)
}

/// A route's headers before they are put into heads.
struct Layout {
    /// Always set (replacing the response's values).
    set: Vec<(HeaderName, HeaderValue)>,
    /// HTTPS responses only.
    hsts: Option<HeaderValue>,
    /// Only when the response has no CSP.
    csp: Option<HeaderValue>,
}

impl Layout {
    /// Defaults with a route's overrides; names and values were checked by validation, invalid
    /// ones are skipped here rather than failing.
    fn new(overrides: &HeaderOverrides) -> Layout {
        let removed = |n: &str| overrides.remove.iter().any(|r| r.eq_ignore_ascii_case(n));
        let overridden = |n: &str| {
            overrides
                .set
                .keys()
                .find(|k| k.eq_ignore_ascii_case(n))
                .map(|k| &overrides.set[k])
        };
        let mut layout = Layout {
            set: Vec::new(),
            hsts: None,
            csp: None,
        };
        for (name, default) in DEFAULTS {
            if removed(name) {
                continue;
            }
            let v = match overridden(name) {
                Some(value) => match HeaderValue::from_str(value) {
                    Ok(v) => v,
                    Err(_) => continue,
                },
                None => HeaderValue::from_static(default),
            };
            match *name {
                "strict-transport-security" => layout.hsts = Some(v),
                "content-security-policy" => layout.csp = Some(v),
                _ => layout.set.push((HeaderName::from_static(name), v)),
            }
        }
        for (name, value) in &overrides.set {
            let lower = name.to_ascii_lowercase();
            if DEFAULTS.iter().any(|(n, _)| *n == lower) {
                continue;
            }
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(&lower), HeaderValue::from_str(value)) {
                layout.set.push((n, v));
            }
        }
        layout
    }
}

impl HeaderPolicy {
    /// Defaults with a route's overrides (see [`Layout::new`]), in their four heads.
    pub fn compile(overrides: &HeaderOverrides) -> Self {
        let layout = Layout::new(overrides);
        let head = |https, with_id| Head::new(&layout, https, with_id);
        HeaderPolicy {
            heads: [
                head(false, false),
                head(false, true),
                head(true, false),
                head(true, true),
            ],
        }
    }

    /// Strips the remove list and adds the secure headers (see [`HeaderPolicy::apply_to`]); an
    /// X-Request-Id the response carries is kept.
    pub fn apply(&self, resp: &mut ResponseHeader, https: bool) {
        header_edit::response(resp, |h| self.apply_to(h, https, None));
    }

    /// Rebuilds a response's header map: the policy's headers, X-Request-Id `request_id` when
    /// given (replacing the response's), then the response's own headers but those on the
    /// remove list and those the policy replaces (see [`HeaderPolicy`]).
    pub fn apply_to(&self, headers: &mut HeaderMap, https: bool, request_id: Option<&HeaderValue>) {
        let head = &self.heads[head_index(https, request_id.is_some())];
        let theirs = std::mem::replace(headers, head.headers.clone());
        if let Some(id) = request_id {
            // The head's first entry is its X-Request-Id slot.
            if let Some(slot) = headers.values_mut().next() {
                *slot = id.clone();
            }
        }
        let mut theirs = theirs.into_iter().peekable();
        // The name of the values being read, when they are kept and more of them follow.
        let mut more: Option<HeaderName> = None;
        while let Some((name, value)) = theirs.next() {
            match name {
                Some(name) => {
                    more = None;
                    if doomed(&name) || head.replaces(&name) {
                        continue;
                    }
                    if matches!(theirs.peek(), Some((None, _))) {
                        more = Some(name.clone());
                    }
                    // Not in the head, or the policy's CSP, which the response's replaces.
                    let _ = headers.try_insert(name, value);
                }
                // A further value of the name before it.
                None => {
                    if let Some(name) = &more {
                        let _ = headers.try_append(name.clone(), value);
                    }
                }
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

    /// The policy as it was applied before heads: strip the remove list from the response, then
    /// insert each header (replacing the response's values), HSTS over HTTPS only (removed over
    /// plain HTTP), CSP unless the response has one, X-Request-Id last.
    fn by_inserts(layout: &Layout, h: &mut HeaderMap, https: bool, id: Option<&HeaderValue>) {
        while let Some(name) = h.keys().find(|k| doomed(k)).cloned() {
            h.remove(name);
        }
        for (name, value) in &layout.set {
            h.insert(name, value.clone());
        }
        match (&layout.hsts, https) {
            (Some(v), true) => drop(h.insert(STRICT_TRANSPORT_SECURITY, v.clone())),
            (None, true) => {}
            (_, false) => drop(h.remove(STRICT_TRANSPORT_SECURITY)),
        }
        if let Some(v) = &layout.csp {
            if !h.contains_key(CONTENT_SECURITY_POLICY) {
                h.insert(CONTENT_SECURITY_POLICY, v.clone());
            }
        }
        if let Some(id) = id {
            h.insert(X_REQUEST_ID, id.clone());
        }
    }

    /// Each name with its values in order (the order of different names aside).
    fn by_name(h: &HeaderMap) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut out = BTreeMap::new();
        for name in h.keys() {
            let values = h.get_all(name).iter().map(|v| v.as_bytes().to_vec());
            out.insert(name.to_string(), values.collect());
        }
        out
    }

    /// Headers of a response (values of one name in this order), taken in subsets.
    const THEIRS: &[(&str, &str)] = &[
        ("server", "nginx"),
        ("content-security-policy", "default-src *"),
        ("set-cookie", "a=1"),
        ("x-frame-options", "ALLOWALL"),
        ("strict-transport-security", "max-age=1"),
        ("x-request-id", "theirs"),
        ("content-type", "text/plain"),
        ("x-powered-by", "PHP"),
        ("content-security-policy", "img-src *"),
        ("x-extra", "theirs"),
        ("set-cookie", "b=2"),
        ("x-drupal-cache", "HIT"),
        ("etag", "\"1\""),
        ("x-extra", "again"),
    ];

    #[test]
    fn heads_give_what_inserts_gave() {
        let overrides = |set: &[(&str, &str)], remove: &[&str]| HeaderOverrides {
            set: set
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            remove: remove.iter().map(|r| r.to_string()).collect(),
        };
        let policies = [
            HeaderOverrides::default(),
            overrides(
                &[
                    ("X-Frame-Options", "SAMEORIGIN"),
                    ("X-Extra", "1"),
                    ("x-request-id", "route"),
                    ("Server", "edge"),
                ],
                &["Permissions-Policy"],
            ),
            overrides(
                &[],
                &["Strict-Transport-Security", "content-security-policy"],
            ),
            overrides(&[("Content-Security-Policy", "default-src 'none'")], &[]),
        ];
        let id = HeaderValue::from_static("0123456789abcdef");
        let mut checked = 0;
        for o in &policies {
            let (layout, policy) = (Layout::new(o), HeaderPolicy::compile(o));
            // Every subset of up to four, and all of them.
            let all = (1u32 << THEIRS.len()) - 1;
            for subset in (0..=all).filter(|s| s.count_ones() <= 4 || *s == all) {
                let mut theirs = HeaderMap::new();
                for (i, (n, v)) in THEIRS.iter().enumerate() {
                    if subset & (1 << i) != 0 {
                        theirs.append(*n, HeaderValue::from_static(v));
                    }
                }
                for https in [false, true] {
                    for id in [None, Some(&id)] {
                        let (mut old, mut new) = (theirs.clone(), theirs.clone());
                        by_inserts(&layout, &mut old, https, id);
                        policy.apply_to(&mut new, https, id);
                        assert_eq!(
                            by_name(&new),
                            by_name(&old),
                            "{o:?} {theirs:?} {https} {id:?}"
                        );
                        assert_eq!(new.len(), old.len());
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 4 * (1 + 14 + 91 + 364 + 1001 + 1));
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
