//! New TLS connections per second: N concurrent loops, each opening a TCP connection, doing a
//! TLS handshake, sending one `GET PATH HTTP/1.1` (`Connection: close`) and reading the answer
//! to its end (hyper's HTTP/1.1 client: its framing; then the server's close), then closing; or, in `keepalive`
//! mode, one connection per loop carrying request after request (the per-request baseline
//! to subtract from a connection's cost).
//!
//! * `full`: no resumption at all (`Resumption::disabled()`: no session store, no tickets, no
//!   TLS 1.2 session ids); any resumed handshake is an error.
//! * `resumed`: every loop shares `clients` session stores (one by default: one client
//!   reconnecting); the measured window counts the handshakes rustls reports as resumed
//!   (`ClientConnection::handshake_kind()`), and [`Report::check`] fails when their fraction
//!   is below the floor asked for.
//!
//! wrk cannot measure this: it resumes TLS sessions across reconnects, and one wrk core
//! saturates before the servers do. The server's CPU is read from `/proc/PID/stat` (utime +
//! stime of every process given) over the measured window only, so the figure that compares
//! servers does not depend on the client keeping up.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, Tls12Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Default bound on each step of one connection (connect, handshake, answer): a hang is an
/// error.
pub const STEP: Duration = Duration::from_secs(5);
/// Largest answer head or body read (the bench answers are tiny; this bounds a bad server).
const MAX_ANSWER: usize = 1 << 20;
/// Longest run accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most concurrent loops accepted.
pub const MAX_CONNS: usize = 4096;
/// Most client session stores (returning clients) accepted.
pub const MAX_CLIENTS: usize = 100_000;

/// What each loop does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A full handshake per connection (resumption disabled).
    Full,
    /// Resume the session of an earlier connection (shared client session stores).
    Resumed,
    /// One connection per loop, requests back to back (the per-request baseline).
    Keepalive,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Mode::Full),
            "resumed" => Ok(Mode::Resumed),
            "keepalive" => Ok(Mode::Keepalive),
            _ => Err(format!("unknown mode {s:?}: full, resumed or keepalive")),
        }
    }
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Resumed => "resumed",
            Mode::Keepalive => "keepalive",
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server (loopback only).
    pub addr: SocketAddr,
    /// Sent as SNI and verified against the server's certificate.
    pub server_name: ServerName<'static>,
    /// The `Host` header of the request.
    pub host: String,
    /// The request path.
    pub path: String,
    /// Roots the server's certificate must chain to.
    pub roots: Vec<CertificateDer<'static>>,
    pub mode: Mode,
    /// TLS 1.2 instead of 1.3.
    pub tls12: bool,
    /// Offer only these cipher suites (rustls names, e.g. `TLS13_AES_128_GCM_SHA256`), so that
    /// every server negotiates the same one; empty: rustls's default list and order.
    pub suites: Vec<String>,
    /// Concurrent loops.
    pub conns: usize,
    /// Resumed mode: distinct client session stores, loops spread over them round robin.
    pub clients: usize,
    /// Not measured: connections (or time) before the window opens.
    pub warmup: Duration,
    /// The measured window ends after this long...
    pub duration: Duration,
    /// ...or after this many measured handshakes (requests in keepalive mode), if sooner.
    pub max_count: Option<u64>,
    /// Processes whose utime + stime are summed over the window (all of the server's).
    pub server_pids: Vec<u32>,
    /// Bound on each step of a connection ([`STEP`] by default; longer for a server under
    /// callgrind, which other people's timed runs pause).
    pub step: Duration,
}

