//! A JSON-lines log written by a dedicated thread, generic over the record type, so a request
//! path never waits on I/O: records go through a bounded queue and are dropped (and counted)
//! when the writer falls behind.
//!
//! The writer wakes every [`DRAIN_EVERY`] and drains the queue without blocking in `recv`, so a
//! sender never pays for waking it (a futex wake per line cost ~20% of the edge's CPU under
//! load). The destination is `stdout` or a file opened for append with mode 0640; [`JsonLog::reopen`]
//! re-opens the file after log rotation.
//!
//! Two ways to log a record: [`JsonLog::send`] queues an owned `R` that the writer serialises;
//! [`JsonLog::send_now`] serialises any `Serialize` value on the caller's thread (a struct of
//! borrowed fields: no owned copies, no map) and queues only the bytes of the line;
//! [`JsonLog::send_now_with`] also starts the line with [`Fixed`] fields serialised once (a
//! connection's, for the lines of its requests).

use prometheus::IntCounter;
use serde::Serialize;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

/// How often the writer thread wakes to drain its queue.
pub const DRAIN_EVERY: Duration = Duration::from_millis(20);
const BUFFER: usize = 256 * 1024;
/// First capacity of a line serialised by [`JsonLog::send_now`] (most lines fit).
const LINE: usize = 768;

enum Msg<R> {
    Record(Box<R>),
    Line(Vec<u8>),
    Reopen,
    Flush(std::sync::mpsc::Sender<()>),
}

/// The sending half, cheap to clone. Dropping every clone stops the writer after it has
/// written what was queued.
pub struct JsonLog<R> {
    tx: SyncSender<Msg<R>>,
    dropped: IntCounter,
    _record: PhantomData<fn(R)>,
}

impl<R> Clone for JsonLog<R> {
    fn clone(&self) -> Self {
        JsonLog {
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
            _record: PhantomData,
        }
    }
}

fn open(dest: &str) -> std::io::Result<Box<dyn Write + Send>> {
    if dest == "stdout" {
        return Ok(Box::new(std::io::stdout()));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o640);
    Ok(Box::new(opts.open(dest)?))
}

impl<R: Serialize + Send + 'static> JsonLog<R> {
    /// Opens `dest` ("stdout" or a file path, appended to) and starts the writer thread.
    /// `capacity` bounds the queue; `dropped` counts records refused because it was full.
    pub fn start(dest: &str, capacity: usize, dropped: IntCounter) -> std::io::Result<Self> {
        let out = open(dest)?;
        let (tx, rx) = sync_channel(capacity);
        let dest = dest.to_string();
        std::thread::Builder::new()
            .name("json-log".into())
            .spawn(move || writer(rx, out, &dest))?;
        Ok(JsonLog {
            tx,
            dropped,
            _record: PhantomData,
        })
    }

    /// Queues a record; never blocks.
    pub fn send(&self, record: Box<R>) {
        if self.tx.try_send(Msg::Record(record)).is_err() {
            self.dropped.inc()
        }
    }

    /// Queues a ready JSON line (without its newline), written as is; never blocks.
    pub fn send_line(&self, line: String) {
        self.queue_line(line.into_bytes())
    }

    /// Serialises `record` now, on the caller's thread, and queues the line; never blocks. For
    /// a record of borrowed fields (`#[derive(Serialize)] struct Line<'a> { path: &'a str, … }`):
    /// one buffer per line, nothing copied into owned values first. A record that fails to
    /// serialise is dropped and counted.
    pub fn send_now<T: Serialize + ?Sized>(&self, record: &T) {
        let mut line = Vec::with_capacity(LINE);
        match serde_json::to_writer(&mut line, record) {
            Ok(()) => self.queue_line(line),
            Err(_) => self.dropped.inc(),
        }
    }

    /// [`JsonLog::send_now`] for a line that starts with `fixed`'s fields, then `record`'s.
    pub fn send_now_with<T: Serialize + ?Sized>(&self, fixed: &Fixed, record: &T) {
        match fixed.line(record) {
            Some(line) => self.queue_line(line),
            None => self.dropped.inc(),
        }
    }

    fn queue_line(&self, line: Vec<u8>) {
        if self.tx.try_send(Msg::Line(line)).is_err() {
            self.dropped.inc()
        }
    }

    /// Waits (at most `timeout`) until everything queued so far is written out. Blocks: for
    /// shutdown paths and tests, never for a request.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(timeout);
        }
    }

    /// Asks the writer to re-open its file (after log rotation). If the re-open fails the old
    /// file is kept and the failure is logged.
    pub fn reopen(&self) {
        let _ = self.tx.try_send(Msg::Reopen);
    }
}

/// Fields that many lines share (a connection's: addresses, identities), serialised once: the
/// opening of a JSON object, continued by [`JsonLog::send_now_with`] with each line's own fields.
#[derive(Debug, Clone)]
pub struct Fixed(Box<[u8]>);

