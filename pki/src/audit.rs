//! Append-only, hash-chained audit log (JSON lines). Each record carries
//! `prev_hash`, the hash of the record before it, and `hash` =
//! SHA-256(prev_hash || "\n" || canonical JSON of the record without
//! `hash`). Editing, deleting, inserting or reordering a record breaks the
//! chain, which [`verify`] reports with the line number. Truncating the tail
//! cannot be seen from the file alone: anchor the last hash elsewhere
//! (`audit verify` prints it).
//!
//! **One writer at a time.** Every append takes an exclusive `flock` on
//! `LOG.lock` (a separate file, so it survives sealing), re-reads the tail
//! of the log if another process appended since, writes, fsyncs, and
//! unlocks. The running service and the CLI (`token create`, `issue`) both
//! go through it, so their records interleave on one intact chain.
//!
//! **Durability.** A record is on disk (`fdatasync`) before `append`
//! returns. The service's writer thread writes whatever is queued as one
//! batch and syncs once per batch (group commit: a record that must be
//! durable waits, up to 2 ms and only while other connections may still
//! queue one, for them to share its `fdatasync`); issuance waits for its
//! record to be durable before the certificate is returned.
//!
//! **A break never stops the CA.** Opening reads only the last record (no
//! full verification at every start; `audit verify` and the service's
//! background check do that). When the tail does not verify (a torn write,
//! an edit), or the background check finds a break anywhere, the log is
//! *sealed* — renamed to `LOG.sealed-UNIXTIME` and made read-only — and a
//! new chain starts whose first record, `chain_restarted`, names the sealed
//! file, its SHA-256, the line where it broke, why, and the last hash that
//! did verify.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ring::digest::{digest, Context, SHA256};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{PkiError, Result};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest record accepted when reading the tail (records are < 4 KiB).
const MAX_TAIL: u64 = 64 * 1024;

/// Where the chain stands after the last record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tail {
    /// Length of the file this tail was read from (detects other writers).
    len: u64,
    seq: u64,
    prev_hash: String,
}

/// A chain break found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line of the first record that does not verify.
    pub line: usize,
    /// Why it does not verify.
    pub why: String,
    /// Hash of the last record that verified (genesis if none).
    pub last_good_hash: String,
}

/// Health of the chain as seen by this process (exported as metrics).
#[derive(Debug, Default)]
pub struct ChainHealth {
    /// Breaks found (at open, at append, or by the background check).
    pub breaks: AtomicU64,
    /// Logs sealed and restarted.
    pub restarts: AtomicU64,
    /// Records appended by this process.
    pub records: AtomicU64,
    /// 1 when the last full verification passed, 0 when it failed,
    /// 2 while none has completed.
    pub verified: AtomicU64,
}

/// An audit log. Cheap to share; appends are serialised by a process-local
/// mutex and, across processes, by the `flock`.
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
    tail: Mutex<Option<Tail>>,
    health: Arc<ChainHealth>,
}

/// Summary of a verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Number of records.
    pub records: u64,
    /// Hash of the last record (anchor it to detect truncation).
    pub last_hash: String,
    /// When this chain was started after a break: its first record
    /// (`chain_restarted`: the sealed log, its SHA-256, the line where it
    /// broke, why, the last hash that verified).
    pub restarted: Option<Value>,
}

