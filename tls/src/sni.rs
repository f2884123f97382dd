//! Choosing a server certificate by SNI: a listener's certificate set, loaded from PEM files
//! (a bad file is an error naming it, never a panic) or renewed in place ([`LiveKey`], e.g. from
//! the built-in CA), and a rustls resolver over the current set that a reload swaps atomically.

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

/// A certificate renewed in place (e.g. by the built-in CA): every handshake is served what it
/// holds at that moment; connections already open keep the certificate they were given.
pub type LiveKey = Arc<ArcSwap<CertifiedKey>>;

/// Where one certificate of a set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Loaded once (from files); a new one comes with a new set.
    Fixed(Arc<CertifiedKey>),
    /// Renewed in place by its owner.
    Live(LiveKey),
}

impl KeySource {
    /// The certificate to serve now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self {
            KeySource::Fixed(k) => k.clone(),
            KeySource::Live(k) => k.load_full(),
        }
    }
}

/// One certificate of a set, with the names it is served for.
#[derive(Debug, Clone)]
pub struct CertEntry {
    /// The certificate and key.
    pub key: KeySource,
    /// Names to serve it for; empty means the leaf's own DNS names.
    pub server_names: Vec<String>,
    /// Served when no name matches (else the first certificate is).
    pub default: bool,
}

/// The certificates of one listener, indexed by name.
#[derive(Debug)]
pub struct CertSet {
    exact: HashMap<String, KeySource>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, KeySource>,
    default: KeySource,
}

impl CertSet {
    /// A set serving `key` for every name.
    pub fn single(key: Arc<CertifiedKey>) -> Self {
        CertSet {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: KeySource::Fixed(key),
        }
    }

    /// The certificate for a (lower-case) SNI name: exact name, then one-label wildcard, then
    /// the default.
    pub fn select(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni else {
            return self.default.current();
        };
        if let Some(k) = self.exact.get(name) {
            return k.current();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.current();
            }
        }
        self.default.current()
    }

    /// Loads all certificates of a listener; any bad file fails the whole set.
    pub fn load<'a>(certs: impl IntoIterator<Item = CertFiles<'a>>) -> Result<Self> {
        let mut entries = Vec::new();
        for c in certs {
            entries.push(CertEntry {
                key: KeySource::Fixed(Arc::new(load_certified_key(c.cert, c.key)?)),
                server_names: c.server_names.to_vec(),
                default: c.default,
            });
        }
        Self::build(entries)
    }

    /// A set of certificates from any source; the first is the default unless one says so.
    pub fn build(entries: Vec<CertEntry>) -> Result<Self> {
        let any_default = entries.iter().any(|c| c.default);
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut default = None;
        for (i, c) in entries.into_iter().enumerate() {
            let names = if c.server_names.is_empty() {
                c.key
                    .current()
                    .cert
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
                        .or_insert_with(|| c.key.clone()),
                    None => exact.entry(n).or_insert_with(|| c.key.clone()),
                };
            }
            if c.default || (i == 0 && !any_default) {
                default = Some(c.key);
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
