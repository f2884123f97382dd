//! HTTP/1 request framing as the client sent it, read off the wire by the hardened stream
//! before Pingora parses (and normalises) anything.
//!
//! Pingora percent-encodes a raw space in the request target, waits for a CRLF that a bare-LF
//! chunk line never sends, and finds chunked-body errors only while it streams the body. The
//! [`Framing`] scanner follows every request of a connection byte for byte (request line, head,
//! Content-Length or chunked body, trailers, keep-alive and pipelining) and latches the first
//! malformation with the request it belongs to:
//! - a request-line problem (space or tab in the target, control bytes) is latched at the end
//!   of that request's head: Pingora still gets the head, so the filters answer 400 with the
//!   reason, and nothing after it is delivered;
//! - a body problem is latched where it starts: only the bytes before it are delivered, the next
//!   read fails, so Pingora never waits for bytes that will not come.
//!
//! Chunk sizes with leading zeros are valid (RFC 9112 §7.1): redundant zeros are dropped on the
//! way to Pingora (`0005` → `05`), whose chunk parser takes at most 16 digits; Pingora forwards
//! the body re-chunked, so the upstream sees a normalised body.
//!
//! HTTP/2 (by ALPN or the cleartext preface) and upgraded connections are not scanned.

use pingora_http::authority::{raw_target_authority, RawTargetAuthority};
use std::fmt;

/// Longest chunk line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted (Pingora's own cap).
const MAX_TRAILERS: usize = 64 * 1024;
/// Largest request head followed (Pingora's own cap); a longer one is Pingora's to refuse.
const MAX_HEAD: usize = 1024 * 1024;
/// Bytes a client may pipeline behind an upgrade request before it is answered.
const MAX_UPGRADE_STASH: usize = 64 * 1024;
/// Headers parsed per request (Pingora's own cap).
const MAX_HEADERS: usize = 256;
/// Significant hex digits of a chunk size (Pingora's parser takes 16 digits, one of which may
/// be the zero kept in front).
const MAX_SIZE_DIGITS: usize = 15;

/// Why a request's framing is refused: the access log's `rampart.denial.reason` and the
/// `reason` label of `rampart_malformed_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A raw space or tab inside the request target (`GET /a /b HTTP/1.1`).
    SpaceInTarget,
    /// A request line that is not `method SP target SP version`, or holds control bytes.
    RequestLine,
    /// A chunk line or trailer line ended by a bare LF.
    BareLfInChunk,
    /// A chunk size that is not hex, or a chunk line with a control byte.
    ChunkSize,
    /// A chunk size of more than 15 significant hex digits.
    ChunkSizeTooLarge,
    /// Chunk data not followed by CRLF (its size lied).
    ChunkTerminator,
    /// A chunk line (size and extensions) longer than 4 KiB.
    ChunkLineTooLong,
    /// A trailer section over 64 KiB or a trailer line with a stray CR.
    Trailer,
    /// Transfer-Encoding whose final coding is not `chunked`, or `chunked` twice.
    TransferEncoding,
    /// Content-Length values that are not one decimal number.
    ContentLength,
    /// More than 64 KiB pipelined behind an upgrade request before its answer.
    PipelinedAfterUpgrade,
    /// An absolute-form target whose authority is not the Host header's value byte for byte
    /// (RFC 9112 §3.2.2: a client sends them identical; Pingora refuses any difference).
    HostMismatch,
    /// More than one Host header (RFC 9112 §3.2).
    MultipleHost,
    /// Userinfo (`user@`) in the Host header or the target's authority.
    MalformedHost,
    /// A request target that is neither origin-form (`/…`) nor an http(s) absolute-form
    /// (`probe`, `mailto:x`, `ftp://…`), or whose authority a URL parser could read differently
    /// (`http:/\\host`, `http:host`, `://host`). Pingora forwards such a target as sent while
    /// routing and the WAF would see the path `/`.
    Target,
    /// A field name with `_` that reads as Transfer-Encoding, Content-Length or a forwarding
    /// field the edge sets once `_` is taken for `-` (`Transfer_Encoding`, `Content_Length`,
    /// `X_Forwarded_For`), as CGI-style servers and frameworks do: forwarded, it would reach
    /// the application as that field.
    AmbiguousName,
    /// `Connection` naming Host or a forwarding field the edge sets (X-Forwarded-For, -Host,
    /// -Proto), a pseudo-header, a non-token, or more than nine options: Pingora refuses these
    /// only when it builds the upstream request, after connecting upstream.
    ConnectionOption,
}