impl AuditLog {
    /// Opens (creating) the log. Reads only the last record; a tail that
    /// does not verify seals the log and starts a new chain.
    pub fn open(path: &Path) -> Result<Self> {
        let mut lock_name = path.as_os_str().to_os_string();
        lock_name.push(".lock");
        let log = AuditLog {
            path: path.to_path_buf(),
            lock_path: PathBuf::from(lock_name),
            tail: Mutex::new(None),
            health: Arc::new(ChainHealth {
                verified: AtomicU64::new(2),
                ..ChainHealth::default()
            }),
        };
        log.append_batch(Vec::new())?;
        Ok(log)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters for metrics.
    pub fn health(&self) -> Arc<ChainHealth> {
        Arc::clone(&self.health)
    }

    /// Appends one record. `fields` must be a JSON object; `seq`, `ts`,
    /// `event`, `prev_hash` and `hash` are added. Durable on return.
    pub fn append(&self, event: &str, fields: Value) -> Result<()> {
        self.append_batch(vec![(event.to_string(), fields)])
    }

    /// Appends records in order under one lock, one write and one fsync.
    pub fn append_batch(&self, records: Vec<(String, Value)>) -> Result<()> {
        let mut cached = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = self.lock()?;
        let mut file = self.open_append()?;
        let len = file
            .metadata()
            .map_err(|e| PkiError::io(&self.path, e))?
            .len();
        let mut tail = match cached.take() {
            Some(t) if t.len == len => t,
            // First use, or another process appended (or sealed) since.
            _ => match read_tail(&self.path, &mut file, len)? {
                Ok(t) => t,
                Err(brk) => {
                    drop(file);
                    let t = self.seal_and_restart(&brk)?;
                    file = self.open_append()?;
                    t
                }
            },
        };
        if records.is_empty() {
            *cached = Some(tail);
            return Ok(());
        }
        let count = records.len() as u64;
        let mut out = String::with_capacity(records.len() * 512);
        let mut next = tail.clone();
        for (event, fields) in records {
            out.push_str(&seal_record(&mut next, &event, fields));
        }
        file.write_all(out.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| PkiError::io(&self.path, e))?;
        next.len = len + out.len() as u64;
        tail = next;
        self.health.records.fetch_add(count, Ordering::Relaxed);
        *cached = Some(tail);
        Ok(())
    }

    /// Verifies the whole log now (under the lock, so no writer interleaves)
    /// and, when the chain is broken, seals it and starts a new one.
    /// Returns the break found, if any.
    pub fn check_and_repair(&self) -> Result<Option<ChainBreak>> {
        let mut cached = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = self.lock()?;
        let outcome = match verify_chain(&self.path)? {
            Ok(_) => None,
            Err(brk) => {
                let t = self.seal_and_restart(&brk)?;
                *cached = Some(t);
                Some(brk)
            }
        };
        self.health
            .verified
            .store(u64::from(outcome.is_none()), Ordering::Relaxed);
        Ok(outcome)
    }

    fn lock(&self) -> Result<File> {
        crate::keystore::lock_exclusive(&self.lock_path)
    }

    fn open_append(&self) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&self.path)
            .map_err(|e| PkiError::io(&self.path, e))
    }

    /// Under the lock: renames the log to `LOG.sealed-UNIXTIME` (read-only)
    /// and starts a new chain whose first record says where the old broke.
    fn seal_and_restart(&self, brk: &ChainBreak) -> Result<Tail> {
        self.health.breaks.fetch_add(1, Ordering::Relaxed);
        let now = OffsetDateTime::now_utc();
        let mut sealed = self.path.as_os_str().to_os_string();
        sealed.push(format!(".sealed-{}", now.unix_timestamp_nanos()));
        let sealed = PathBuf::from(sealed);
        let sha = sha256_file(&self.path)?;
        std::fs::rename(&self.path, &sealed).map_err(|e| PkiError::io(&sealed, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o400));
        }
        tracing::error!(
            log = %self.path.display(),
            sealed = %sealed.display(),
            line = brk.line,
            why = %brk.why,
            "audit chain broken: log sealed, new chain started"
        );
        let mut tail = Tail {
            len: 0,
            seq: 0,
            prev_hash: GENESIS.into(),
        };
        let line = seal_record(
            &mut tail,
            "chain_restarted",
            json!({
                "sealed_log": sealed.file_name().map(|n| n.to_string_lossy().into_owned()),
                "sealed_sha256": sha,
                "broken_at_line": brk.line,
                "why": brk.why,
                "last_good_hash": brk.last_good_hash,
            }),
        );
        let mut file = self.open_append()?;
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| PkiError::io(&self.path, e))?;
        // The rename and the new file are durable too.
        if let Some(parent) = self.path.parent() {
            if let Ok(d) = File::open(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            }) {
                let _ = d.sync_all();
            }
        }
        tail.len = line.len() as u64;
        self.health.restarts.fetch_add(1, Ordering::Relaxed);
        Ok(tail)
    }
}