/// Counters of the measured window and what the handshakes negotiated.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub mode: &'static str,
    /// Connections done (handshake, request, answer) in the window; requests in keepalive mode.
    pub done: u64,
    pub full: u64,
    pub resumed: u64,
    /// Handshakes of the whole run (warm-up and first connections included).
    pub all_full: u64,
    pub all_resumed: u64,
    /// Connections (requests in keepalive mode) done in the whole run.
    pub all_done: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Handshake time (after TCP connect, to handshake complete), microseconds.
    pub handshake_p50_us: u64,
    pub handshake_p99_us: u64,
    /// `protocol suite group` → connections (all of the run, warm-up included).
    pub negotiated: BTreeMap<String, u64>,
    /// The server's signature schemes seen on full handshakes (its certificate's key type).
    pub server_signatures: BTreeMap<String, u64>,
    /// Server CPU over the window (seconds), if pids were given.
    pub server_cpu: Option<f64>,
    /// The client's own CPU over the window (seconds): near `seconds` means it saturated.
    pub client_cpu: Option<f64>,
    pub last_error: Option<String>,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.done as f64 / self.seconds.max(1e-9)
    }

    /// Fraction of the window's handshakes that were resumed.
    pub fn resumed_fraction(&self) -> f64 {
        self.resumed as f64 / (self.full + self.resumed).max(1) as f64
    }

    /// Server CPU per connection (per request in keepalive mode), microseconds.
    pub fn server_cpu_per_us(&self) -> Option<f64> {
        self.server_cpu.map(|c| c / self.done.max(1) as f64 * 1e6)
    }

    /// The run did what its mode says: no error, something done, and in `full` mode no
    /// resumed handshake, in `resumed` mode at least `min_resumed` of them resumed.
    pub fn check(&self, min_resumed: f64) -> Result<(), String> {
        if !(0.0..=1.0).contains(&min_resumed) {
            return Err(format!("min_resumed {min_resumed} is not in [0, 1]"));
        }
        if self.done == 0 {
            return Err(format!(
                "nothing done in the window ({} errors; last: {})",
                self.errors,
                self.last_error.as_deref().unwrap_or("-")
            ));
        }
        if self.errors > 0 {
            return Err(format!(
                "{} errors (last: {})",
                self.errors,
                self.last_error.as_deref().unwrap_or("-")
            ));
        }
        match self.mode {
            "full" if self.resumed > 0 => {
                Err(format!("{} handshakes resumed in full mode", self.resumed))
            }
            "resumed" if self.resumed_fraction() < min_resumed => Err(format!(
                "only {} of {} handshakes resumed ({:.4} < {min_resumed})",
                self.resumed,
                self.full + self.resumed,
                self.resumed_fraction()
            )),
            _ => Ok(()),
        }
    }

    /// One line `HANDSHAKES key=value ...` (what the bench script reads).
    pub fn line(&self) -> String {
        let mut s = format!(
            "HANDSHAKES mode={} done={} full={} resumed={} all_done={} all_full={} all_resumed={} resumed_fraction={:.4} errors={} seconds={:.2} per_second={:.1} handshake_p50_us={} handshake_p99_us={}",
            self.mode,
            self.done,
            self.full,
            self.resumed,
            self.all_done,
            self.all_full,
            self.all_resumed,
            self.resumed_fraction(),
            self.errors,
            self.seconds,
            self.per_second(),
            self.handshake_p50_us,
            self.handshake_p99_us
        );
        if let (Some(cpu), Some(per)) = (self.server_cpu, self.server_cpu_per_us()) {
            let _ = write!(s, " server_cpu_s={cpu:.3} server_cpu_per_conn_us={per:.1}");
        }
        if let Some(cpu) = self.client_cpu {
            let _ = write!(s, " client_cpu_s={cpu:.3}");
        }
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{}:{v}", k.replace(' ', "/")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = write!(
            s,
            " negotiated={} server_signature={}",
            join(&self.negotiated),
            join(&self.server_signatures)
        );
        s
    }
}

