//! Live workloads: for each identity, the newest certificate the CA gave it
//! (serial, the root it chains to, expiry). An emergency root rotation uses
//! it to retire the old root as soon as no live workload (unexpired leaf)
//! still holds a leaf under it.
//!
//! Kept in memory by the service (a map update per issuance, no I/O on the
//! issuance path) and saved to `CA_DIR/workloads.json` by the rotation loop
//! whenever it changed (every `[rotation] check_interval_ms`) and at
//! shutdown. Saving merges with what is on disk under an exclusive `flock`
//! on `workloads.json.lock`, so `rampart-pki issue` (which records its
//! certificates there too) and the service never drop each other's entries.
//!
//! **Crash window.** A leaf issued after the last save and before a crash
//! is not in the file. So the file says whether the service that wrote it
//! stopped cleanly; after an unclean stop the registry is *incomplete* until
//! every leaf issued before the restart has expired (restart + the longest
//! leaf lifetime), and until then an emergency rotation waits for the old
//! root's leaves to expire, as it did before the CA tracked workloads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{PkiError, Result};
use crate::keystore;

/// The newest certificate of one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveLeaf {
    /// Serial of the leaf (hex).
    pub serial: String,
    /// Serial of the root the leaf chains to.
    pub root: String,
    /// Expiry (unix seconds).
    pub not_after: i64,
    /// Issuance time (unix seconds); the newer entry wins a merge.
    pub issued_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Whether the service that saved last stopped cleanly.
    clean: bool,
    /// Identity (SPIFFE ID; `ID#edge` for edge certificates) → newest leaf.
    workloads: HashMap<String, LiveLeaf>,
}

/// The registry of live workloads of one CA directory.
pub struct Workloads {
    path: PathBuf,
    live: Mutex<HashMap<String, LiveLeaf>>,
    dirty: AtomicBool,
    /// Length and modification time of the file as we last wrote it: a
    /// difference means another process (`rampart-pki issue`) wrote it.
    written: Mutex<Option<(u64, std::time::SystemTime)>>,
    /// Before this (unix seconds) the registry may miss leaves (see the
    /// module docs); 0: complete.
    incomplete_until: i64,
}

/// The registry file of the CA in `ca_dir`.
pub fn path(ca_dir: &Path) -> PathBuf {
    ca_dir.join("workloads.json")
}

impl Workloads {
    /// Opens the registry of the service; `max_leaf_ttl` bounds how long an
    /// unclean stop (or a CA directory without a registry, made before the
    /// CA tracked workloads) leaves it incomplete. Marks the file as in use (not
    /// clean) until [`Workloads::close`].
    pub fn open(ca_dir: &Path, max_leaf_ttl: Duration) -> Result<Self> {
        let path = path(ca_dir);
        let (file, existed) = with_lock(&path, |disk| {
            let existed = disk.is_some();
            let mut file = disk.unwrap_or(File {
                clean: true,
                workloads: HashMap::new(),
            });
            let was_clean = file.clean;
            file.clean = false;
            write(&path, &file)?;
            file.clean = was_clean;
            Ok((file, existed))
        })?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let incomplete_until = if !existed || !file.clean {
            tracing::warn!(
                path = %path.display(),
                "no registry of live workloads, or the last service did not stop cleanly: it is incomplete until the leaves issued before may have expired"
            );
            now + i64::try_from(max_leaf_ttl.as_secs()).unwrap_or(i64::MAX / 2)
        } else {
            0
        };
        Ok(Workloads {
            written: Mutex::new(stamp(&path)),
            path,
            live: Mutex::new(file.workloads),
            dirty: AtomicBool::new(false),
            incomplete_until,
        })
    }

