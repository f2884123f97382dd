//! The revocation deny-list: identities and certificate serials the CA
//! refuses to renew or bootstrap, published with the trust bundle so that
//! verifiers refuse those certificates within one bundle refresh. Short
//! lifetimes stay the main defence; the list closes the gap until expiry.
//!
//! Stored as `DIR/revoked.json` (public data, atomic rename). Writers
//! (`rampart-pki revoke`) take an exclusive `flock` on `DIR/revoked.json.lock`
//! so two revocations never lose one another. The running service notices a
//! change at its next issuance (it compares the file's length and mtime on
//! every issuance, on the blocking pool) — revocation is honoured at once,
//! without a restart or a signal.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{PkiError, Result};
use crate::keystore;
use crate::spiffe::SpiffeId;

/// Why and when an entry was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Unix seconds.
    pub revoked_at: i64,
    /// Free text given by the operator.
    #[serde(default)]
    pub reason: String,
}

/// The deny-list (as stored in `revoked.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    /// Revoked SPIFFE IDs: every certificate naming one is refused.
    #[serde(default)]
    pub ids: BTreeMap<String, Entry>,
    /// Revoked certificate serials (lower-case hex of the serial's bytes).
    #[serde(default)]
    pub serials: BTreeMap<String, Entry>,
}

/// The deny-list as published with the bundle (the wire type lives with
/// the CA API in `rampart-identity`).
pub use rampart_identity::api::RevokedList as Published;

/// Normalises a serial as printed by `inspect`, openssl (`AB:CD:…`) or the
/// CA: lower-case hex without separators or a leading `0x`.
pub fn normalize_serial(s: &str) -> Result<String> {
    let hex: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PkiError::BadRequest(format!(
            "serial {s:?}: expected hex (as printed by `rampart-pki inspect`)"
        )));
    }
    Ok(hex)
}

impl RevocationList {
    /// Refuses a certificate for `id` with `serial` (hex) when either is listed.
    pub fn check(&self, id: &SpiffeId, serial: Option<&str>) -> Result<()> {
        if let Some(e) = self.ids.get(id.as_str()) {
            return Err(PkiError::Revoked(format!(
                "identity {id} was revoked at {} ({})",
                e.revoked_at, e.reason
            )));
        }
        if let Some(serial) = serial {
            if let Some(e) = self.serials.get(serial) {
                return Err(PkiError::Revoked(format!(
                    "certificate serial {serial} was revoked at {} ({})",
                    e.revoked_at, e.reason
                )));
            }
        }
        Ok(())
    }

    /// The published form.
    pub fn published(&self) -> Published {
        Published {
            spiffe_ids: self.ids.keys().cloned().collect(),
            serials: self.serials.keys().cloned().collect(),
        }
    }
}

fn list_path(ca_dir: &Path) -> PathBuf {
    ca_dir.join("revoked.json")
}

/// Reads `DIR/revoked.json` (empty when absent).
pub fn load(ca_dir: &Path) -> Result<RevocationList> {
    let path = list_path(ca_dir);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| PkiError::BadCaDir {
            path,
            why: format!("revoked.json: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RevocationList::default()),
        Err(e) => Err(PkiError::io(path, e)),
    }
}

/// What to revoke.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every certificate of an identity, now and later.
    Id(SpiffeId),
    /// One certificate (hex serial).
    Serial(String),
}

/// Adds `target` to the list under the lock; returns false when it was
/// already listed.
pub fn revoke(ca_dir: &Path, target: &Target, reason: &str) -> Result<bool> {
    let _lock = crate::keystore::lock_exclusive(&ca_dir.join("revoked.json.lock"))?;
    let mut list = load(ca_dir)?;
    let entry = Entry {
        revoked_at: OffsetDateTime::now_utc().unix_timestamp(),
        reason: reason.to_string(),
    };
    let added = match target {
        Target::Id(id) => list.ids.insert(id.to_string(), entry).is_none(),
        Target::Serial(s) => list.serials.insert(normalize_serial(s)?, entry).is_none(),
    };
    let json = serde_json::to_vec_pretty(&list).map_err(|e| PkiError::BadRequest(e.to_string()))?;
    keystore::write_file_public(&list_path(ca_dir), &json)?;
    Ok(added)
}

/// Length and mtime of `revoked.json` when last read (None: absent).
type Stamp = Option<(u64, SystemTime)>;

/// The service's view of the list: reloaded when the file changes.
pub struct Watch {
    dir: PathBuf,
    state: Mutex<(Stamp, Arc<RevocationList>)>,
}

impl Watch {
    /// Loads the list of the CA in `ca_dir`.
    pub fn new(ca_dir: &Path) -> Result<Self> {
        let w = Watch {
            dir: ca_dir.to_path_buf(),
            state: Mutex::new((None, Arc::new(RevocationList::default()))),
        };
        w.current()?;
        Ok(w)
    }

    /// The current list (one `stat`; a re-read only when the file changed).
    /// Blocking: call from the blocking pool.
    pub fn current(&self) -> Result<Arc<RevocationList>> {
        let path = list_path(&self.dir);
        let stamp = match fs::metadata(&path) {
            Ok(m) => Some((m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(PkiError::io(path, e)),
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 != stamp {
            let list = load(&self.dir)?;
            *st = (stamp, Arc::new(list));
        }
        Ok(Arc::clone(&st.1))
    }

    /// The last list read, without touching the disk (for async code).
    pub fn cached(&self) -> Arc<RevocationList> {
        Arc::clone(&self.state.lock().unwrap_or_else(|p| p.into_inner()).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_then_check_and_watch_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let watch = Watch::new(dir.path()).unwrap();
        let id = SpiffeId::parse("spiffe://e.org/ns/a/sa/b").unwrap();
        assert!(watch.current().unwrap().check(&id, Some("01ab")).is_ok());
        assert!(revoke(dir.path(), &Target::Serial("01:AB".into()), "key leaked").unwrap());
        assert!(!revoke(dir.path(), &Target::Serial("01ab".into()), "again").unwrap());
        let err = watch
            .current()
            .unwrap()
            .check(&id, Some("01ab"))
            .unwrap_err();
        assert!(err.to_string().contains("serial 01ab was revoked"), "{err}");
        revoke(dir.path(), &Target::Id(id.clone()), "decommissioned").unwrap();
        let err = watch.current().unwrap().check(&id, None).unwrap_err();
        assert!(err.to_string().contains("decommissioned"), "{err}");
        assert_eq!(
            watch.current().unwrap().published(),
            Published {
                spiffe_ids: vec![id.to_string()],
                serials: vec!["01ab".into()]
            }
        );
        assert!(normalize_serial("xyz").is_err());
    }
}
