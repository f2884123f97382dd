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
use serde::{Serialize, Serializer};
use std::cell::Cell;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// [`JsonLog::send_now_with`] for the hottest lines: after `fixed`'s fields, `write` puts
    /// the line's own fields straight into its buffer through [`Fields`] (static keys copied as
    /// they are, values escaped only where they are text), no `Serialize` pass over a record.
    pub fn send_fields(&self, fixed: &Fixed, write: impl FnOnce(&mut Fields<'_>)) {
        self.queue_line(fixed.line_fields(write))
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

impl Fixed {
    /// The line (no newline) of these fields followed by those `write` adds.
    pub fn line_fields(&self, write: impl FnOnce(&mut Fields<'_>)) -> Vec<u8> {
        let mut line = Vec::with_capacity(LINE);
        line.extend_from_slice(&self.0);
        let mut fields = Fields {
            first: self.0.len() <= 1,
            line: &mut line,
        };
        write(&mut fields);
        line.push(b'}');
        line
    }
}

/// A JSON object's members written in place (see [`JsonLog::send_fields`]). Keys are static
/// names (OTel attribute names: letters, digits, `.` and `_`), copied without escaping.
pub struct Fields<'b> {
    line: &'b mut Vec<u8>,
    first: bool,
}

impl Fields<'_> {
    fn key(&mut self, key: &'static str) {
        debug_assert!(key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        if !std::mem::take(&mut self.first) {
            self.line.push(b',');
        }
        self.line.push(b'"');
        self.line.extend_from_slice(key.as_bytes());
        self.line.extend_from_slice(b"\":");
    }

    /// A text value (escaped).
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.value(key, value)
    }

    /// A [`Timestamp`].
    pub fn timestamp(&mut self, key: &'static str, at: Timestamp) -> &mut Self {
        self.key(key);
        self.line.push(b'"');
        self.line
            .extend_from_slice(at.format(&mut [0; 27]).as_bytes());
        self.line.push(b'"');
        self
    }

    /// Any value (a number, a bool, an `Option`, a struct): serde_json writes it.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> &mut Self {
        self.key(key);
        if serde_json::to_writer(&mut *self.line, value).is_err() {
            self.line.extend_from_slice(b"null");
        }
        self
    }

    /// The members of `object` (a struct or a map, as in `#[serde(flatten)]`), after these.
    pub fn flatten<T: Serialize + ?Sized>(&mut self, object: &T) -> &mut Self {
        let Ok(text) = serde_json::to_vec(object) else {
            return self;
        };
        // `{…}`: its members without the braces; `{}` adds nothing.
        if let Some(members) = text.get(1..text.len().saturating_sub(1)) {
            if text.first() == Some(&b'{') && !members.is_empty() {
                if !std::mem::take(&mut self.first) {
                    self.line.push(b',');
                }
                self.line.extend_from_slice(members);
            }
        }
        self
    }
}

impl Default for Fixed {
    /// No fixed fields.
    fn default() -> Self {
        Fixed(Box::new(*b"{"))
    }
}

/// A line's `timestamp`: RFC 3339, UTC, microseconds (`2026-12-06T13:20:01.123456Z`). Cheap
/// enough for a line per request: the calendar date and time of day are formatted once per
/// second per thread, each line writes only its microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(SystemTime);

/// `YYYY-MM-DDTHH:MM:SS` of the last second formatted on this thread, and that second.
type SecondText = (u64, [u8; 19]);

thread_local! {
    static LAST_SECOND: Cell<SecondText> = const { Cell::new((u64::MAX, [0; 19])) };
}

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Timestamp(SystemTime::now())
    }

    /// A given moment (tests, replays).
    pub fn at(time: SystemTime) -> Self {
        Timestamp(time)
    }

    /// The text, in `buf`.
    pub fn format<'b>(&self, buf: &'b mut [u8; 27]) -> &'b str {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let second = LAST_SECOND.with(|last| {
            let (at, text) = last.get();
            if at == secs {
                return text;
            }
            let text = second_text(secs);
            last.set((secs, text));
            text
        });
        buf[..19].copy_from_slice(&second);
        buf[19] = b'.';
        let mut micros = since.subsec_micros();
        for digit in buf[20..26].iter_mut().rev() {
            // `micros % 10` < 10: the cast cannot truncate.
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        buf[26] = b'Z';
        std::str::from_utf8(&buf[..]).unwrap_or_default()
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second (all zeros past year 9999, where RFC 3339 ends).
fn second_text(secs: u64) -> [u8; 19] {
    let mut text = [b'0'; 19];
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| t.year() <= 9999);
    if let Some(t) = t {
        let mut cursor = &mut text[..];
        let _ = write!(
            cursor,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
    text
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.format(&mut [0; 27]))
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

    #[test]
    fn fields_continue_the_fixed_ones_as_one_object() {
        #[derive(Serialize)]
        struct Decision {
            verdict: &'static str,
            rule: Option<&'static str>,
        }
        let fixed = Fixed::new(&Rec { n: 1 }).unwrap();
        let line = fixed.line_fields(|f| {
            f.str("url.path", "/a\"b\\c\n")
                .value("http.response.status_code", &200u16)
                .value("rampart.duration_ms", &0.25f64)
                .value("none", &None::<u8>)
                .timestamp("timestamp", Timestamp::at(UNIX_EPOCH))
                .flatten(&Decision {
                    verdict: "allow",
                    rule: Some("r"),
                });
        });
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "n": 1, "url.path": "/a\"b\\c\n", "http.response.status_code": 200,
                "rampart.duration_ms": 0.25, "none": null,
                "timestamp": "1970-01-01T00:00:00.000000Z", "verdict": "allow", "rule": "r"
            })
        );
        // No fixed fields, and an empty object flattened: still one well-formed object.
        let line = Fixed::default().line_fields(|f| {
            f.flatten(&serde_json::Map::new()).value("k", &1);
        });
        assert_eq!(line, br#"{"k":1}"#);
        assert_eq!(Fixed::default().line_fields(|_| {}), b"{}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u64| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            Timestamp::at(t).format(&mut [0; 27]).to_string()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        // The same second again (cached) and the next one, then back: each line its own.
        assert_eq!(at(1_796_563_201, 5), "2026-12-06T13:20:01.000005Z");
        assert_eq!(at(1_796_563_201, 999_999), "2026-12-06T13:20:01.999999Z");
        assert_eq!(at(1_796_563_202, 120_000), "2026-12-06T13:20:02.120000Z");
        assert_eq!(at(951_825_600, 1), "2000-02-29T12:00:00.000001Z");
        let json = serde_json::to_string(&Timestamp::at(UNIX_EPOCH)).unwrap();
        assert_eq!(json, "\"1970-01-01T00:00:00.000000Z\"");
        let now = Timestamp::now().format(&mut [0; 27]).to_string();
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }

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