/// Builds one record line (with its newline) on `tail`, advancing it.
fn seal_record(tail: &mut Tail, event: &str, fields: Value) -> String {
    let mut map = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let ts = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    map.insert("seq".into(), Value::from(tail.seq + 1));
    map.insert("ts".into(), Value::from(ts));
    map.insert("event".into(), Value::from(event));
    map.insert("prev_hash".into(), Value::from(tail.prev_hash.clone()));
    let hash = chain_hash(&tail.prev_hash, &map);
    map.insert("hash".into(), Value::from(hash.clone()));
    let mut line = serde_json::to_string(&map).unwrap_or_default();
    line.push('\n');
    tail.seq += 1;
    tail.prev_hash = hash;
    line
}

/// Reads and checks the last record of a log of length `len`: Ok(tail) or
/// the break (a torn last line, a record whose hash does not match).
fn read_tail(
    path: &Path,
    file: &mut File,
    len: u64,
) -> Result<std::result::Result<Tail, ChainBreak>> {
    if len == 0 {
        return Ok(Ok(Tail {
            len: 0,
            seq: 0,
            prev_hash: GENESIS.into(),
        }));
    }
    let start = len.saturating_sub(MAX_TAIL);
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.take(len - start).read_to_end(&mut buf))
        .map_err(|e| PkiError::io(path, e))?;
    // Only on this rare path is the whole log read: the full check names
    // the first line that does not verify and the last hash that did.
    let located = |why: &str| -> Result<std::result::Result<Tail, ChainBreak>> {
        Ok(Err(match verify_chain(path)? {
            Err(brk) => ChainBreak {
                why: format!("{}; {why}", brk.why),
                ..brk
            },
            Ok(v) => ChainBreak {
                line: usize::try_from(v.records).unwrap_or(usize::MAX),
                why: why.to_string(),
                last_good_hash: v.last_hash,
            },
        }))
    };
    if buf.last() != Some(&b'\n') {
        return located("the last record is incomplete (torn write: no end of line)");
    }
    let body = &buf[..buf.len() - 1];
    let last = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => return located("the last record is over 64 KiB"),
    };
    let checked = std::str::from_utf8(last)
        .ok()
        .and_then(|l| check_record(l).ok());
    match checked {
        Some((seq, hash)) => Ok(Ok(Tail {
            len,
            seq,
            prev_hash: hash,
        })),
        None => located("the last record does not verify (edited or torn)"),
    }
}

/// Checks one record's own hash; returns (seq, hash).
fn check_record(line: &str) -> std::result::Result<(u64, String), String> {
    let mut map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        _ => return Err("not a JSON object".into()),
    };
    let hash = match map.remove("hash") {
        Some(Value::String(h)) => h,
        _ => return Err("missing hash".into()),
    };
    let prev = map
        .get("prev_hash")
        .and_then(Value::as_str)
        .ok_or("missing prev_hash")?
        .to_string();
    let seq = map
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("missing seq")?;
    if chain_hash(&prev, &map) != hash {
        return Err("hash does not match the record's contents (record edited)".into());
    }
    Ok((seq, hash))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| PkiError::io(path, e))?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| PkiError::io(path, e))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex::encode(ctx.finish()))
}

enum SinkMsg {
    /// Wakes the lingering writer to re-check (never sent).
    Nothing,
    Record(String, Value, Option<tokio::sync::oneshot::Sender<bool>>),
    Flush(std::sync::mpsc::Sender<()>),
    Check(std::sync::mpsc::Sender<Option<ChainBreak>>),
}

/// Non-blocking front of an [`AuditLog`] for async code: records go over a
/// channel to one writer thread, so handlers (and TLS handshakes) never wait
/// on the disk unless they ask to. Order is preserved; queued records are
/// written and synced as one batch.
#[derive(Clone)]
pub struct AuditSink {
    tx: std::sync::mpsc::Sender<SinkMsg>,
    health: Arc<ChainHealth>,
    path: PathBuf,
    expected: Arc<AtomicU64>,
}

