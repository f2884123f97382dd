//! One generation of the rules a reload can change: policy and directory. A reload builds a
//! whole new generation and swaps it in at once (`rampart_ops::reload::Generations`); a bad
//! file refuses the whole generation and the running one stays. Our TLS configs are not part
//! of it: they are published through `rampart-tls`'s `MeshConfigs` ([`crate::mtls::MeshTls`]).

use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::policy::Policy;

/// Policy and directory that belong together.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The policy.
    pub policy: Arc<Policy>,
    /// The mesh directory.
    pub directory: Arc<Directory>,
}

impl Generation {
    /// Loads the policy and directory files; the error says which file, line and field.
    pub fn load(config: &Config) -> Result<Generation, String> {
        let policy = Policy::load(&config.policy).map_err(|e| e.to_string())?;
        let directory = Directory::load(&config.directory).map_err(|e| e.to_string())?;
        Ok(Generation {
            policy: Arc::new(policy),
            directory: Arc::new(directory),
        })
    }
}