impl Malformed {
    pub fn reason(self) -> &'static str {
        match self {
            Self::SpaceInTarget => "space_in_target",
            Self::RequestLine => "malformed_request_line",
            Self::BareLfInChunk => "bare_lf_in_chunk",
            Self::ChunkSize => "bad_chunk_size",
            Self::ChunkSizeTooLarge => "chunk_size_too_large",
            Self::ChunkTerminator => "bad_chunk_terminator",
            Self::ChunkLineTooLong => "chunk_line_too_long",
            Self::Trailer => "bad_trailer",
            Self::TransferEncoding => "bad_transfer_encoding",
            Self::ContentLength => "bad_content_length",
            Self::PipelinedAfterUpgrade => "pipelined_after_upgrade",
            Self::HostMismatch => "host_mismatch",
            Self::MultipleHost => "multiple_host",
            Self::MalformedHost => "malformed_host",
            Self::Target => "malformed_target",
            Self::AmbiguousName => "ambiguous_header_name",
            Self::ConnectionOption => "bad_connection_option",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests (empty lines before a request line are skipped, as httparse does).
    Idle,
    /// In a request head; partial heads are kept in `Framing::head`.
    Head,
    /// A Content-Length body with this many bytes left.
    Body(u64),
    /// In a chunk line (size and extensions), kept in `Framing::line` until it ends.
    ChunkLine,
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// After the last chunk: the trailer section, kept in `Framing::line` until it ends.
    Trailers,
    /// An upgrade request was read: later bytes are stashed until its answer is known.
    AwaitUpgrade,
    /// Not followed any more (HTTP/2, upgraded, or a head Pingora refuses itself).
    Opaque,
    /// A malformation was latched; nothing more is delivered.
    Failed,
}

/// What the head's headers say about the body that follows.
enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// The scanner of one connection's request bytes.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// A partial request head (only when a head spans reads).
    head: Vec<u8>,
    /// Request heads begun on this connection; the current request is `requests - 1`.
    requests: u64,
    /// The current request's chunked body has shown a complete first chunk line.
    first_chunk_done: bool,
    /// The current request is chunked.
    chunked: bool,
    /// The current request asked for an upgrade.
    upgrade: bool,
    /// A request-line problem, latched when the head ends.
    head_problem: Option<Malformed>,
    /// The current chunk line or trailer section as received (redundant leading zeros of a
    /// chunk size dropped), parsed by httparse once it ends.
    line: Vec<u8>,
    /// The first malformation and the request (0-based) it belongs to.
    error: Option<(u64, Malformed)>,
    stash: Vec<u8>,
}

impl Framing {
    pub fn new(opaque: bool) -> Self {
        Framing {
            state: if opaque { State::Opaque } else { State::Idle },
            head: Vec::new(),
            requests: 0,
            first_chunk_done: false,
            chunked: false,
            upgrade: false,
            head_problem: None,
            line: Vec::new(),
            error: None,
            stash: Vec::new(),
        }
    }

    /// The latched malformation and the request it belongs to.
    pub fn error(&self) -> Option<(u64, Malformed)> {
        self.error
    }

    /// Nothing more may be delivered.
    pub fn failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Request `index` is chunked and its first chunk line has not been read yet.
    pub fn first_chunk_pending(&self, index: u64) -> bool {
        self.requests == index + 1
            && self.chunked
            && !self.first_chunk_done
            && self.state == State::ChunkLine
    }