/// A caller (a connection to the service) that may soon queue a durable
/// record: while any exist, the writer holds a batch that has a waiter up
/// to [`GROUP_COMMIT_MAX`] so that one `fdatasync` covers theirs too. When
/// none is expected the batch is synced at once (no added latency when the
/// CA is idle). Dropping it (or [`AuditSink::record_durable`]) ends it.
#[derive(Debug)]
pub struct Expected(Arc<AtomicU64>);

impl Drop for Expected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

const MAX_BATCH: usize = 256;
/// Longest a durable record waits for expected others before its batch is
/// synced (group commit).
const GROUP_COMMIT_MAX: std::time::Duration = std::time::Duration::from_millis(2);
/// How often a lingering writer re-reads the expected count (callers that
/// leave without a record do not wake it).
const GROUP_COMMIT_POLL: std::time::Duration = std::time::Duration::from_micros(250);

impl AuditSink {
    /// Moves `log` to a writer thread.
    pub fn spawn(log: AuditLog) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<SinkMsg>();
        let health = log.health();
        let path = log.path().to_path_buf();
        let expected = Arc::new(AtomicU64::new(0));
        let waiting_for = Arc::clone(&expected);
        std::thread::Builder::new()
            .name("rampart-pki-audit".into())
            .spawn(move || writer(log, rx, &waiting_for))
            .map_err(|e| PkiError::io("audit writer thread", e))?;
        Ok(AuditSink {
            tx,
            health,
            path,
            expected,
        })
    }

    /// Announces a caller that may soon queue a durable record (see
    /// [`Expected`]).
    pub fn expect(&self) -> Expected {
        self.expected.fetch_add(1, Ordering::Relaxed);
        Expected(Arc::clone(&self.expected))
    }

    /// Queues one record (synced with the next batch).
    pub fn record(&self, event: &str, fields: Value) {
        let _ = self
            .tx
            .send(SinkMsg::Record(event.to_string(), fields, None));
    }

    /// Queues one record and waits until it is on disk; false if it could
    /// not be written. `expected` (this caller's announcement, if any)
    /// ends once the record is queued.
    pub async fn record_durable(
        &self,
        event: &str,
        fields: Value,
        expected: Option<Expected>,
    ) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        let sent = self
            .tx
            .send(SinkMsg::Record(event.to_string(), fields, Some(done)));
        drop(expected);
        if sent.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }

    /// Blocks until every record queued before is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(SinkMsg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Blocks while the whole chain is verified (and repaired if broken).
    pub fn check_and_repair(&self) -> Option<ChainBreak> {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(SinkMsg::Check(tx)).is_ok() {
            return rx.recv().ok().flatten();
        }
        None
    }

    /// Verifies the whole chain on a thread of its own, without holding
    /// the lock (writers go on); only when it finds a break does it ask the
    /// writer to re-check under the lock and seal. Returns the thread.
    pub fn background_check(&self) -> Result<std::thread::JoinHandle<Option<ChainBreak>>> {
        let sink = self.clone();
        std::thread::Builder::new()
            .name("rampart-pki-audit-verify".into())
            .spawn(move || match verify_chain(&sink.path) {
                Ok(Ok(v)) => {
                    tracing::info!(records = v.records, "audit chain verified");
                    sink.health.verified.store(1, Ordering::Relaxed);
                    None
                }
                Ok(Err(_)) => sink.check_and_repair(),
                Err(e) => {
                    tracing::error!(error = %e, "audit verification could not read the log");
                    None
                }
            })
            .map_err(|e| PkiError::io("audit verify thread", e))
    }

    /// Counters for metrics.
    pub fn health(&self) -> &ChainHealth {
        &self.health
    }
}

