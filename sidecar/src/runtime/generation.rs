//! One generation of everything a reload can change: policy, directory, our TLS material.
//! A reload builds a whole new generation and swaps it in at once (`rampart_ops::reload::Generations`); a
//! bad file refuses the whole generation and the running one stays.

use std::sync::Arc;

use crate::config::{Config, IdentityConfig};
use crate::directory::Directory;
use crate::mtls::{self, TlsMaterial};
use crate::policy::Policy;

/// Policy, directory and TLS material that belong together.
#[derive(Debug)]
pub struct Generation {
    /// The policy.
    pub policy: Arc<Policy>,
    /// The mesh directory.
    pub directory: Arc<Directory>,
    /// Our SVID and the configs built from it.
    pub tls: TlsMaterial,
}

/// Loads the policy and directory files; the error says which file, line and field.
pub fn load_rules(config: &Config) -> Result<(Arc<Policy>, Arc<Directory>), String> {
    let policy = Policy::load(&config.policy).map_err(|e| e.to_string())?;
    let directory = Directory::load(&config.directory).map_err(|e| e.to_string())?;
    Ok((Arc::new(policy), Arc::new(directory)))
}

/// Loads the SVID files (identity from files); `None` when the identity comes from the CA.
pub fn load_tls_files(config: &Config) -> Option<Result<TlsMaterial, String>> {
    let IdentityConfig::Files {
        cert,
        key,
        bundle,
        revoked,
    } = &config.identity
    else {
        return None;
    };
    Some((|| {
        let bundle = mtls::read_bundle(bundle, &config.trust_domain).map_err(|e| e.to_string())?;
        if let Some(path) = revoked {
            bundle.set_revocations(read_revocations(path)?);
        }
        mtls::from_files(cert, key, &bundle).map_err(|e| e.to_string())
    })())
}

/// A whole new generation: rules from their files, TLS from files or else the current one.
pub fn reload(config: &Config, current: &Generation) -> Result<Generation, String> {
    let (policy, directory) = load_rules(config)?;
    let tls = match load_tls_files(config) {
        Some(tls) => tls?,
        None => current.tls.clone(),
    };
    Ok(Generation {
        policy,
        directory,
        tls,
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocations {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    serials: Vec<String>,
}

/// Reads a revocation file (`ids = ["spiffe://…"]`, `serials = ["0a:1b…"]`).
pub fn read_revocations(path: &std::path::Path) -> Result<rampart_tls::RevocationList, String> {
    let source = crate::source::SourceFile::read(path).map_err(|e| e.to_string())?;
    let raw: RawRevocations = source.parse().map_err(|e| e.to_string())?;
    rampart_tls::RevocationList::from_strings(&raw.ids, &raw.serials)
        .map_err(|e| format!("{}: {e}", path.display()))
}