    /// The response status of the current request: an upgrade request answered `101` leaves
    /// HTTP; any other final answer resumes scanning the bytes pipelined behind it.
    pub fn response(&mut self, status: u16) {
        if self.state != State::AwaitUpgrade || status < 200 && status != 101 {
            return;
        }
        let stash = std::mem::take(&mut self.stash);
        if status == 101 {
            self.state = State::Opaque;
            return;
        }
        self.state = State::Idle;
        // Already delivered: only the verdict matters, not what would be kept.
        let mut stash = stash;
        self.scan(&mut stash);
    }

    /// Scans newly read bytes in place; returns how many of them (from the start of `data`)
    /// are delivered. Redundant leading zeros of chunk sizes are removed, and nothing past a
    /// malformation is delivered.
    pub fn scan(&mut self, data: &mut [u8]) -> usize {
        let mut r = 0; // read position
        let mut w = 0; // write position (== r until a byte is dropped)
        while r < data.len() {
            match self.state {
                State::Opaque => {
                    let rest = data.len() - r;
                    compact(data, &mut r, &mut w, rest);
                }
                State::Failed => return w,
                State::AwaitUpgrade => {
                    if self.stash.len() + data.len() - r > MAX_UPGRADE_STASH {
                        return self.fail(Malformed::PipelinedAfterUpgrade, w);
                    }
                    self.stash.extend_from_slice(&data[r..]);
                    let rest = data.len() - r;
                    compact(data, &mut r, &mut w, rest);
                }
                State::Body(left) => {
                    let n = left.min((data.len() - r) as u64);
                    compact(data, &mut r, &mut w, n as usize);
                    self.state = match left - n {
                        0 => self.request_done(),
                        rest => State::Body(rest),
                    };
                }
                State::ChunkData(left) => {
                    let n = left.min((data.len() - r) as u64);
                    compact(data, &mut r, &mut w, n as usize);
                    self.state = match left - n {
                        0 => State::ChunkDataCr,
                        rest => State::ChunkData(rest),
                    };
                }
                State::Idle => {
                    if matches!(data[r], b'\r' | b'\n') {
                        compact(data, &mut r, &mut w, 1);
                        continue;
                    }
                    self.requests += 1;
                    self.head.clear();
                    self.head_problem = None;
                    self.chunked = false;
                    self.upgrade = false;
                    self.first_chunk_done = false;
                    self.state = State::Head;
                }
                State::Head => {
                    let n = self.head_end(&data[r..]).unwrap_or(data.len() - r);
                    compact(data, &mut r, &mut w, n);
                    if self.state == State::Failed {
                        return w;
                    }
                }
                State::ChunkLine | State::Trailers => {
                    let start = w;
                    let end = self.line_bytes(data, &mut r, &mut w);
                    let verdict = match self.state {
                        State::ChunkLine => self.chunk_line(end),
                        _ => self.trailers(end),
                    };
                    if let Err(m) = verdict {
                        // Nothing of the broken line is delivered.
                        return self.fail(m, start);
                    }
                }
                State::ChunkDataCr | State::ChunkDataLf => {
                    if let Err(m) = self.chunk_end(data[r]) {
                        return self.fail(m, w);
                    }
                    compact(data, &mut r, &mut w, 1);
                }
            }
        }
        w
    }

    /// Moves the bytes of the current chunk line or trailer section (up to and including the
    /// next LF, or all of `data`) into `self.line` and keeps them for delivery, dropping the
    /// redundant leading zeros of a chunk size (`0005` → `05`: Pingora's chunk parser takes at
    /// most 16 digits). Returns whether an LF ended them.
    fn line_bytes(&mut self, data: &mut [u8], r: &mut usize, w: &mut usize) -> bool {
        let rest = &data[*r..];
        let (n, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (rest.len(), false),
        };
        let chunk_size = self.state == State::ChunkLine;
        for i in *r..*r + n {
            let b = data[i];
            if chunk_size && b == b'0' && self.line == b"0" {
                continue;
            }
            self.line.push(b);
            data[*w] = b;
            *w += 1;
        }
        *r += n;
        ended
    }

