//! Append-only, hash-chained audit log (JSON lines). Each record carries
//! `prev_hash`, the hash of the record before it, and `hash` =
//! SHA-256(prev_hash || "\n" || canonical JSON of the record without
//! `hash`). Editing, deleting, inserting or reordering a record breaks the
//! chain, which `verify` reports with the line number. Truncating the tail
//! cannot be seen from the file alone: anchor the last hash elsewhere
//! (`audit verify` prints it).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::digest::{digest, SHA256};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{PkiError, Result};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Tail {
    file: File,
    seq: u64,
    prev_hash: String,
}

/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

/// Summary of a verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Number of records.
    pub records: u64,
    /// Hash of the last record (anchor it to detect truncation).
    pub last_hash: String,
}

impl AuditLog {
    /// Opens (creating) the log, verifying the existing chain first: we
    /// never append to a log that was tampered with.
    pub fn open(path: &Path) -> Result<Self> {
        let verified = if path.exists() {
            verify(path)?
        } else {
            Verified {
                records: 0,
                last_hash: GENESIS.into(),
            }
        };
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| PkiError::io(path, e))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail {
                file,
                seq: verified.records,
                prev_hash: verified.last_hash,
            }),
        })
    }

    /// Appends one record. `fields` must be a JSON object; `seq`, `ts`,
    /// `event`, `prev_hash` and `hash` are added.
    pub fn append(&self, event: &str, fields: Value) -> Result<()> {
        let mut map = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let ts = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        map.insert("seq".into(), Value::from(tail.seq + 1));
        map.insert("ts".into(), Value::from(ts));
        map.insert("event".into(), Value::from(event));
        map.insert("prev_hash".into(), Value::from(tail.prev_hash.clone()));
        let hash = chain_hash(&tail.prev_hash, &map);
        map.insert("hash".into(), Value::from(hash.clone()));
        let mut line = Value::Object(map).to_string();
        line.push('\n');
        tail.file
            .write_all(line.as_bytes())
            .map_err(|e| PkiError::io(&self.path, e))?;
        tail.seq += 1;
        tail.prev_hash = hash;
        Ok(())
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

enum SinkMsg {
    Record(String, Value),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Non-blocking front of an [`AuditLog`] for async code: records go over a
/// channel to one writer thread, so handlers (and TLS handshakes) never wait
/// on the disk. Order is preserved.
#[derive(Clone)]
pub struct AuditSink {
    tx: std::sync::mpsc::Sender<SinkMsg>,
}

impl AuditSink {
    /// Moves `log` to a writer thread.
    pub fn spawn(log: AuditLog) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<SinkMsg>();
        std::thread::Builder::new()
            .name("rampart-pki-audit".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        SinkMsg::Record(event, fields) => {
                            if let Err(e) = log.append(&event, fields) {
                                tracing::error!(error = %e, "audit record lost");
                            }
                        }
                        SinkMsg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(|e| PkiError::io("audit writer thread", e))?;
        Ok(AuditSink { tx })
    }

    /// Queues one record.
    pub fn record(&self, event: &str, fields: Value) {
        let _ = self.tx.send(SinkMsg::Record(event.to_string(), fields));
    }

    /// Blocks until every record queued before is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(SinkMsg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

fn chain_hash(prev: &str, record_without_hash: &Map<String, Value>) -> String {
    // serde_json's Map is ordered by key, so this serialisation is canonical.
    let body = Value::Object(record_without_hash.clone()).to_string();
    let mut input = Vec::with_capacity(prev.len() + 1 + body.len());
    input.extend_from_slice(prev.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(body.as_bytes());
    hex::encode(digest(&SHA256, &input))
}

/// Verifies the whole chain of the log at `path`.
pub fn verify(path: &Path) -> Result<Verified> {
    let file = File::open(path).map_err(|e| PkiError::io(path, e))?;
    let mut prev = GENESIS.to_string();
    let mut records = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let lineno = i + 1;
        let bad = |why: String| PkiError::AuditTampered {
            path: path.to_path_buf(),
            line: lineno,
            why,
        };
        let line = line.map_err(|e| PkiError::io(path, e))?;
        let mut map = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad("not a JSON object".into())),
        };
        let hash = match map.remove("hash") {
            Some(Value::String(h)) => h,
            _ => return Err(bad("missing hash".into())),
        };
        if map.get("prev_hash").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(bad("prev_hash does not match the previous record (record removed, inserted or reordered)".into()));
        }
        if map.get("seq").and_then(Value::as_u64) != Some(records + 1) {
            return Err(bad(format!("sequence number is not {}", records + 1)));
        }
        if chain_hash(&prev, &map) != hash {
            return Err(bad(
                "hash does not match the record's contents (record edited)".into(),
            ));
        }
        prev = hash;
        records += 1;
    }
    Ok(Verified {
        records,
        last_hash: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write_log(path: &Path) {
        let log = AuditLog::open(path).unwrap();
        for i in 0..5 {
            log.append(
                "issued",
                json!({"spiffe_id": format!("spiffe://e.org/ns/a/sa/{i}"), "serial": "ab"}),
            )
            .unwrap();
        }
    }

    #[test]
    fn intact_log_verifies_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path);
        write_log(&path); // reopen and continue the chain
        assert_eq!(verify(&path).unwrap().records, 10);
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path);
        let original = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        let edited = original.replacen("sa/2", "sa/9", 1);
        let mut removed = lines.clone();
        removed.remove(1);
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        for (name, text) in [
            ("edit", edited),
            ("remove", removed.join("\n")),
            ("swap", swapped.join("\n")),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = verify(&path).unwrap_err();
            assert!(
                matches!(err, PkiError::AuditTampered { .. }),
                "{name}: {err}"
            );
            assert!(
                AuditLog::open(&path).is_err(),
                "{name}: must refuse to append"
            );
        }
    }
}