    /// Records the newest leaf of `identity` (in memory; saved later).
    pub fn record(&self, identity: &str, leaf: LiveLeaf) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.insert(identity.to_string(), leaf);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Live workloads (unexpired newest leaf), in total and per root.
    pub fn count(&self) -> (usize, HashMap<String, usize>) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut per_root: HashMap<String, usize> = HashMap::new();
        let mut total = 0;
        for leaf in live.values().filter(|l| l.not_after >= now) {
            total += 1;
            *per_root.entry(leaf.root.clone()).or_default() += 1;
        }
        (total, per_root)
    }

    /// Live workloads whose newest leaf chains to `root`.
    pub fn on_root(&self, root: &str) -> usize {
        self.count().1.get(root).copied().unwrap_or(0)
    }

    /// Whether every leaf issued so far is known (false for a while after
    /// an unclean stop).
    pub fn complete(&self) -> bool {
        OffsetDateTime::now_utc().unix_timestamp() >= self.incomplete_until
    }

    /// Saves if anything changed since the last save, here or in the file
    /// (blocking: file I/O and a lock; call from the blocking pool).
    pub fn sync(&self) -> Result<()> {
        let changed_on_disk =
            stamp(&self.path) != *self.written.lock().unwrap_or_else(|p| p.into_inner());
        if self.dirty.swap(false, Ordering::Relaxed) || changed_on_disk {
            if let Err(e) = self.save(false) {
                self.dirty.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Saves and marks the file clean (the service stops).
    pub fn close(&self) -> Result<()> {
        self.save(true)
    }

    /// Merges with the file (entries written by `rampart-pki issue`), drops
    /// expired entries, writes.
    fn save(&self, clean: bool) -> Result<()> {
        with_lock(&self.path, |disk| {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(disk) = disk {
                merge(&mut live, disk.workloads);
            }
            prune(&mut live);
            let file = File {
                clean,
                workloads: live.clone(),
            };
            drop(live);
            write(&self.path, &file)?;
            *self.written.lock().unwrap_or_else(|p| p.into_inner()) = stamp(&self.path);
            Ok(())
        })
    }
}

/// Creates the empty, complete registry of a new CA in `ca_dir`.
pub(crate) fn create(ca_dir: &Path) -> Result<()> {
    let path = path(ca_dir);
    with_lock(&path, |_| {
        write(
            &path,
            &File {
                clean: true,
                workloads: HashMap::new(),
            },
        )
    })
}

/// Records one leaf issued outside the service (`rampart-pki issue`)
/// straight into the file of the CA in `ca_dir`.
pub fn record_offline(ca_dir: &Path, identity: &str, leaf: LiveLeaf) -> Result<()> {
    let path = path(ca_dir);
    with_lock(&path, |disk| {
        let mut file = disk.unwrap_or(File {
            clean: true,
            workloads: HashMap::new(),
        });
        merge(
            &mut file.workloads,
            HashMap::from([(identity.to_string(), leaf)]),
        );
        prune(&mut file.workloads);
        write(&path, &file)
    })
}

/// Keeps, per identity, the most recently issued leaf.
fn merge(into: &mut HashMap<String, LiveLeaf>, from: HashMap<String, LiveLeaf>) {
    for (id, leaf) in from {
        match into.get(&id) {
            Some(mine) if mine.issued_at >= leaf.issued_at => {}
            _ => {
                into.insert(id, leaf);
            }
        }
    }
}

fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn prune(live: &mut HashMap<String, LiveLeaf>) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    live.retain(|_, l| l.not_after >= now);
}

fn with_lock<T>(path: &Path, f: impl FnOnce(Option<File>) -> Result<T>) -> Result<T> {
    let _lock = keystore::lock_exclusive(&path.with_extension("json.lock"))?;
    let disk = match std::fs::read_to_string(path) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|e| PkiError::Config {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(PkiError::io(path, e)),
    };
    f(disk)
}

fn write(path: &Path, file: &File) -> Result<()> {
    let text = serde_json::to_vec(file).map_err(|_| PkiError::Crypto("serialize workloads"))?;
    keystore::write_file_public(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(root: &str, ttl: i64, issued_at: i64) -> LiveLeaf {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        LiveLeaf {
            serial: format!("{root}-{issued_at}"),
            root: root.into(),
            not_after: now + ttl,
            issued_at,
        }
    }

    #[test]
    fn newest_leaf_per_identity_survives_restarts_and_offline_issuance() {
        let dir = tempfile::tempdir().unwrap();
        let w = Workloads::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert!(
            !w.complete(),
            "no registry file: leaves may exist that it never saw"
        );
        drop(w);
        Workloads::open(dir.path(), Duration::ZERO)
            .unwrap()
            .close()
            .unwrap();
        let w = Workloads::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert!(w.complete(), "a registry closed cleanly is complete");
        w.record("spiffe://td/a", leaf("old", 60, 1));
        w.record("spiffe://td/b", leaf("old", 60, 1));
        w.record("spiffe://td/gone", leaf("old", -5, 1));
        assert_eq!(w.on_root("old"), 2, "expired leaves are not live");
        w.record("spiffe://td/a", leaf("new", 60, 2));
        assert_eq!((w.on_root("old"), w.on_root("new")), (1, 1));
        w.sync().unwrap();
        // `rampart-pki issue` while the service runs: merged, not lost.
        record_offline(dir.path(), "spiffe://td/c", leaf("old", 60, 3)).unwrap();
        w.sync().unwrap();
        assert_eq!(w.on_root("old"), 2, "the service reads what `issue` wrote");
        w.record("spiffe://td/b", leaf("new", 60, 4));
        w.close().unwrap();
        let again = Workloads::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert!(again.complete(), "a clean stop keeps the registry complete");
        assert_eq!((again.on_root("old"), again.on_root("new")), (1, 2));
        // No close: the next start knows it may miss leaves.
        drop(again);
        let after_crash = Workloads::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert!(!after_crash.complete());
        assert_eq!(after_crash.count().0, 3);
    }
}