    /// Checks the chunk line so far with httparse (`parse_chunk_size`) and the strictness
    /// checks it lacks: an LF without CR, a size with no digit, a control byte in an extension,
    /// more than 15 significant digits. A complete line moves on to its data or the trailers.
    fn chunk_line(&mut self, ended: bool) -> Result<(), Malformed> {
        let line = &self.line;
        if line.len() > MAX_CHUNK_LINE {
            return Err(Malformed::ChunkLineTooLong);
        }
        if ended && !line.ends_with(b"\r\n") {
            return Err(Malformed::BareLfInChunk);
        }
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let significant = line[..digits].iter().skip_while(|&&b| b == b'0').count();
        if significant > MAX_SIZE_DIGITS {
            return Err(Malformed::ChunkSizeTooLarge);
        }
        let ctl = |&b: &u8| (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f;
        if line.iter().any(ctl) || (digits == 0 && !line.is_empty() && !line[0].is_ascii_hexdigit())
        {
            return Err(Malformed::ChunkSize);
        }
        match httparse::parse_chunk_size(line) {
            Ok(httparse::Status::Complete((_, size))) if digits > 0 => {
                self.first_chunk_done = true;
                self.line.clear();
                self.state = match size {
                    0 => State::Trailers,
                    n => State::ChunkData(n),
                };
                Ok(())
            }
            Ok(httparse::Status::Partial) if !ended => Ok(()),
            _ => Err(Malformed::ChunkSize),
        }
    }

    /// Checks the trailer section so far with httparse (`parse_headers`), and that every line
    /// ends with CRLF (httparse also takes a bare LF). The empty line ends the request.
    fn trailers(&mut self, ended: bool) -> Result<(), Malformed> {
        if self.line.len() > MAX_TRAILERS {
            return Err(Malformed::Trailer);
        }
        if !ended {
            return Ok(());
        }
        if !self.line.ends_with(b"\r\n") {
            return Err(Malformed::BareLfInChunk);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(&self.line, &mut headers) {
            Ok(httparse::Status::Complete(_)) => {
                self.line.clear();
                self.state = self.request_done();
                Ok(())
            }
            Ok(httparse::Status::Partial) => Ok(()),
            Err(_) => Err(Malformed::Trailer),
        }
    }

    /// The CRLF after a chunk's data.
    fn chunk_end(&mut self, b: u8) -> Result<(), Malformed> {
        self.state = match (self.state, b) {
            (State::ChunkDataCr, b'\r') => State::ChunkDataLf,
            (State::ChunkDataCr, b'\n') => return Err(Malformed::BareLfInChunk),
            (State::ChunkDataLf, b'\n') => {
                self.line.clear();
                State::ChunkLine
            }
            _ => return Err(Malformed::ChunkTerminator),
        };
        Ok(())
    }

    fn fail(&mut self, m: Malformed, delivered: usize) -> usize {
        self.error
            .get_or_insert((self.requests.saturating_sub(1), m));
        self.state = State::Failed;
        self.stash = Vec::new();
        self.head = Vec::new();
        self.line = Vec::new();
        delivered
    }

    /// The state after a request's body.
    fn request_done(&mut self) -> State {
        match self.upgrade {
            true => State::AwaitUpgrade,
            false => State::Idle,
        }
    }

    /// Feeds head bytes; returns how many of `data` belong to the head once it is complete
    /// (then the state has moved on), `None` while it continues.
    fn head_end(&mut self, data: &[u8]) -> Option<usize> {
        let held = self.head.len();
        let parsed = if held == 0 {
            parse_head(data)
        } else {
            self.head.extend_from_slice(data);
            parse_head(&self.head)
        };
        match parsed {
            Head::Partial(problem) => {
                self.head_problem = problem;
                if held == 0 {
                    self.head.extend_from_slice(data);
                }
                if self.head.len() > MAX_HEAD {
                    self.state = State::Opaque;
                }
                None
            }
            Head::Opaque => {
                self.state = State::Opaque;
                self.head = Vec::new();
                None
            }
            Head::Complete { len, problem, body } => {
                self.head.clear();
                let n = len - held;
                let problem = problem.or(self.head_problem);
                match (problem, body) {
                    (Some(m), _) | (None, Err(m)) => {
                        self.fail(m, 0);
                    }
                    (None, Ok((kind, upgrade))) => {
                        self.upgrade = upgrade;
                        self.state = match kind {
                            BodyKind::None | BodyKind::Length(0) => self.request_done(),
                            BodyKind::Length(n) => State::Body(n),
                            BodyKind::Chunked => {
                                self.chunked = true;
                                self.line.clear();
                                State::ChunkLine
                            }
                        };
                    }
                }
                Some(n)
            }
        }
    }
}

/// Keeps the `n` bytes at `*r`: moves them down to `*w` (a no-op until a byte was dropped) and
/// advances both.
fn compact(data: &mut [u8], r: &mut usize, w: &mut usize, n: usize) {
    if *w != *r {
        data.copy_within(*r..*r + n, *w);
    }
    *w += n;
    *r += n;
}

enum Head {
    /// More bytes needed; a request-line problem may already be known.
    Partial(Option<Malformed>),
    /// Not HTTP/1 this scanner can follow (h2 preface, unparsable headers: Pingora refuses).
    Opaque,
    Complete {
        len: usize,
        problem: Option<Malformed>,
        body: Result<(BodyKind, bool), Malformed>,
    },
}

/// Parses a request head with httparse. A request line httparse refuses is named by
/// [`request_line_problem`] and latched once the head ends (found by httparse from the header
/// lines); a header line it refuses leaves the head to Pingora, which refuses it itself.
fn parse_head(buf: &[u8]) -> Head {
    // Uninitialised slots: httparse writes only the headers it finds (no 8 KiB of zeroing
    // per request).
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => {
            let line = (
                request.method.unwrap_or_default(),
                request.path.unwrap_or_default().as_bytes(),
            );
            return Head::Complete {
                len,
                problem: None,
                body: body_kind(request.headers, Some(line)),
            };
        }
        Ok(httparse::Status::Partial) => return Head::Partial(None),
        Err(_) => {}
    }
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        // Refused inside the request line: latched once its head ends.
        return Head::Partial(None);
    };
    let line = &buf[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"PRI * HTTP/2.0" {
        return Head::Opaque;
    }
    let mut no_headers = [httparse::EMPTY_HEADER; 0];
    let alone = [line, b"\r\n\r\n"].concat();
    if httparse::Request::new(&mut no_headers)
        .parse(&alone)
        .is_ok()
    {
        // The request line is fine: httparse refused a header line.
        return Head::Opaque;
    }
    let problem = Some(request_line_problem(line));
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&buf[lf + 1..], &mut headers) {
        Ok(httparse::Status::Complete((n, headers))) => Head::Complete {
            len: lf + 1 + n,
            problem,
            body: body_kind(headers, None),
        },
        Ok(httparse::Status::Partial) => Head::Partial(problem),
        Err(_) => Head::Opaque,
    }
}