fn writer(log: AuditLog, rx: std::sync::mpsc::Receiver<SinkMsg>, expected: &AtomicU64) {
    let mut batch: Vec<(String, Value)> = Vec::new();
    let mut waiters: Vec<tokio::sync::oneshot::Sender<bool>> = Vec::new();
    let write = |batch: &mut Vec<(String, Value)>,
                 waiters: &mut Vec<tokio::sync::oneshot::Sender<bool>>| {
        if batch.is_empty() {
            return;
        }
        let records = batch.len();
        let ok = match log.append_batch(std::mem::take(batch)) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, records, "audit records lost");
                false
            }
        };
        for w in waiters.drain(..) {
            let _ = w.send(ok);
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch_started = std::time::Instant::now();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            if batch.is_empty() {
                batch_started = std::time::Instant::now();
            }
            match msg {
                SinkMsg::Nothing => {}
                SinkMsg::Record(event, fields, done) => {
                    batch.push((event, fields));
                    waiters.extend(done);
                    if batch.len() >= MAX_BATCH {
                        write(&mut batch, &mut waiters);
                    }
                }
                SinkMsg::Flush(done) => {
                    write(&mut batch, &mut waiters);
                    let _ = done.send(());
                }
                SinkMsg::Check(done) => {
                    write(&mut batch, &mut waiters);
                    let found = match log.check_and_repair() {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(error = %e, "audit verification failed to run");
                            None
                        }
                    };
                    let _ = done.send(found);
                }
            }
            // Group commit: everything already queued joins the batch; a
            // batch with a waiter then lingers, up to GROUP_COMMIT_MAX, only
            // while other callers are expected to queue a durable record
            // soon, so one fdatasync (a disk flush: the costliest step of an
            // issuance after the signatures) covers them all.
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(_) if waiters.is_empty() => None,
                Err(_) => {
                    let left = GROUP_COMMIT_MAX.saturating_sub(batch_started.elapsed());
                    if left.is_zero() || expected.load(Ordering::Relaxed) == 0 {
                        None
                    } else {
                        match rx.recv_timeout(left.min(GROUP_COMMIT_POLL)) {
                            Ok(m) => Some(m),
                            // Re-check the deadline and the expected count.
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                                Some(SinkMsg::Nothing)
                            }
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
                        }
                    }
                }
            };
        }
        write(&mut batch, &mut waiters);
    }
}

fn chain_hash(prev: &str, record_without_hash: &Map<String, Value>) -> String {
    // serde_json's Map is ordered by key, so this serialisation is canonical
    // (the same bytes as `Value::Object(map).to_string()`).
    let mut input = Vec::with_capacity(prev.len() + 1 + 512);
    input.extend_from_slice(prev.as_bytes());
    input.push(b'\n');
    if serde_json::to_writer(&mut input, record_without_hash).is_err() {
        // Writing a Map of JSON values to a Vec cannot fail.
        input.truncate(prev.len() + 1);
    }
    hex::encode(digest(&SHA256, &input))
}

/// Verifies the whole chain of the log at `path`.
pub fn verify(path: &Path) -> Result<Verified> {
    verify_chain(path)?.map_err(|brk| PkiError::AuditTampered {
        path: path.to_path_buf(),
        line: brk.line,
        why: brk.why,
    })
}

