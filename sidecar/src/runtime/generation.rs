//! One generation of everything a reload can change: policy, directory, our TLS material.
//! A reload builds a whole new generation and publishes it at once on a watch channel; a
//! bad file refuses the whole generation and the running one stays.

use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::mtls::{self, TlsMaterial};
use crate::policy::Policy;

/// Policy, directory and TLS material that belong together.
#[derive(Debug)]
pub struct Generation {
    /// The policy.
    pub policy: Policy,
    /// The mesh directory.
    pub directory: Directory,
    /// Our SVID and the configs built from it.
    pub tls: TlsMaterial,
}

/// Loads a generation from the files the config names; the error says which file and why.
pub fn load(config: &Config) -> Result<Arc<Generation>, String> {
    let policy = Policy::load(&config.policy).map_err(|e| e.to_string())?;
    let directory = Directory::load(&config.directory).map_err(|e| e.to_string())?;
    let bundle = mtls::read_bundle(&config.identity.bundle, &config.trust_domain)
        .map_err(|e| e.to_string())?;
    let tls = mtls::from_files(&config.identity.cert, &config.identity.key, &bundle)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(Generation {
        policy,
        directory,
        tls,
    }))
}