/// Names a request line httparse refused: a space or tab inside the target of an otherwise
/// complete line (`GET /a /b HTTP/1.1`) is `space_in_target`, anything else
/// `malformed_request_line`.
fn request_line_problem(line: &[u8]) -> Malformed {
    let has_version = line
        .rsplit(|&b| b == b' ')
        .next()
        .is_some_and(|v| v.starts_with(b"HTTP/"));
    let blanks = line.iter().filter(|&&b| b == b' ' || b == b'\t').count();
    match has_version && (blanks > 2 || line.contains(&b'\t')) {
        true => Malformed::SpaceInTarget,
        false => Malformed::RequestLine,
    }
}

/// The body framing the headers declare, and whether an upgrade is asked for; or what is wrong
/// with the head's host, target or field names: Host and the request line's target (method and
/// target, when the request line parsed) are checked here because Pingora refuses their
/// disagreements itself, before any filter could name them, or forwards a target that is not
/// the path the filters see.
fn body_kind(
    headers: &[httparse::Header<'_>],
    line: Option<(&str, &[u8])>,
) -> Result<(BodyKind, bool), Malformed> {
    let mut host: Option<&[u8]> = None;
    let mut options = 0;
    let mut te = false;
    let mut chunked = 0;
    let mut last_chunked = false;
    let mut length: Option<u64> = None;
    let mut upgrade = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in h.value.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                te = true;
                last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                chunked += usize::from(last_chunked);
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|&b| b == b',') {
                let v = v.trim_ascii();
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(Malformed::ContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Malformed::ContentLength);
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if h.name.eq_ignore_ascii_case("host") && host.replace(h.value).is_some() {
            return Err(Malformed::MultipleHost);
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection_options(h.value, &mut options)?;
        } else if h.name.contains('_') && is_ambiguous_name(h.name) {
            return Err(Malformed::AmbiguousName);
        }
    }
    if let Some((method, target)) = line {
        host_problem(target, host).map_or(Ok(()), Err)?;
        let origin = target.first() == Some(&b'/');
        let other_form = target == b"*" || method == "CONNECT" || !origin && http_absolute(target);
        if !origin && !other_form {
            return Err(Malformed::Target);
        }
    }
    // Transfer-Encoding wins over Content-Length, as in Pingora (the pair is refused upstream
    // of this as `te_and_cl`).
    let kind = if te {
        if !last_chunked || chunked != 1 {
            return Err(Malformed::TransferEncoding);
        }
        BodyKind::Chunked
    } else {
        match length {
            Some(n) => BodyKind::Length(n),
            None => BodyKind::None,
        }
    };
    Ok((kind, upgrade))
}

