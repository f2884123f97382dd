//! A JSON-lines log written by a dedicated thread, generic over the record type, so a request
//! path never waits on I/O: lines are appended to a shared buffer and dropped (and counted)
//! when the writer falls behind.
//!
//! Every line is serialised on the caller's thread, into a per-thread scratch buffer (no
//! allocation per line), and appended to the pending batch under a lock held only for the
//! copy. The writer wakes every [`DRAIN_EVERY`], swaps the batch for an empty one and writes it
//! with one `write`: a sender never wakes it (a futex wake per line cost ~20% of the edge's CPU
//! under load), and no line crosses threads as its own allocation. The destination is `stdout`
//! or a file opened for append with mode 0640; [`JsonLog::reopen`] re-opens the file after log
//! rotation.
//!
//! Ways to log a record: [`JsonLog::send`] an owned `R`; [`JsonLog::send_now`] any `Serialize`
//! value (a struct of borrowed fields: no owned copies, no map); [`JsonLog::send_fields`]
//! starts the line with [`Fixed`] fields serialised once (a connection's, for the lines of its
//! requests) and writes the line's own fields in place; [`JsonLog::send_with`] lets the caller
//! write the whole line in place (a line it formats by hand).

mod fields;

pub use fields::{push_ip, FieldKey, Fields, Key};
use prometheus::IntCounter;
use serde::{Serialize, Serializer};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::marker::PhantomData;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration in milliseconds for a log line: the double nearest its nanoseconds / 10^6 (up to
/// 2^53 ns, about 104 days, the integer converts exactly and the one division is correctly
/// rounded; beyond that the conversion rounds too). [`Fields::float`] then writes it as the
/// decimal it is (`0.412345`, `7.73`) from its integer digits for 10 ns up to about 11.6 days
/// (below 10 ns, ryu's text: `5e-6`). `as_secs_f64() * 1000.0` rounds twice and misses that
/// decimal by an ulp about one time in four (`7.7299999999999995` for 7.73 ms, the same
/// duration written in 17 digits). Beyond `u64` nanoseconds (584 years) it saturates.
pub fn millis(d: Duration) -> f64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) as f64 / 1e6
}

/// How often the writer thread wakes to write the pending lines.
pub const DRAIN_EVERY: Duration = Duration::from_millis(20);
/// A batch buffer larger than this after a burst is given back (RSS stays small).
const KEEP: usize = 256 * 1024;
/// First capacity of a line built on its own ([`Fixed::line_fields`]).
const LINE: usize = 768;

/// The lines queued since the writer's last wake.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
}

enum Control {
    /// Re-open the file; the lines queued before the request (written to the old file first).
    Reopen(Vec<u8>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The sending half, cheap to clone. Dropping every clone stops the writer after it has
/// written what was queued.
pub struct JsonLog<R> {
    pending: Arc<Mutex<Pending>>,
    control: SyncSender<Control>,
    /// At most this many lines wait for the writer; more are dropped and counted.
    capacity: usize,
    dropped: IntCounter,
    _record: PhantomData<fn(R)>,
}

impl<R> Clone for JsonLog<R> {
    fn clone(&self) -> Self {
        JsonLog {
            pending: self.pending.clone(),
            control: self.control.clone(),
            capacity: self.capacity,
            dropped: self.dropped.clone(),
            _record: PhantomData,
        }
    }
}

thread_local! {
    /// Where this thread serialises a line before it is copied into the pending batch.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(LINE));
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
    /// `capacity` bounds the lines waiting for it; `dropped` counts lines refused because it
    /// was reached (and records that failed to serialise).
    pub fn start(dest: &str, capacity: usize, dropped: IntCounter) -> std::io::Result<Self> {
        let out = open(dest)?;
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (control, rx) = sync_channel(64);
        let dest = dest.to_string();
        let batch = pending.clone();
        std::thread::Builder::new()
            .name("json-log".into())
            .spawn(move || writer(&batch, rx, out, &dest))?;
        Ok(JsonLog {
            pending,
            control,
            capacity,
            dropped,
            _record: PhantomData,
        })
    }

    /// Queues a record (serialised now, on the caller's thread); never blocks.
    pub fn send(&self, record: &R) {
        self.send_now(record)
    }

    /// Serialises `record` now, on the caller's thread, and queues the line; never blocks. For
    /// a record of borrowed fields (`#[derive(Serialize)] struct Line<'a> { path: &'a str, … }`):
    /// nothing copied into owned values first. A record that fails to serialise is dropped and
    /// counted.
    pub fn send_now<T: Serialize + ?Sized>(&self, record: &T) {
        self.queue(|buf| serde_json::to_writer(buf, record).is_ok())
    }

    /// Queues the line `write` puts into an empty buffer (one JSON value, no newline), written
    /// as is; never blocks. The buffer is this thread's scratch: no allocation per line, the
    /// line copied once, into the pending batch.
    pub fn send_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        self.queue(|buf| {
            write(buf);
            true
        })
    }

    /// For the hottest serialised lines: a line that starts with `fixed`'s fields, after which
    /// `write` puts the line's own fields straight into its buffer through [`Fields`] (static
    /// keys copied as they are, values escaped only where they are text), no `Serialize` pass
    /// over a record.
    pub fn send_fields(&self, fixed: &Fixed, write: impl FnOnce(&mut Fields<'_>)) {
        self.queue(|buf| {
            fixed.write_fields(buf, write);
            true
        })
    }

    /// Builds a line with `write` in this thread's scratch buffer (`false`: no line, counted
    /// as dropped) and appends it to the pending batch.
    fn queue(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mut write = Some(write);
        let _ = SCRATCH.try_with(|scratch| {
            // Taken unless this is a line built while building another (a `Serialize` impl
            // that logs); then, as while the thread ends, the line gets its own buffer below.
            let Ok(mut buf) = scratch.try_borrow_mut() else {
                return;
            };
            let Some(write) = write.take() else {
                return;
            };
            buf.clear();
            let ok = write(&mut buf);
            self.append(ok.then_some(&buf[..]));
            if buf.capacity() > KEEP {
                *buf = Vec::with_capacity(LINE);
            }
        });
        if let Some(write) = write {
            let mut buf = Vec::with_capacity(LINE);
            let ok = write(&mut buf);
            self.append(ok.then_some(&buf[..]));
        }
    }

    fn append(&self, line: Option<&[u8]>) {
        let Some(line) = line else {
            return self.dropped.inc();
        };
        // Held for the copy only; nothing in it can panic but an allocation failure.
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.lines >= self.capacity {
            drop(pending);
            return self.dropped.inc();
        }
        pending.bytes.extend_from_slice(line);
        pending.bytes.push(b'\n');
        pending.lines += 1;
    }

    /// Waits (at most `timeout`) until everything queued so far is written out. Blocks: for
    /// shutdown paths and tests, never for a request.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        if self.control.send(Control::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(timeout);
        }
    }

