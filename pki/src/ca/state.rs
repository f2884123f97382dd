//! `state.json` in the CA directory: which roots are trusted, which root and
//! intermediate are active, and the root rotation in progress. No secrets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PkiError, Result};
use crate::keystore;
use crate::spiffe::TrustDomain;

/// Key algorithm of the CA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256.
    #[value(name = "p256")]
    P256,
    /// ECDSA P-384 with SHA-384.
    #[value(name = "p384")]
    P384,
}

impl KeyAlgorithm {
    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// Phase of a root rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
pub enum RootRotation {
    /// The new root is in the bundle; issuance still chains to the old one
    /// until `switch_at` (unix seconds) so every client has fetched it.
    Distributing {
        old_root: String,
        new_root: String,
        switch_at: i64,
    },
    /// Issuance chains to the new root; the old root stays trusted until
    /// `retire_at`, the expiry of the last leaf chaining to it — or, after
    /// an emergency rotation, until no live workload holds a leaf under it
    /// (the service checks its registry of live workloads).
    Draining {
        old_root: String,
        retire_at: i64,
        #[serde(default)]
        emergency: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaState {
    pub format: u32,
    pub trust_domain: String,
    pub dns_suffixes: Vec<String>,
    pub algorithm: KeyAlgorithm,
    pub root_ttl_secs: u64,
    pub intermediate_ttl_secs: u64,
    pub active_root: String,
    pub trusted_roots: Vec<String>,
    pub active_intermediate: String,
    pub root_rotation: Option<RootRotation>,
    /// Latest expiry of leaves issued by earlier intermediates of the
    /// active root, and by the active one as of the last save (unix
    /// seconds).
    pub active_root_leaves_until: i64,
}

pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl CaState {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = state_path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| PkiError::BadCaDir {
            path: dir.to_path_buf(),
            why: format!("cannot read state.json ({e}); run `rampart-pki init` first"),
        })?;
        serde_json::from_str(&text).map_err(|e| PkiError::Config {
            path,
            line: e.line(),
            message: e.to_string(),
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|_| PkiError::Crypto("serialize state"))?;
        keystore::write_file_public(&state_path(dir), text.as_bytes())
    }

    pub fn trust_domain(&self) -> Result<TrustDomain> {
        Ok(TrustDomain::parse(&self.trust_domain)?)
    }
}