/// Names that read as one of these once `_` is taken for `-` (CGI's `HTTP_*` variables,
/// frameworks that normalise names): the framing fields and the forwarding fields the edge sets.
/// Only names with a `-` belong here: a name with `_` read with `-` can never equal one
/// without (Host, Connection, Forwarded).
const SHADOWED: [&str; 7] = [
    "transfer-encoding",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-request-id",
];

/// `name` (which holds a `_`) reads as one of [`SHADOWED`] with `_` taken for `-`.
fn is_ambiguous_name(name: &str) -> bool {
    SHADOWED.iter().any(|s| {
        s.len() == name.len()
            && s.bytes().zip(name.bytes()).all(|(a, b)| {
                let b = if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                };
                a == b
            })
    })
}

/// Checks one Connection value's options as Pingora does when it strips them upstream (at most
/// nine over all Connection lines, each a token, none a pseudo-header or Host or a forwarding
/// field the edge sets), counting them in `count`.
fn connection_options(value: &[u8], count: &mut usize) -> Result<(), Malformed> {
    const PROTECTED: [&[u8]; 4] = [
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
    ];
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if option.is_empty() {
            continue;
        }
        *count += 1;
        let protected = PROTECTED.iter().any(|p| option.eq_ignore_ascii_case(p));
        if *count > 9 || protected || !option.iter().all(|&b| tchar(b)) {
            return Err(Malformed::ConnectionOption);
        }
    }
    Ok(())
}

/// `target` is an http(s) absolute-form target (checked further by [`host_problem`]).
fn http_absolute(target: &[u8]) -> bool {
    matches!(
        raw_target_authority(target),
        RawTargetAuthority::Absolute { .. }
    )
}