impl Fixed {
    /// Serialises `fields`, which must serialise as a JSON object (a struct or a map).
    pub fn new<T: Serialize + ?Sized>(fields: &T) -> Result<Self, serde_json::Error> {
        let mut head = serde_json::to_vec(fields)?;
        if head.first() != Some(&b'{') || head.pop() != Some(b'}') {
            return Err(serde::ser::Error::custom(
                "fixed log fields must be an object",
            ));
        }
        Ok(Fixed(head.into_boxed_slice()))
    }

    /// The line (no newline) of these fields followed by `record`'s, which must serialise as
    /// an object; `None` if it does not.
    pub fn line<T: Serialize + ?Sized>(&self, record: &T) -> Option<Vec<u8>> {
        let mut line = Vec::with_capacity(LINE);
        line.extend_from_slice(&self.0);
        let start = line.len();
        serde_json::to_writer(&mut line, record).ok()?;
        // `record` wrote `{…}`: its opening brace continues this object instead (a comma
        // after fixed fields; nothing when either side has no field).
        let record_empty = line.len() == start + 2;
        match (line.get(start), self.0.len() > 1) {
            (Some(b'{'), true) if record_empty => {
                line.truncate(start);
                line.push(b'}');
            }
            (Some(b'{'), true) => line.splice(start..=start, [b',']).for_each(drop),
            (Some(b'{'), false) => {
                line.remove(start);
            }
            _ => return None,
        }
        Some(line)
    }
}

impl Default for Fixed {
    /// No fixed fields.
    fn default() -> Self {
        Fixed(Box::new(*b"{"))
    }
}

fn writer<R: Serialize>(rx: Receiver<Msg<R>>, out: Box<dyn Write + Send>, dest: &str) {
    let mut out = std::io::BufWriter::with_capacity(BUFFER, out);
    loop {
        std::thread::sleep(DRAIN_EVERY);
        loop {
            match rx.try_recv() {
                Ok(Msg::Record(rec)) => {
                    if serde_json::to_writer(&mut out, &rec).is_ok() {
                        let _ = out.write_all(b"\n");
                    }
                }
                Ok(Msg::Line(line)) => {
                    let _ = out.write_all(&line);
                    let _ = out.write_all(b"\n");
                }
                Ok(Msg::Reopen) => {
                    let _ = out.flush();
                    match open(dest) {
                        Ok(f) => out = std::io::BufWriter::with_capacity(BUFFER, f),
                        Err(e) => tracing::error!(
                            "log `{dest}`: re-open failed, keeping the old file: {e}"
                        ),
                    }
                }
                Ok(Msg::Flush(ack)) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Rec {
        n: u32,
    }

    #[test]
    fn writes_records_and_lines_then_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = JsonLog::<Rec>::start(path.to_str().unwrap(), 4, dropped.clone()).unwrap();
        log.send(Box::new(Rec { n: 1 }));
        log.send_line("{\"event\":\"x\"}".into());
        #[derive(Serialize)]
        struct Borrowed<'a> {
            path: &'a str,
        }
        let path_text = String::from("/a\"b");
        log.send_now(&Borrowed { path: &path_text });
        log.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"n\":1}\n{\"event\":\"x\"}\n{\"path\":\"/a\\\"b\"}\n"
        );
        // The writer sleeps between drains: a burst larger than the queue is partly dropped.
        for n in 0..100 {
            log.send(Box::new(Rec { n }));
        }
        assert!(dropped.get() > 0, "a full queue drops and counts");
    }

    #[test]
    fn fixed_fields_then_the_record_s_make_one_object() {
        #[derive(Serialize)]
        struct Conn<'a> {
            peer: &'a str,
        }
        #[derive(Serialize)]
        struct Req {
            status: u16,
        }
        #[derive(Serialize)]
        struct Nothing {}
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = JsonLog::<Rec>::start(path.to_str().unwrap(), 16, dropped.clone()).unwrap();
        let fixed = Fixed::new(&Conn { peer: "a\"b" }).unwrap();
        log.send_now_with(&fixed, &Req { status: 200 });
        log.send_now_with(&fixed, &Nothing {});
        let empty = Fixed::new(&Nothing {}).unwrap();
        assert_eq!(
            empty.line(&Req { status: 1 }),
            Fixed::default().line(&Req { status: 1 })
        );
        assert_eq!(fixed.line(&7), None);
        log.send_now_with(&empty, &Req { status: 403 });
        log.send_now_with(&empty, &Nothing {});
        log.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"peer\":\"a\\\"b\",\"status\":200}\n{\"peer\":\"a\\\"b\"}\n{\"status\":403}\n{}\n"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(Fixed::new(&7).is_err() && Fixed::new("x").is_err());
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn reopen_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = JsonLog::<Rec>::start(path.to_str().unwrap(), 64, dropped).unwrap();
        log.send(Box::new(Rec { n: 1 }));
        log.flush(Duration::from_secs(5));
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        log.reopen();
        log.send(Box::new(Rec { n: 2 }));
        log.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log.1")).unwrap(),
            "{\"n\":1}\n"
        );
    }
}
