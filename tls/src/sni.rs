//! Choosing a server certificate by SNI: a listener's certificate set, loaded from PEM files
//! (a bad file is an error naming it, never a panic), and a rustls resolver over the current
//! set that a reload swaps atomically.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::{Result, TlsError};
use crate::pem::load_certified_key;

/// One certificate of a listener, as configured.
#[derive(Debug, Clone, Copy)]
pub struct CertFiles<'a> {
    /// PEM chain, leaf first.
    pub cert: &'a Path,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: &'a Path,
    /// Names to serve it for; empty means the leaf's own DNS names.
    pub server_names: &'a [String],
    /// Served when no name matches (else the first certificate is).
    pub default: bool,
}

/// The certificates of one listener, indexed by name.
#[derive(Debug)]
pub struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertSet {
    /// A set serving `key` for every name.
    pub fn single(key: Arc<CertifiedKey>) -> Self {
        CertSet {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: key,
        }
    }

    /// The certificate for a (lower-case) SNI name: exact name, then one-label wildcard, then
    /// the default.
    pub fn select(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }

    /// Loads all certificates of a listener; any bad file fails the whole set.
    pub fn load<'a>(certs: impl IntoIterator<Item = CertFiles<'a>>) -> Result<Self> {
        let certs: Vec<CertFiles<'a>> = certs.into_iter().collect();
        let any_default = certs.iter().any(|c| c.default);
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut default = None;
        for (i, c) in certs.iter().enumerate() {
            let ck = Arc::new(load_certified_key(c.cert, c.key)?);
            let names = if c.server_names.is_empty() {
                ck.cert
                    .first()
                    .map(|leaf| crate::svid::dns_names(leaf))
                    .unwrap_or_default()
            } else {
                c.server_names
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect()
            };
            for n in names {
                match n.strip_prefix("*.") {
                    Some(parent) => wildcard
                        .entry(parent.to_string())
                        .or_insert_with(|| ck.clone()),
                    None => exact.entry(n).or_insert_with(|| ck.clone()),
                };
            }
            if c.default || (i == 0 && !any_default) {
                default = Some(ck);
            }
        }
        let default = default.ok_or_else(|| TlsError::file("<listener>", "no certificates"))?;
        Ok(CertSet {
            exact,
            wildcard,
            default,
        })
    }
}

/// SNI selection over the current certificate set; [`SniResolver::store`] swaps the set for
/// new handshakes, those in progress keep theirs.
#[derive(Debug)]
pub struct SniResolver {
    certs: ArcSwap<CertSet>,
}

impl SniResolver {
    /// A resolver over `certs`.
    pub fn new(certs: CertSet) -> Self {
        SniResolver {
            certs: ArcSwap::from_pointee(certs),
        }
    }

    /// Replaces the certificate set.
    pub fn store(&self, certs: CertSet) {
        self.certs.store(Arc::new(certs));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(|s| s.to_ascii_lowercase());
        Some(self.certs.load().select(sni.as_deref()))
    }
}