/// What Pingora refuses in the Host header and an absolute-form target (the same classifier
/// as Pingora's: `pingora_http::authority`), named: userinfo, a scheme other than http(s), an
/// authority a URL parser could read differently, an authority not byte-identical to Host.
/// Ports and the host's syntax are checked after parsing (`request::validate`).
fn host_problem(target: &[u8], host: Option<&[u8]>) -> Option<Malformed> {
    if host.is_some_and(|h| h.contains(&b'@')) {
        return Some(Malformed::MalformedHost);
    }
    match raw_target_authority(target) {
        RawTargetAuthority::None => None,
        RawTargetAuthority::AmbiguousAuthority => Some(Malformed::Target),
        RawTargetAuthority::Absolute {
            scheme, authority, ..
        } => {
            let http =
                scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
            if !http {
                Some(Malformed::Target)
            } else if authority.contains(&b'@') {
                Some(Malformed::MalformedHost)
            } else if host.is_some_and(|h| h != authority) {
                Some(Malformed::HostMismatch)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was delivered, and the latched error.
    type Outcome = (Vec<u8>, Option<(u64, Malformed)>);

    /// Scans `wire` in reads of `step` bytes.
    fn run(wire: &[u8], step: usize) -> Outcome {
        let mut f = Framing::new(false);
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            if f.failed() {
                break;
            }
            let mut buf = piece.to_vec();
            let n = f.scan(&mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        (out, f.error())
    }

    fn every_split(wire: &[u8]) -> Vec<Outcome> {
        [1, 2, 3, 7, wire.len()]
            .iter()
            .map(|&s| run(wire, s))
            .collect()
    }

    #[test]
    fn good_requests_pass_untouched_in_any_split() {
        let wire: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
            POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
            POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=\"v\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
        for (out, err) in every_split(wire) {
            assert_eq!(err, None);
            assert_eq!(out, wire);
        }
    }

    #[test]
    fn leading_zeros_are_dropped_not_refused() {
        let wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000000000000000000000000a\r\n0123456789\r\n000\r\n\r\n";
        let want = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n05\r\nhello\r\n0a\r\n0123456789\r\n0\r\n\r\n";
        for (out, err) in every_split(wire) {
            assert_eq!(err, None);
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
        }
    }

    #[test]
    fn space_or_tab_in_target_is_latched_after_the_head() {
        for line in [&b"GET /a /b HTTP/1.1"[..], b"GET /a\t/b HTTP/1.1"] {
            let mut wire = line.to_vec();
            wire.extend_from_slice(b"\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
            let head_len = line.len() + 13;
            for (out, err) in every_split(&wire) {
                assert_eq!(err, Some((0, Malformed::SpaceInTarget)));
                assert_eq!(out, &wire[..head_len], "the head, nothing after it");
            }
        }
        let (_, err) = run(b"GET /a HTTP/1.1 x\r\n\r\n", 100);
        assert_eq!(err, Some((0, Malformed::RequestLine)));
        let (_, err) = run(b"GET /\r\n\r\n", 100);
        assert_eq!(err, Some((0, Malformed::RequestLine)));
    }

    #[test]
    fn bare_lf_in_a_chunk_line_stops_delivery_there() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"5;a\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX: y\n\r\n",
        ] {
            let mut wire = head.to_vec();
            wire.extend_from_slice(body);
            for (out, err) in every_split(&wire) {
                assert_eq!(err.map(|e| e.1), Some(Malformed::BareLfInChunk));
                assert!(out.len() < wire.len());
            }
        }
    }

    #[test]
    fn broken_chunks_are_named() {
        let cases: [(&[u8], Malformed); 6] = [
            (b"zz\r\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
            (b"\r\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
            (b"3\r\nhello\r\n0\r\n\r\n", Malformed::ChunkTerminator),
            (b"5\rhello\r\n0\r\n\r\n", Malformed::ChunkSize),
            (b"1000000000000000\r\n", Malformed::ChunkSizeTooLarge),
            (b"5 5\r\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
        ];
        for (body, want) in cases {
            let mut wire =
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            wire.extend_from_slice(body);
            for (_, err) in every_split(&wire) {
                assert_eq!(err, Some((0, want)), "{}", String::from_utf8_lossy(body));
            }
        }
        let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(5000));
        let mut wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        wire.extend_from_slice(long.as_bytes());
        assert_eq!(run(&wire, 512).1, Some((0, Malformed::ChunkLineTooLong)));
    }

    #[test]
    fn bad_framing_headers_are_named_with_their_request() {
        let wire = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(run(wire, 100).1, Some((1, Malformed::TransferEncoding)));
        let wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(run(wire, 100).1, Some((0, Malformed::TransferEncoding)));
        let wire = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!";
        assert_eq!(run(wire, 100).1, Some((0, Malformed::ContentLength)));
        let wire =
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(run(wire, 100).1, None, "equal values are one length");
    }

    #[test]
    fn host_target_and_field_name_problems_are_named() {
        use Malformed::{
            AmbiguousName as Name, ConnectionOption as Conn, HostMismatch as Mismatch,
        };
        // Heads as sent (the blank line added), and the malformation named.
        let head = |text: &str| {
            run(format!("{text}\r\n\r\n").as_bytes(), 1000)
                .1
                .map(|e| e.1)
        };
        let refused = [
            ["GET http://a:8443/ HTTP/1.1", "Host: a.:1"].join("\r\n"),
            ["GET http://a:8443/ HTTP/1.1", "Host: a"].join("\r\n"),
            ["GET http://a/ HTTP/1.1", "Host: a:80"].join("\r\n"),
            ["GET http://A/ HTTP/1.1", "Host: a"].join("\r\n"),
        ];
        for text in &refused {
            assert_eq!(head(text), Some(Mismatch), "{text}");
        }
        let named = [
            (
                ["GET http://u@a/ HTTP/1.1", "Host: a"],
                Malformed::MalformedHost,
            ),
            (
                ["GET / HTTP/1.1\r\nHost: a", "Host: a"],
                Malformed::MultipleHost,
            ),
            (["GET probe HTTP/1.1", "Host: a"], Malformed::Target),
            (["GET ftp://a/ HTTP/1.1", "Host: a"], Malformed::Target),
            (["GET http:/\\a/ HTTP/1.1", "Host: a"], Malformed::Target),
            (
                ["GET / HTTP/1.1\r\nHost: a", "Transfer_Encoding: chunked"],
                Name,
            ),
            (
                ["GET / HTTP/1.1\r\nHost: a", "X_forwarded_FOR: 1.2.3.4"],
                Name,
            ),
            (
                [
                    "GET / HTTP/1.1\r\nHost: a",
                    "Connection: close, X-Forwarded-For",
                ],
                Conn,
            ),
            (["GET / HTTP/1.1\r\nHost: a", "Connection: host"], Conn),
            (["GET / HTTP/1.1\r\nHost: a", "Connection: \"x\""], Conn),
            (
                [
                    "GET / HTTP/1.1\r\nHost: a",
                    "Connection: a,b,c,d,e\r\nConnection: f,g,h,i,j",
                ],
                Conn,
            ),
        ];
        for (lines, want) in named {
            let text = lines.join("\r\n");
            assert_eq!(head(&text), Some(want), "{text}");
        }
        for text in [
            "GET http://a/ HTTP/1.1\r\nHost: a",
            "OPTIONS * HTTP/1.1\r\nHost: a",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443",
            "GET / HTTP/1.1\r\nHost: a\r\nX_Custom_Field: 1",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Real-IP, TE",
        ] {
            assert_eq!(head(text), None, "{text}");
        }
    }

    #[test]
    fn first_chunk_is_pending_until_its_line_ends() {
        let mut f = Framing::new(false);
        let mut head =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5".to_vec();
        f.scan(&mut head);
        assert!(f.first_chunk_pending(0));
        f.scan(&mut b"\r\nhel".to_vec());
        assert!(!f.first_chunk_pending(0));
    }

    #[test]
    fn upgrade_stashes_until_answered() {
        let wire = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\x81\x05hello \t\n";
        let mut f = Framing::new(false);
        let n = f.scan(&mut wire.to_vec());
        assert_eq!(n, wire.len());
        f.response(101);
        assert_eq!(f.error(), None);
        let mut frames = b"\x81\x05 a b c\n".to_vec();
        assert_eq!(f.scan(&mut frames), frames.len());

        let mut f = Framing::new(false);
        let wire = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\nGET /a /b HTTP/1.1\r\nHost: a\r\n\r\n";
        f.scan(&mut wire.to_vec());
        f.response(200);
        assert_eq!(f.error(), Some((1, Malformed::SpaceInTarget)));
    }

    #[test]
    fn h2_preface_is_not_scanned() {
        let wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00";
        assert_eq!(run(wire, 100), (wire.to_vec(), None));
    }
}