fn verify_chain(path: &Path) -> Result<std::result::Result<Verified, ChainBreak>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Ok(Verified {
                records: 0,
                last_hash: GENESIS.into(),
                restarted: None,
            }))
        }
        Err(e) => return Err(PkiError::io(path, e)),
    };
    let mut prev = GENESIS.to_string();
    let mut records = 0u64;
    let mut restarted = None;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| PkiError::io(path, e))?;
        let bad = |why: String| ChainBreak {
            line: i + 1,
            why,
            last_good_hash: prev.clone(),
        };
        let Ok(line) = std::str::from_utf8(&line) else {
            return Ok(Err(bad("not UTF-8".into())));
        };
        let mut map = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => m,
            _ => return Ok(Err(bad("not a JSON object".into()))),
        };
        let hash = match map.remove("hash") {
            Some(Value::String(h)) => h,
            _ => return Ok(Err(bad("missing hash".into()))),
        };
        if map.get("prev_hash").and_then(Value::as_str) != Some(prev.as_str()) {
            return Ok(Err(bad("prev_hash does not match the previous record (record removed, inserted or reordered)".into())));
        }
        if map.get("seq").and_then(Value::as_u64) != Some(records + 1) {
            return Ok(Err(bad(format!("sequence number is not {}", records + 1))));
        }
        if chain_hash(&prev, &map) != hash {
            return Ok(Err(bad(
                "hash does not match the record's contents (record edited)".into(),
            )));
        }
        if records == 0 && map.get("event").and_then(Value::as_str) == Some("chain_restarted") {
            restarted = Some(Value::Object(map));
        }
        prev = hash;
        records += 1;
    }
    Ok(Ok(Verified {
        records,
        last_hash: prev,
        restarted,
    }))
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

    /// A temporary directory holding `audit.jsonl` with five records.
    fn written_log() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path);
        (dir, path)
    }

    fn sealed_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".sealed-"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn intact_log_verifies_and_reopens() {
        let (dir, path) = written_log();
        write_log(&path); // reopen and continue the chain
        assert_eq!(verify(&path).unwrap().records, 10);
        assert!(sealed_files(dir.path()).is_empty());
    }

    #[test]
    fn tampering_is_detected() {
        let (_dir, path) = written_log();
        let original = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        let edited = original.replacen("sa/2", "sa/9", 1);
        let mut removed = lines.clone();
        removed.remove(1);
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        for (name, text) in [
            ("edit", edited),
            ("remove", removed.join("\n") + "\n"),
            ("swap", swapped.join("\n") + "\n"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = verify(&path).unwrap_err();
            assert!(
                matches!(err, PkiError::AuditTampered { line: 2 | 3, .. }),
                "{name}: {err}"
            );
        }
    }

    /// Two independent writers on one log (the service and a CLI command):
    /// before the lock and tail re-read, each appended from its own cached
    /// tail and the chain broke at the second writer's next record.
    #[test]
    fn two_writers_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let service = AuditLog::open(&path).unwrap();
        service.append("a", json!({})).unwrap();
        for i in 0..20 {
            let cli = AuditLog::open(&path).unwrap();
            cli.append("token_created", json!({"i": i})).unwrap();
            service.append("issued", json!({"i": i})).unwrap();
        }
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let log = AuditLog::open(&path).unwrap();
                    for i in 0..50 {
                        log.append("x", json!({"t": t, "i": i})).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(verify(&path).unwrap().records, 41 + 200);
        assert!(sealed_files(dir.path()).is_empty());
    }

    #[test]
    fn torn_tail_seals_and_restarts_the_chain() {
        let (dir, path) = written_log();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"seq\":6,\"ev"); // a crash mid-write
        std::fs::write(&path, &text).unwrap();
        let log = AuditLog::open(&path).unwrap();
        log.append("issued", json!({"after": "break"})).unwrap();
        let sealed = sealed_files(dir.path());
        assert_eq!(sealed.len(), 1);
        assert_eq!(std::fs::read_to_string(&sealed[0]).unwrap(), text);
        let verified = verify(&path).unwrap();
        assert_eq!(verified.records, 2);
        let first = verified
            .restarted
            .expect("the new chain starts with chain_restarted");
        assert_eq!(first["broken_at_line"], 6);
        assert!(first["why"].as_str().unwrap().contains("torn"));
        assert_eq!(log.health().restarts.load(Ordering::Relaxed), 1);
    }

    /// A break in the middle is not seen at open (no full verification on
    /// every start: appends go on), and the full check seals it naming the
    /// line and the last hash that verified.
    #[test]
    fn a_break_inside_is_found_by_the_full_check_and_sealed() {
        let (_dir, path) = written_log();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("sa/2", "sa/9", 1)).unwrap();
        let log = AuditLog::open(&path).unwrap();
        log.append("issued", json!({})).unwrap();
        let brk = log.check_and_repair().unwrap().expect("break found");
        assert_eq!(brk.line, 3);
        assert_eq!(log.health().verified.load(Ordering::Relaxed), 0);
        let good: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(brk.last_good_hash, good["hash"].as_str().unwrap());
        log.append("issued", json!({})).unwrap();
        assert_eq!(verify(&path).unwrap().records, 2);
        assert!(log.check_and_repair().unwrap().is_none());
        assert_eq!(log.health().verified.load(Ordering::Relaxed), 1);
    }
}
