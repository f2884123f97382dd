//! Set-Cookie hardening (S.N.15): Secure, HttpOnly (except named cookies), SameSite when absent,
//! and the `__Host-` / `__Secure-` prefix rules enforced.

use crate::config::{CookiePolicyConfig, SameSite};
use http::{HeaderMap, HeaderValue};

#[derive(Debug, Clone, Default)]
pub struct CookiePolicy {
    same_site: SameSite,
    http_only_exceptions: Vec<String>,
}

impl CookiePolicy {
    pub fn compile(c: &CookiePolicyConfig) -> Self {
        CookiePolicy {
            same_site: c.same_site,
            http_only_exceptions: c.http_only_exceptions.clone(),
        }
    }

    /// Rewrites every Set-Cookie of the response.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let name = http::header::SET_COOKIE;
        if !headers.contains_key(&name) {
            return;
        }
        let cookies: Vec<String> = headers
            .get_all(&name)
            .iter()
            .map(|v| self.harden(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        headers.remove(&name);
        for c in cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                let _ = headers.try_append(name.clone(), v);
            }
        }
    }

    /// One Set-Cookie value, hardened.
    pub fn harden(&self, cookie: &str) -> String {
        let mut parts = cookie.split(';').map(str::trim).filter(|p| !p.is_empty());
        let pair = parts.next().unwrap_or("");
        let cookie_name = pair.split('=').next().unwrap_or("").trim();
        let host_prefix = cookie_name.starts_with("__Host-");
        let mut attrs: Vec<String> = Vec::new();
        let (mut secure, mut http_only, mut same_site) = (false, false, false);
        for attr in parts {
            let key = attr
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match key.as_str() {
                "secure" => secure = true,
                "httponly" => http_only = true,
                "samesite" => same_site = true,
                // __Host- cookies must not carry Domain and must have Path=/ (set below).
                "domain" | "path" if host_prefix => continue,
                _ => {}
            }
            attrs.push(attr.to_string());
        }
        let mut out = String::with_capacity(cookie.len() + 40);
        out.push_str(pair);
        for a in &attrs {
            out.push_str("; ");
            out.push_str(a);
        }
        if host_prefix {
            out.push_str("; Path=/");
        }
        if !secure {
            out.push_str("; Secure");
        }
        if !http_only && !self.http_only_exceptions.iter().any(|e| e == cookie_name) {
            out.push_str("; HttpOnly");
        }
        if !same_site {
            out.push_str(match self.same_site {
                SameSite::Lax => "; SameSite=Lax",
                SameSite::Strict => "; SameSite=Strict",
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cookie_hardened() {
        let p = CookiePolicy::default();
        assert_eq!(
            p.harden("sid=abc; Path=/"),
            "sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn existing_attributes_kept() {
        let p = CookiePolicy::default();
        assert_eq!(
            p.harden("a=b; secure; HttpOnly; SameSite=None"),
            "a=b; secure; HttpOnly; SameSite=None"
        );
    }

    #[test]
    fn host_prefix_fixed_and_exceptions() {
        let p = CookiePolicy::compile(&CookiePolicyConfig {
            same_site: SameSite::Strict,
            http_only_exceptions: vec!["csrf".into()],
        });
        assert_eq!(
            p.harden("__Host-x=1; Domain=a.com; Path=/app"),
            "__Host-x=1; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        assert_eq!(p.harden("csrf=t"), "csrf=t; Secure; SameSite=Strict");
    }
}