/// Records the signature scheme the server signed its handshake with (its key type), then
/// lets webpki decide.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RecordingVerifier {
    fn note(&self, scheme: SignatureScheme) {
        if let Ok(mut m) = self.seen.lock() {
            *m.entry(format!("{scheme:?}")).or_default() += 1;
        }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.note(dss.scheme);
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.note(dss.scheme);
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client session store shared by concurrent loops. rustls's `ClientSessionMemoryCache`
/// keeps at most 8 TLS 1.3 tickets per server: with more loops than that in flight, some would
/// find it empty and do a full handshake although the server resumes fine. This one keeps up to
/// `per_server` tickets per server (oldest dropped first), so the resumed fraction measures the
/// server.
#[derive(Debug)]
struct SharedStore {
    per_server: usize,
    servers: Mutex<std::collections::HashMap<ServerName<'static>, ServerEntry>>,
}

#[derive(Debug, Default)]
struct ServerEntry {
    kx_hint: Option<rustls::NamedGroup>,
    tls12: Option<rustls::client::Tls12ClientSessionValue>,
    tls13: std::collections::VecDeque<rustls::client::Tls13ClientSessionValue>,
}

impl SharedStore {
    fn new(per_server: usize) -> Self {
        SharedStore {
            per_server,
            servers: Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn with<T>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut ServerEntry) -> T) -> Option<T> {
        let mut servers = self.servers.lock().ok()?;
        let name = name.to_owned();
        Some(f(servers.entry(name).or_default()))
    }
}

impl rustls::client::ClientSessionStore for SharedStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.with(&server_name, |e| e.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.with(server_name, |e| e.kx_hint).flatten()
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.with(&server_name, |e| e.tls12 = Some(value));
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.with(server_name, |e| e.tls12.clone()).flatten()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.with(server_name, |e| e.tls12 = None);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        let cap = self.per_server;
        self.with(&server_name, |e| {
            if e.tls13.len() >= cap {
                e.tls13.pop_front();
            }
            e.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        // Newest first, as rustls's own cache does.
        self.with(server_name, |e| e.tls13.pop_back()).flatten()
    }
}

fn client_configs(
    opts: &Options,
    seen: &Arc<Mutex<BTreeMap<String, u64>>>,
) -> Result<Vec<Arc<ClientConfig>>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !opts.suites.is_empty() {
        let known: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        if let Some(bad) = opts.suites.iter().find(|s| !known.contains(s)) {
            return Err(format!(
                "unknown cipher suite {bad}; known: {}",
                known.join(" ")
            ));
        }
        provider
            .cipher_suites
            .retain(|s| opts.suites.contains(&format!("{:?}", s.suite())));
    }
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let mut store = rustls::RootCertStore::empty();
    for root in &opts.roots {
        store.add(root.clone()).map_err(|e| format!("CA: {e}"))?;
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| format!("CA: {e}"))?;
    let verifier = Arc::new(RecordingVerifier {
        inner: webpki,
        seen: seen.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if opts.tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let stores = match opts.mode {
        Mode::Resumed => opts.clients.max(1),
        _ => 1,
    };
    let mut out = Vec::with_capacity(stores);
    for _ in 0..stores {
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = match opts.mode {
            // One store shared by every loop of this client; TLS 1.2 by tickets or session id.
            Mode::Resumed => {
                Resumption::store(Arc::new(SharedStore::new((4 * opts.conns).max(64))))
                    .tls12_resumption(Tls12Resumption::SessionIdOrTickets)
            }
            _ => Resumption::disabled(),
        };
        out.push(Arc::new(config));
    }
    Ok(out)
}

/// hyper's HTTP/1.1 client connection on one TLS stream. `without_shutdown`: when the exchange
/// is over it hands the stream back instead of closing it, so the server closes first (its
/// TIME-WAIT, not ours).
type AppConnection = http1::Connection<TokioIo<TlsStream<TcpStream>>, Empty<Bytes>>;

/// One request and its answer on hyper's client connection (framing, chunked bodies and their
/// bounds are hyper's), the answer's body read to its end (at most [`MAX_ANSWER`] bytes).
/// Returns whether the server said it closes the connection.
async fn exchange(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> Result<bool, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    let status = answer.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(format!("status {}", status.as_u16()));
    }
    let close = answer
        .headers()
        .get_all(CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    Limited::new(answer.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("answer body: {e}"))?;
    Ok(close)
}

/// Runs `work` while driving `conn` in this task; an end of the connection before `work` is
/// done is an error.
async fn driving<T>(
    conn: &mut std::pin::Pin<&mut AppConnection>,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::select! {
        r = work => r,
        c = conn.as_mut() => Err(match c {
            Ok(()) => "the server closed the connection".to_string(),
            Err(e) => format!("connection: {e}"),
        }),
    }
}

struct Shared {
    opts: Options,
    /// The request's path and `Host`, parsed once.
    uri: Uri,
    host: HeaderValue,
    configs: Vec<TlsConnector>,
    measuring: AtomicBool,
    stop: AtomicBool,
    done: AtomicU64,
    full: AtomicU64,
    resumed: AtomicU64,
    all_full: AtomicU64,
    all_resumed: AtomicU64,
    all_done: AtomicU64,
    errors: AtomicU64,
    hist: Mutex<hdrhistogram::Histogram<u64>>,
    negotiated: Mutex<BTreeMap<String, u64>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    /// The bench's request: `GET PATH`, `Host`, `User-Agent`, and `Connection: close` when the
    /// connection carries one request only.
    fn request(&self, close: bool) -> Result<Request<Empty<Bytes>>, String> {
        let mut b = Request::get(self.uri.clone())
            .header(HOST, self.host.clone())
            .header(USER_AGENT, "rampart-handshakes");
        if close {
            b = b.header(CONNECTION, "close");
        }
        b.body(Empty::new()).map_err(|e| format!("request: {e}"))
    }

    fn error(&self, e: String) {
        if self.measuring.load(Ordering::Relaxed) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e);
        }
    }
}

/// Connect and handshake; records the handshake's kind, time and parameters.
async fn connect(shared: &Shared, client: usize) -> Result<TlsStream<TcpStream>, String> {
    let tcp = tokio::time::timeout(shared.opts.step, TcpStream::connect(shared.opts.addr))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let connector = &shared.configs[client % shared.configs.len()];
    let started = Instant::now();
    let tls = tokio::time::timeout(
        shared.opts.step,
        connector.connect(shared.opts.server_name.clone(), tcp),
    )
    .await
    .map_err(|_| "handshake timeout".to_string())?
    .map_err(|e| format!("handshake: {e}"))?;
    let took = started.elapsed();
    let conn = tls.get_ref().1;
    let key = format!(
        "{} {} {}",
        conn.protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        conn.negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        conn.negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_else(|| "none".into())
    );
    if let Ok(mut m) = shared.negotiated.lock() {
        *m.entry(key).or_default() += 1;
    }
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    match resumed {
        true => shared.all_resumed.fetch_add(1, Ordering::Relaxed),
        false => shared.all_full.fetch_add(1, Ordering::Relaxed),
    };
    if shared.measuring.load(Ordering::Relaxed) {
        match resumed {
            true => shared.resumed.fetch_add(1, Ordering::Relaxed),
            false => shared.full.fetch_add(1, Ordering::Relaxed),
        };
        if let Ok(mut h) = shared.hist.lock() {
            let _ = h.record(took.as_micros().max(1) as u64);
        }
    }
    Ok(tls)
}

/// One connection: handshake, one request, its answer, the server's close.
async fn one_connection(shared: &Shared, client: usize) -> Result<(), String> {
    let tls = connect(shared, client).await?;
    let request = shared.request(true)?;
    let exchange = async {
        let (mut sender, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
        let mut conn = std::pin::pin!(conn.without_shutdown());
        let answer = async move { exchange(&mut sender, request).await };
        let (answer, parts) = tokio::join!(answer, conn.as_mut());
        answer?;
        let parts = parts.map_err(|e| format!("connection: {e}"))?;
        if !parts.read_buf.is_empty() {
            return Err("bytes after the answer".to_string());
        }
        let mut tls = parts.io.into_inner();
        // Let the server close first (its TIME-WAIT, not ours): wait for its close_notify/FIN.
        let mut rest = [0u8; 512];
        match tls.read(&mut rest).await {
            Ok(0) => {}
            Ok(_) => return Err("bytes after the answer".to_string()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(format!("read after the answer: {e}")),
        }
        let _ = tls.shutdown().await;
        Ok::<_, String>(())
    };
    tokio::time::timeout(shared.opts.step, exchange)
        .await
        .map_err(|_| "answer timeout".to_string())?
}

async fn keepalive_loop(shared: &Shared, client: usize) -> Result<(), String> {
    let tls = connect(shared, client).await?;
    let (mut sender, conn) =
        tokio::time::timeout(shared.opts.step, http1::handshake(TokioIo::new(tls)))
            .await
            .map_err(|_| "http handshake timeout".to_string())?
            .map_err(|e| format!("http: {e}"))?;
    let mut conn = std::pin::pin!(conn);
    while !shared.stop.load(Ordering::Relaxed) {
        let request = shared.request(false)?;
        let step = driving(&mut conn, exchange(&mut sender, request));
        let close = tokio::time::timeout(shared.opts.step, step)
            .await
            .map_err(|_| "answer timeout".to_string())??;
        shared.all_done.fetch_add(1, Ordering::Relaxed);
        if shared.measuring.load(Ordering::Relaxed) {
            shared.done.fetch_add(1, Ordering::Relaxed);
        }
        if close {
            return Err("the server closed a keep-alive connection".into());
        }
    }
    Ok(())
}

/// utime + stime of `pid` in seconds (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("{path}: field {}", i + 3))
    };
    Ok((num(11)? + num(12)?) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // The kernel's USER_HZ: 100 on every Linux architecture we run on; `getconf CLK_TCK` says so.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

fn cpu_of(pids: &[u32]) -> Result<f64, String> {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

/// Runs the loops: warm-up, then the measured window (bounded by time and count).
pub async fn run(opts: Options) -> Result<Report, String> {
    if !opts.addr.ip().is_loopback() {
        return Err(format!("{}: only loopback servers are allowed", opts.addr));
    }
    if opts.duration.is_zero() || opts.duration > MAX_DURATION || opts.warmup > MAX_DURATION {
        return Err(format!(
            "duration must be in (0, {}s]",
            MAX_DURATION.as_secs()
        ));
    }
    if opts.conns == 0 || opts.conns > MAX_CONNS {
        return Err(format!("conns must be in 1..={MAX_CONNS}"));
    }
    if opts.clients > MAX_CLIENTS {
        return Err(format!("clients must be at most {MAX_CLIENTS}"));
    }
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let configs = client_configs(&opts, &seen)?
        .into_iter()
        .map(TlsConnector::from)
        .collect();
    let uri: Uri = opts
        .path
        .parse()
        .map_err(|e| format!("path {:?}: {e}", opts.path))?;
    let host =
        HeaderValue::from_str(&opts.host).map_err(|e| format!("host {:?}: {e}", opts.host))?;
    let hist =
        hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        uri,
        host,
        configs,
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        full: AtomicU64::new(0),
        resumed: AtomicU64::new(0),
        all_full: AtomicU64::new(0),
        all_resumed: AtomicU64::new(0),
        all_done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        hist: Mutex::new(hist),
        negotiated: Mutex::new(BTreeMap::new()),
        last_error: Mutex::new(None),
    });

    // One connection first: a wrong set-up fails at once with its reason. In resumed mode
    // every client store gets its sessions this way before the loops start.
    {
        // Resumed mode: each store is primed with as many tickets as loops will use it at once
        // (ceil(conns / clients) connections: the first full one leaves two tickets with a
        // rustls server, each resumed one one more), so the window does not open on full
        // handshakes of loops that found their store empty. Servers that send fewer tickets
        // fill it during the warm-up.
        let stores = shared.configs.len();
        let firsts = match opts.mode {
            Mode::Resumed => stores * opts.conns.div_ceil(stores),
            _ => 1,
        };
        // Bounded by the run's own length: many clients' first connections are part of it.
        let deadline = Instant::now() + opts.warmup + opts.duration;
        for first in 0..firsts {
            let client = first % stores;
            if Instant::now() >= deadline {
                return Err(format!(
                    "the first {firsts} connections took longer than the run ({first} done)"
                ));
            }
            one_connection(&shared, client).await?;
            if opts.mode != Mode::Keepalive {
                shared.all_done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = i;
            while !shared.stop.load(Ordering::Relaxed) {
                let result = match shared.opts.mode {
                    Mode::Keepalive => keepalive_loop(&shared, i).await,
                    _ => one_connection(&shared, client).await,
                };
                match result {
                    Ok(()) if shared.opts.mode != Mode::Keepalive => {
                        shared.all_done.fetch_add(1, Ordering::Relaxed);
                        if shared.measuring.load(Ordering::Relaxed) {
                            shared.done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(()) => {}
                    Err(e) => shared.error(e),
                }
                client = client.wrapping_add(shared.opts.conns);
            }
        }));
    }

    tokio::time::sleep(opts.warmup).await;
    let cpu0 = if opts.server_pids.is_empty() {
        None
    } else {
        Some(cpu_of(&opts.server_pids)?)
    };
    let own0 = cpu_seconds(std::process::id()).ok();
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let end = started + opts.duration;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if let Some(max) = opts.max_count {
            if shared.done.load(Ordering::Relaxed) >= max {
                break;
            }
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(5))).await;
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let done = shared.done.load(Ordering::Relaxed);
    let server_cpu = match cpu0 {
        Some(c0) => Some(cpu_of(&opts.server_pids)? - c0),
        None => None,
    };
    let client_cpu = match (own0, cpu_seconds(std::process::id()).ok()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    shared.stop.store(true, Ordering::Relaxed);
    let mut lost_loops = 0;
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout(opts.step * 3, t).await {
            Ok(Ok(())) => {}
            // A loop that panicked or never ended is an error of the run, never silence.
            Ok(Err(e)) => {
                lost_loops += 1;
                shared.error(format!("a loop ended abnormally: {e}"));
            }
            Err(_) => {
                abort.abort();
                lost_loops += 1;
                shared.error("a loop did not end".into());
            }
        }
    }
    let (p50, p99) = match shared.hist.lock() {
        Ok(h) => (h.value_at_quantile(0.5), h.value_at_quantile(0.99)),
        Err(_) => (0, 0),
    };
    let negotiated = shared
        .negotiated
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let server_signatures = seen.lock().map(|m| m.clone()).unwrap_or_default();
    let last_error = shared.last_error.lock().ok().and_then(|l| l.clone());
    Ok(Report {
        mode: opts.mode.name(),
        done,
        full: shared.full.load(Ordering::Relaxed),
        resumed: shared.resumed.load(Ordering::Relaxed),
        all_full: shared.all_full.load(Ordering::Relaxed),
        all_resumed: shared.all_resumed.load(Ordering::Relaxed),
        all_done: shared.all_done.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed) + lost_loops,
        seconds,
        handshake_p50_us: p50,
        handshake_p99_us: p99,
        negotiated,
        server_signatures,
        server_cpu,
        client_cpu,
        last_error,
    })
}