    /// Asks the writer to re-open its file (after log rotation): the lines queued so far go
    /// to the old file, the later ones to the new. If the re-open fails the old file is kept
    /// and the failure is logged.
    pub fn reopen(&self) {
        let before = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.lines = 0;
            std::mem::take(&mut pending.bytes)
        };
        if let Err(std::sync::mpsc::TrySendError::Full(Control::Reopen(before))) =
            self.control.try_send(Control::Reopen(before))
        {
            // The writer is that far behind: keep the lines for its next batch.
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let later = std::mem::replace(&mut pending.bytes, before);
            pending.bytes.extend_from_slice(&later);
        }
    }
}

/// Fields that many lines share (a connection's: addresses, identities), serialised once: the
/// opening of a JSON object, continued by [`JsonLog::send_fields`] with each line's own fields.
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

    /// The line (no newline) of these fields followed by those `write` adds.
    pub fn line_fields(&self, write: impl FnOnce(&mut Fields<'_>)) -> Vec<u8> {
        let mut line = Vec::with_capacity(LINE);
        self.write_fields(&mut line, write);
        line
    }

    /// [`Fixed::line_fields`] appended to `buf`.
    fn write_fields(&self, buf: &mut Vec<u8>, write: impl FnOnce(&mut Fields<'_>)) {
        buf.extend_from_slice(&self.0);
        let mut fields = Fields::after(buf, self.0.len() <= 1);
        write(&mut fields);
        fields.close();
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

/// Now (a record built field by field starts with the time it is built).
impl Default for Timestamp {
    fn default() -> Self {
        Self::now()
    }
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
        self.write(buf);
        std::str::from_utf8(&buf[..]).unwrap_or_default()
    }

    /// The text's bytes (ASCII), written into `buf`: for a line built as bytes.
    pub fn write(&self, buf: &mut [u8; 27]) {
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

fn writer(
    pending: &Mutex<Pending>,
    control: Receiver<Control>,
    mut out: Box<dyn Write + Send>,
    dest: &str,
) {
    let mut batch = Vec::new();
    loop {
        std::thread::sleep(DRAIN_EVERY);
        // Requests first: a flush asked for after its lines were queued finds them in the
        // batch taken below; a re-open brings the lines queued before it.
        let mut acks = Vec::new();
        let gone = loop {
            match control.try_recv() {
                Ok(Control::Reopen(before)) => {
                    write_out(&mut out, &before);
                    match open(dest) {
                        Ok(f) => out = f,
                        Err(e) => tracing::error!(
                            "log `{dest}`: re-open failed, keeping the old file: {e}"
                        ),
                    }
                }
                Ok(Control::Flush(ack)) => acks.push(ack),
                Err(TryRecvError::Empty) => break false,
                // Every sender is gone: what they queued is in the last batch.
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        {
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut pending.bytes, &mut batch);
            pending.lines = 0;
        }
        write_out(&mut out, &batch);
        batch.clear();
        if batch.capacity() > KEEP {
            batch = Vec::new();
        }
        for ack in acks {
            let _ = ack.send(());
        }
        if gone {
            return;
        }
    }
}

fn write_out(out: &mut Box<dyn Write + Send>, bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration is logged as its nanoseconds / 10^6 written out: the exact decimal, at most
    /// six places, trailing zeros dropped. Seeded durations with every nanosecond digit
    /// arbitrary (2 to 15 digits: 10 ns up to ~11.6 days), and a few written out. The
    /// two-rounding `as_secs_f64() * 1000.0` fails this (7.73 ms: `7.7299999999999995`).
    #[test]
    fn millis_are_logged_as_their_nanosecond_decimal() {
        let text = |d: Duration| {
            let mut out = Vec::new();
            let mut line = Fields::open(&mut out);
            line.float("d", millis(d));
            line.close();
            let line = String::from_utf8(out).unwrap();
            line["{\"d\":".len()..line.len() - 1].to_string()
        };
        assert_eq!(text(Duration::from_nanos(7_730_000)), "7.73");
        assert_eq!(text(Duration::from_nanos(412_345)), "0.412345");
        assert_eq!(text(Duration::from_nanos(1_234_567_891)), "1234.567891");
        assert_eq!(text(Duration::from_millis(5)), "5.0");
        assert_eq!(text(Duration::from_micros(1_500)), "1.5");
        // Below 10 ns: ryu's exponent form, as before.
        assert_eq!(text(Duration::from_nanos(5)), "5e-6");
        // Saturates at u64::MAX ns instead of overflowing.
        assert_eq!(millis(Duration::MAX), u64::MAX as f64 / 1e6);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // All digits arbitrary, 2 to 15 of them (10 ns to < 10^15 ns, under 1e9 ms).
            let nanos = (x % 10u64.pow((i % 14) as u32 + 2)).max(10);
            let (whole, frac) = (nanos / 1_000_000, nanos % 1_000_000);
            let mut want = format!("{whole}.{frac:06}");
            while want.ends_with('0') && !want.ends_with(".0") {
                want.pop();
            }
            assert_eq!(text(Duration::from_nanos(nanos)), want, "{nanos} ns");
        }
    }

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

    /// A log to a file in a new directory (kept alive by the caller), at most `capacity` lines
    /// waiting.
    fn started(
        capacity: usize,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        IntCounter,
        JsonLog<Rec>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = JsonLog::<Rec>::start(path.to_str().unwrap(), capacity, dropped.clone()).unwrap();
        (dir, path, dropped, log)
    }

    #[test]
    fn writes_records_and_lines_then_counts_drops() {
        let (_dir, path, dropped, log) = started(4);
        log.send(&Rec { n: 1 });
        log.send_with(|b| b.extend_from_slice(b"{\"event\":\"x\"}"));
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
            log.send(&Rec { n });
        }
        assert!(dropped.get() > 0, "a full queue drops and counts");
    }

    #[test]
    fn fixed_fields_then_the_line_s_make_one_object_and_lines_written_in_place_arrive() {
        #[derive(Serialize)]
        struct Conn<'a> {
            peer: &'a str,
        }
        #[derive(Serialize)]
        struct Nothing {}
        let (_dir, path, dropped, log) = started(16);
        let fixed = Fixed::new(&Conn { peer: "a\"b" }).unwrap();
        log.send_fields(&fixed, |f| {
            f.value("status", &200);
        });
        log.send_fields(&fixed, |_| {});
        let empty = Fixed::new(&Nothing {}).unwrap();
        log.send_fields(&empty, |f| {
            f.value("status", &403);
        });
        log.send_fields(&empty, |_| {});
        log.send_with(|buf| buf.extend_from_slice(br#"{"in":"place"}"#));
        log.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"peer\":\"a\\\"b\",\"status\":200}\n{\"peer\":\"a\\\"b\"}\n{\"status\":403}\n{}\n{\"in\":\"place\"}\n"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(Fixed::new(&7).is_err() && Fixed::new("x").is_err());
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn a_line_logged_while_another_is_built_and_lines_from_threads_all_arrive() {
        let (_dir, path, dropped, log) = started(1024);
        struct Logs<'a>(&'a JsonLog<Rec>);
        impl Serialize for Logs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.send(&Rec { n: 7 });
                s.serialize_str("outer")
            }
        }
        log.send_now(&Logs(&log));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        log.send(&Rec { n: 100 * t + n });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // The inner line is complete before the outer one; then 200 whole lines.
        assert_eq!(&lines[..2], ["{\"n\":7}", "\"outer\""]);
        let mut ns: Vec<u64> = lines[2..]
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        ns.sort_unstable();
        let want: Vec<u64> = (0..4)
            .flat_map(|t| (0..50).map(move |n| 100 * t + n))
            .collect();
        assert_eq!(ns, want);
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn reopen_follows_rotation() {
        let (dir, path, _dropped, log) = started(64);
        log.send(&Rec { n: 1 });
        log.flush(Duration::from_secs(5));
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        log.reopen();
        log.send(&Rec { n: 2 });
        log.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log.1")).unwrap(),
            "{\"n\":1}\n"
        );
    }
}
