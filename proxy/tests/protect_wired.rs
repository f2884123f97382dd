//! The WAF and DoS defences wired into the real `rampart-proxy` binary: every denial reason is
//! answered, logged (access-log line or event line), counted in `rampart_denials_total`, and
//! bad input at every limit gets a clear 4xx with nothing forwarded (the counting upstream
//! saw neither a connection nor a request).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An upstream that counts connections and requests and keeps the bodies it received.
#[derive(Clone, Default)]
struct Counting {
    addr: Option<SocketAddr>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Counting {
    async fn start() -> Counting {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Counting {
            addr: Some(l.local_addr().unwrap()),
            ..Counting::default()
        };
        let me = c.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                me.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(me.clone().serve(s));
            }
        });
        c
    }

    fn addr(&self) -> SocketAddr {
        self.addr.unwrap()
    }

    fn saw_nothing(&self) {
        assert_eq!(
            self.connections.load(Ordering::SeqCst),
            0,
            "upstream got a connection"
        );
        assert_eq!(
            self.requests.load(Ordering::SeqCst),
            0,
            "upstream got a request"
        );
    }

    async fn serve(self, s: TcpStream) {
        let mut io = BufReader::new(s);
        loop {
            let mut len = 0usize;
            let mut chunked = false;
            let mut path = String::new();
            loop {
                let mut line = String::new();
                if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if path.is_empty() {
                    path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                }
                if line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                    chunked = true;
                }
            }
            let mut body = Vec::new();
            if chunked {
                loop {
                    let mut size = String::new();
                    if io.read_line(&mut size).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                    let mut chunk = vec![0u8; n + 2];
                    if io.read_exact(&mut chunk).await.is_err() {
                        return;
                    }
                    body.extend_from_slice(&chunk[..n]);
                    if n == 0 {
                        break;
                    }
                }
            } else {
                body.resize(len, 0);
                if io.read_exact(&mut body).await.is_err() {
                    return;
                }
            }
            self.requests.fetch_add(1, Ordering::SeqCst);
            self.bodies.lock().unwrap().push(body);
            if path.starts_with("/slow") {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if io.get_mut().write_all(resp).await.is_err() {
                return;
            }
        }
    }
}

/// Plain listener (insecure_plaintext: raw bytes on the wire), admin, routes with each WAF
/// mode and body limits, and `protect` tables; every address on port 0 in the config, `port` and
/// `admin` the bound ones (from the ready line).
struct Setup {
    port: u16,
    admin: u16,
}

impl Setup {
    fn config(&self, upstream: SocketAddr, protect: &str, app_mode: &str) -> String {
        format!(
            r#"
{head}{protect}
[[listeners]]
name = "plain"
address = "127.0.0.1:0"
insecure_plaintext = true
{route}[routes.waf]
mode = "{app_mode}"
[[routes]]
name = "detect"
hosts = ["detect.test"]
upstream = "app"
[routes.waf]
mode = "detect"
[[routes]]
name = "off"
hosts = ["off.test"]
upstream = "app"
[routes.waf]
mode = "off"
[[routes]]
name = "small"
hosts = ["small.test"]
upstream = "app"
[routes.waf]
inspect_limit = 1024
max_body = 8192
[[routes]]
name = "stream"
hosts = ["stream.test"]
upstream = "app"
[routes.waf]
inspect_limit = 1024
max_body = 8192
insecure_pass_uninspected_body = true
[[routes]]
name = "bulk"
hosts = ["bulk.test"]
upstream = "app"
[routes.waf]
insecure_pass_uninspected_body = true
[[routes]]
name = "tight"
hosts = ["tight.test"]
upstream = "app"
[routes.waf]
inspect_limit = 4096
max_body = 4096
[[routes]]
name = "limited"
hosts = ["limited.test"]
upstream = "app"
"#,
            head = config_head(""),
            route = route_to("app", "app", &upstream.to_string(), r#"["app.test"]"#),
        )
    }
}

const LIMITS: &str = r#"
[protect.rate_limit]
default = { requests = 100000, burst = 100000 }
[protect.rate_limit.routes.limited]
requests = 1
per_seconds = 60
burst = 2
[protect.connections]
max_per_ip = 100000
new_per_ip = { requests = 100000, burst = 100000 }
[protect.slow_clients]
header_timeout_secs = 1
"#;

struct Running {
    edge: Edge,
    up: Counting,
    setup: Setup,
}

async fn start_with(protect: &str, app_mode: &str) -> Running {
    let up = Counting::start().await;
    let dir = tempfile::tempdir().unwrap();
    let unbound = Setup { port: 0, admin: 0 };
    let edge = Edge::start(&unbound.config(up.addr(), protect, app_mode), dir);
    let setup = Setup {
        port: edge.port("plain"),
        admin: edge.admin(),
    };
    Running { edge, up, setup }
}

async fn start() -> Running {
    start_with(LIMITS, "block").await
}

/// Sends raw bytes, reads the response until the edge closes (every edge answer closes).
async fn send(port: u16, bytes: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

fn get_req(host: &str, target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post_req(host: &str, body: &[u8]) -> Vec<u8> {
    post_typed(host, "application/octet-stream", body)
}

fn post_typed(host: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /submit HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

impl Running {
    /// The access-log line (request or event) whose `field` equals `value`.
    fn log_line(&self, field: &str, value: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.edge.path("access.log")).unwrap_or_default();
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                if v[field] == value || value.parse::<u64>().is_ok_and(|n| v[field] == n) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {field} = {value}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of one exact metric series (0 when absent).
    async fn metric(&self, series: &str) -> u64 {
        let m = admin(self.setup.admin, "/metrics").await;
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    async fn malformed(&self, reason: &str) -> u64 {
        self.metric(&format!(
            "rampart_malformed_requests_total{{reason=\"{reason}\"}}"
        ))
        .await
    }

    /// `rampart_waf_uninspected_total` for one route, cause and action.
    async fn uninspected(&self, route: &str, cause: &str, action: &str) -> u64 {
        self.metric(&format!(
            "rampart_waf_uninspected_total{{action=\"{action}\",cause=\"{cause}\",route=\"{route}\"}}"
        ))
        .await
    }

    /// The sum over every series of one metric.
    async fn metric_sum(&self, name: &str) -> u64 {
        let m = admin(self.setup.admin, "/metrics").await;
        m.body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()))
            .sum()
    }

    async fn denials(&self, reason: &str, route: &str, family: &str) -> u64 {
        self.metric(&format!(
            "rampart_denials_total{{family=\"{family}\",reason=\"{reason}\",route=\"{route}\"}}"
        ))
        .await
    }

    /// A bad request: `status`, the log names `reason`, counted as bad_request, nothing forwarded.
    async fn refused(&self, bytes: &[u8], status: u16) -> Resp {
        let r = send(self.setup.port, bytes).await;
        assert_eq!(r.status, status, "{}", r.body);
        self.up.saw_nothing();
        r
    }
}

// ---- WAF --------------------------------------------------------------------------------

#[tokio::test]
async fn waf_block_mode_refuses_before_forwarding_and_explains() {
    let e = start().await;
    let r = send(e.setup.port, &get_req("app.test", "/?q=1%27%20OR%201=1--")).await;
    assert_eq!(r.status, 403);
    let id = r.header("x-request-id").unwrap().to_string();
    assert!(
        r.body.contains(&id),
        "body names the request id: {}",
        r.body
    );
    e.up.saw_nothing();
    let line = e.log_line("http.request.id", &id);
    assert_eq!(line["rampart.waf.action"], "block");
    assert_eq!(line["rampart.denial.reason"], "waf_block");
    assert!(line["rampart.waf.score"].as_u64().unwrap() >= 5);
    assert!(!line["rampart.waf.rule_ids"].as_array().unwrap().is_empty());
    assert!(line["rampart.waf.targets"].to_string().contains("q"));
    assert_eq!(e.denials("waf_block", "app", "sqli").await, 1);
    assert_eq!(
        e.metric("rampart_waf_decisions_total{action=\"block\",family=\"sqli\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn waf_detect_mode_logs_and_forwards() {
    let e = start().await;
    let r = send(
        e.setup.port,
        &get_req("detect.test", "/?q=1%27%20OR%201=1--"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(e.up.requests.load(Ordering::SeqCst), 1);
    let line = e.log_line("http.route", "detect");
    assert_eq!(line["rampart.waf.action"], "detect");
    assert!(line.get("rampart.denial.reason").is_none());
    assert_eq!(e.denials("waf_block", "detect", "sqli").await, 0);
    assert_eq!(
        e.metric("rampart_waf_decisions_total{action=\"detect\",family=\"sqli\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn waf_off_mode_forwards_without_inspection() {
    let e = start().await;
    let r = send(e.setup.port, &get_req("off.test", "/?q=1%27%20OR%201=1--")).await;
    assert_eq!(r.status, 200);
    assert_eq!(e.up.requests.load(Ordering::SeqCst), 1);
    assert_eq!(e.log_line("http.route", "off")["rampart.waf.action"], "off");
}

#[tokio::test]
async fn waf_inspects_the_body_before_forwarding() {
    let e = start().await;
    let r = send(
        e.setup.port,
        &post_req(
            "app.test",
            b"name=x&q=1' UNION SELECT password FROM users--",
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    e.up.saw_nothing();
    assert_eq!(
        e.log_line("http.route", "app")["rampart.waf.action"],
        "block"
    );
}

#[tokio::test]
async fn body_above_pingora_retry_buffer_is_inspected_and_forwarded_whole() {
    let e = start().await;
    // 100 KiB: above Pingora's 64 KiB retry buffer, below the 128 KiB inspect_limit.
    let body: Vec<u8> = (0..100 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let r = send(e.setup.port, &post_req("app.test", &body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap()[0], body);
    let line = e.log_line("http.route", "app");
    assert_eq!(line["rampart.waf.action"], "pass");
    assert!(line.get("rampart.waf.body").is_none(), "{line}");
}

#[tokio::test]
async fn body_over_inspect_limit_is_413_unless_the_route_passes_it_uninspected() {
    let e = start().await;
    // Routes `small` and `stream`: inspect 1 KiB, max 8 KiB. The attack sits past the
    // inspected part.
    let mut body = vec![b'a'; 3000];
    body.extend_from_slice(b"&q=1' UNION SELECT password FROM users--");
    let r = e.refused(&post_req("small.test", &body), 413).await;
    let id = r.header("x-request-id").unwrap().to_string();
    let line = e.log_line("http.request.id", &id);
    assert_eq!(line["rampart.denial.reason"], "body_uninspected");
    assert_eq!(line["rampart.waf.uninspected"], "inspect_limit");
    assert_eq!(line["rampart.waf.uninspected_action"], "refused");
    assert_eq!(e.denials("body_uninspected", "small", "none").await, 1);
    assert_eq!(e.uninspected("small", "inspect_limit", "refused").await, 1);
    // `insecure_pass_uninspected_body = true`: forwarded whole, logged and counted.
    let r = send(e.setup.port, &post_req("stream.test", &body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap()[0], body);
    let line = e.log_line("http.route", "stream");
    assert_eq!(line["rampart.waf.body"], "partial");
    assert_eq!(line["rampart.waf.uninspected_action"], "passed");
    assert_eq!(e.uninspected("stream", "inspect_limit", "passed").await, 1);
}

#[tokio::test]
async fn body_over_max_body_is_413_and_not_forwarded() {
    let e = start().await;
    let body = vec![b'a'; 9000];
    let r = e.refused(&post_req("small.test", &body), 413).await;
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(
        e.log_line("http.request.id", &id)["rampart.denial.reason"],
        "body_too_large"
    );
    assert_eq!(e.denials("body_too_large", "small", "none").await, 1);
}

#[tokio::test]
async fn sighup_swaps_waf_mode_and_limits() {
    let e = start_with(LIMITS, "off").await;
    let attack = get_req("app.test", "/?q=1%27%20OR%201=1--");
    let long = get_req("app.test", &format!("/{}", "a".repeat(400)));
    assert_eq!(send(e.setup.port, &attack).await.status, 200);
    assert_eq!(send(e.setup.port, &long).await.status, 200);
    let tighter = format!("{LIMITS}[limits]\nmax_uri_bytes = 256\n");
    std::fs::write(
        &e.edge.config_path,
        e.setup.config(e.up.addr(), &tighter, "block"),
    )
    .unwrap();
    e.edge.signal("HUP");
    e.edge
        .wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
    assert_eq!(send(e.setup.port, &attack).await.status, 403);
    assert_eq!(send(e.setup.port, &long).await.status, 414);
}

/// Statuses of `n` requests to the rate-limited route.
async fn limited_statuses(port: u16, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send(port, &get_req("limited.test", "/")).await.status);
    }
    out
}

#[tokio::test]
async fn sighup_reloads_protect_limits_and_refuses_a_bad_protect() {
    let e = start().await;
    let port = e.setup.port;
    // Running limit on route `limited`: burst 2 per 60 s.
    assert_eq!(limited_statuses(port, 3).await, [200, 200, 429]);

    let write = |protect: &str| {
        std::fs::write(
            &e.edge.config_path,
            e.setup.config(e.up.addr(), protect, "block"),
        )
        .unwrap()
    };
    // Burst 4: a fresh limiter (per-client state starts over) enforcing the new limit.
    write(&LIMITS.replace("burst = 2", "burst = 4"));
    e.edge.signal("HUP");
    e.edge
        .wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
    assert_eq!(limited_statuses(port, 5).await, [200, 200, 200, 200, 429]);

    // A limit for a route that does not exist: refused, naming the field.
    write(&format!(
        "{}[protect.rate_limit.routes.nosuch]\nrequests = 1\n",
        LIMITS.replace("burst = 2", "burst = 100")
    ));
    e.edge.signal("HUP");
    e.edge
        .wait_stderr_within("config reload refused", 1, RELOAD_WAIT);
    e.edge.wait_stderr("rate_limit.routes.nosuch", 1);
    // A setting bound at start: refused, naming it.
    write(&format!(
        "{LIMITS}[protect.h2]\nmax_concurrent_streams = 7\n"
    ));
    e.edge.signal("HUP");
    e.edge
        .wait_stderr_within("config reload refused", 2, RELOAD_WAIT);
    e.edge
        .wait_stderr("protect.h2.max_concurrent_streams is bound at start", 1);
    // The burst-4 limiter keeps running with its state: still limited.
    assert_eq!(limited_statuses(port, 1).await, [429]);
    assert_eq!(
        e.metric("rampart_config_reloads_total{result=\"error\",what=\"config\"}")
            .await,
        2
    );
}

// ---- limits -----------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_alerts() {
    let hook = Webhook::start().await;
    let protect = format!(
        "{LIMITS}[protect.alerts]\nwebhook_url = \"http://{}/alert\"\n[protect.alerts.rules.rate_limit]\nthreshold = 1\nwindow_secs = 60\ncooldown_secs = 60\n",
        hook.addr
    );
    let e = start_with(&protect, "block").await;
    for _ in 0..2 {
        assert_eq!(
            send(e.setup.port, &get_req("limited.test", "/"))
                .await
                .status,
            200
        );
    }
    let r = send(e.setup.port, &get_req("limited.test", "/")).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(e.up.requests.load(Ordering::SeqCst), 2);
    let id = r.header("x-request-id").unwrap().to_string();
    let line = e.log_line("http.request.id", &id);
    assert_eq!(line["rampart.denial.reason"], "rate_limit");
    assert_eq!(line["rampart.limit.scope"], "local");
    assert_eq!(e.denials("rate_limit", "limited", "none").await, 1);
    let alert = hook.wait().await;
    assert!(alert.contains("rate_limit"), "{alert}");
}

#[tokio::test]
async fn load_shedding_answers_503() {
    let protect = format!("{LIMITS}[protect.shed]\nmax_in_flight = 1\n");
    let e = start_with(&protect, "block").await;
    let port = e.setup.port;
    let slow = tokio::spawn(async move { send(port, &get_req("app.test", "/slow")).await });
    while e.up.requests.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = send(port, &get_req("app.test", "/")).await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(e.denials("load_shed", "app", "none").await, 1);
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(
        e.log_line("http.request.id", &id)["rampart.denial.reason"],
        "load_shed"
    );
}

/// Holds two kept-alive connections, each proven admitted by a served request (the readiness
/// probe's connection may still hold a slot for a moment: retry until both are in).
async fn hold_two(port: u16) -> Vec<TcpStream> {
    let keep = |port: u16| async move {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        let ok = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .is_ok_and(|r| r.is_ok())
            && &buf == b"HTTP/1.1 200";
        (s, ok)
    };
    for _ in 0..100 {
        let (a, a_ok) = keep(port).await;
        let (b, b_ok) = keep(port).await;
        if a_ok && b_ok {
            return vec![a, b];
        }
        drop((a, b));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("two connections under a cap of 2 were never both served");
}

/// With two connections held, a third is closed before any byte is read: an event line and
/// one more `reason` denial, nothing forwarded.
async fn third_connection_refused(protect: &str, reason: &str) {
    let e = start_with(protect, "block").await;
    let _held = hold_two(e.setup.port).await;
    let upstream_before = e.up.requests.load(Ordering::SeqCst);
    let before = e.denials(reason, "none", "none").await;
    let r = send(e.setup.port, &get_req("app.test", "/")).await;
    assert_eq!(r.status, 0, "third connection closed without a response");
    assert_eq!(e.up.requests.load(Ordering::SeqCst), upstream_before);
    let line = e.log_line("rampart.denial.reason", reason);
    assert_eq!(line["event"], "rampart.denial");
    assert_eq!(e.denials(reason, "none", "none").await, before + 1);
}

#[tokio::test]
async fn per_ip_connection_cap_refuses_before_reading_and_logs_an_event() {
    let protect =
        "[protect.connections]\nmax_per_ip = 2\nnew_per_ip = { requests = 1000, burst = 1000 }\n";
    third_connection_refused(protect, "conn_cap_per_ip").await;
}

#[tokio::test]
async fn global_connection_cap_refuses_before_reading_and_logs_an_event() {
    let protect = "[protect.connections]\nmax_connections = 2\nnew_per_ip = { requests = 1000, burst = 1000 }\n";
    third_connection_refused(protect, "conn_cap_global").await;
}

#[tokio::test]
async fn new_connection_rate_refuses_before_reading_and_logs_an_event() {
    // Burst 2: the two held connections spend it (the edge no longer probes its own listeners
    // to become ready: it binds them itself).
    let protect =
        "[protect.connections]\nnew_per_ip = { requests = 1, per_seconds = 60, burst = 2 }\n";
    third_connection_refused(protect, "conn_rate").await;
}

/// Waits until `cond` holds for the value of the metric `series` (10 s at most).
async fn wait_metric(e: &Running, series: &str, cond: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = e.metric(series).await;
        if cond(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{series} stuck at {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True if the edge closed `s` (EOF or reset, after whatever it wrote) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = Vec::new();
    tokio::time::timeout(wait, s.read_to_end(&mut buf))
        .await
        .is_ok()
}

const HELD: &str = "rampart_active_connections{listener=\"plain\"}";

/// Opens `n` connections one by one, each sending `bytes` and then stalling, each proven to
/// have reached the edge (the open-connections gauge counts it) before the next.
async fn open_stalled(e: &Running, n: u64, bytes: &[u8]) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for i in 1..=n {
        let mut s = TcpStream::connect(("127.0.0.1", e.setup.port))
            .await
            .unwrap();
        s.write_all(bytes).await.unwrap();
        wait_metric(e, HELD, |v| v == i).await;
        held.push(s);
    }
    held
}

/// A slowloris from the same address as real clients: at the per-IP cap of 8, all held by
/// stalled connections, a normal request is still served; the oldest stalled connection is
/// closed to make room, the edge never holds more than 8, and the eviction is an event line
/// and a `conn_evicted_stalled` denial.
#[tokio::test]
async fn at_the_per_ip_cap_the_oldest_stalled_connection_is_evicted_for_a_new_one() {
    let protect = "[protect.connections]\nmax_per_ip = 8\nnew_per_ip = { requests = 1000, burst = 1000 }\n[protect.slow_clients]\nheader_timeout_secs = 60\n";
    let e = start_with(protect, "block").await;
    wait_metric(&e, HELD, |v| v == 0).await;
    let mut stalled = open_stalled(&e, 8, b"GET / HTTP/1.1\r\nHost: app.test\r\n").await;
    let oldest_port = stalled[0].local_addr().unwrap().port();
    let before = e.denials("conn_evicted_stalled", "none", "none").await;

    let r = send(e.setup.port, &get_req("app.test", "/")).await;
    assert_eq!(r.status, 200, "a normal request at the cap was not served");
    assert_eq!(e.up.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        e.denials("conn_evicted_stalled", "none", "none").await,
        before + 1
    );
    assert!(
        closed_within(&mut stalled[0], Duration::from_secs(5)).await,
        "the oldest stalled connection was not closed"
    );
    for s in &mut stalled[1..] {
        assert!(
            !closed_within(s, Duration::from_millis(100)).await,
            "only the oldest goes"
        );
    }
    // The served request closed (Connection: close): 7 stalled ones remain, never above 8.
    assert_eq!(wait_metric(&e, HELD, |v| v <= 7).await, 7);
    assert_eq!(e.denials("conn_cap_per_ip", "none", "none").await, 0);
    let line = e.log_line("rampart.denial.reason", "conn_evicted_stalled");
    assert_eq!(line["event"], "rampart.denial");
    assert_eq!(line["client.port"], oldest_port);
    let detail = line["rampart.denial.detail"].as_str().unwrap();
    assert!(
        detail.contains("cap 8") && detail.contains("request head"),
        "{detail}"
    );
}

/// A body trickled below the minimum rate counts as stalled too (a slow-body attack), long
/// before the body-rate grace period would cut it off.
#[tokio::test]
async fn a_body_behind_the_minimum_rate_is_evicted_at_the_per_ip_cap() {
    let protect = "[protect.connections]\nmax_per_ip = 2\nnew_per_ip = { requests = 1000, burst = 1000 }\n[protect.slow_clients]\nmin_body_rate = 1024\nbody_rate_grace_secs = 30\n";
    let e = start_with(protect, "block").await;
    wait_metric(&e, HELD, |v| v == 0).await;
    let head =
        b"POST /submit HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\n0123456789";
    let mut slow = open_stalled(&e, 2, head).await;
    // A body counts as stalled once the edge has waited on it (its first read of the body came
    // back empty), a moment after the head: until then the cap refuses, so poll.
    let mut tries = 0;
    while send(e.setup.port, &get_req("app.test", "/")).await.status != 200 {
        tries += 1;
        assert!(tries < 100, "a normal request at the cap was never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed_within(&mut slow[0], Duration::from_secs(5)).await);
    assert!(!closed_within(&mut slow[1], Duration::from_millis(100)).await);
    let line = e.log_line("rampart.denial.reason", "conn_evicted_stalled");
    let detail = line["rampart.denial.detail"].as_str().unwrap();
    assert!(detail.contains("body below the minimum rate"), "{detail}");
    assert_eq!(e.denials("conn_evicted_stalled", "none", "none").await, 1);
}

#[tokio::test]
async fn header_deadline_answers_408_closes_and_logs_an_event() {
    let e = start().await;
    let mut s = TcpStream::connect(("127.0.0.1", e.setup.port))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    // Waits on the edge's answer and close (the deadline is 1 s).
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed by the 1 s deadline"
    );
    let r = parse_response(&buf);
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&buf));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("server").is_none(), "{r:?}");
    assert_eq!(r.body, "408 Request Timeout\n");
    e.up.saw_nothing();
    let line = e.log_line("rampart.denial.reason", "header_timeout");
    assert_eq!(line["event"], "rampart.denial");
    assert_eq!(e.denials("header_timeout", "none", "none").await, 1);
}

// ---- bad input at every limit: one test per case, nothing forwarded ----------------------

#[tokio::test]
async fn huge_headers_are_431() {
    let e = start().await;
    let big = "a".repeat(40 * 1024);
    let req =
        format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let r = e.refused(req.as_bytes(), 431).await;
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(
        e.log_line("http.request.id", &id)["rampart.denial.reason"],
        "header_too_large"
    );
    assert_eq!(e.denials("header_too_large", "app", "none").await, 1);
}

#[tokio::test]
async fn too_many_headers_are_431() {
    let e = start().await;
    let mut req = String::from("GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n");
    for i in 0..150 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    e.refused(req.as_bytes(), 431).await;
    assert_eq!(e.denials("too_many_headers", "app", "none").await, 1);
    e.log_line("rampart.denial.reason", "too_many_headers");
}

#[tokio::test]
async fn long_uri_is_414() {
    let e = start().await;
    let path = format!("/{}", "a".repeat(10 * 1024));
    e.refused(&get_req("app.test", &path), 414).await;
    assert_eq!(e.denials("uri_too_long", "app", "none").await, 1);
    e.log_line("rampart.denial.reason", "uri_too_long");
}

#[tokio::test]
async fn endless_chunked_body_is_413() {
    let e = start().await;
    let mut s = TcpStream::connect(("127.0.0.1", e.setup.port))
        .await
        .unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: tight.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("64\r\n{}\r\n", "a".repeat(100));
    // Bounded: at most 1000 chunks (100 KiB) or until the edge stops reading.
    for _ in 0..1000 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        if e.edge.path("access.log").exists()
            && std::fs::read_to_string(e.edge.path("access.log"))
                .unwrap_or_default()
                .contains("body_too_large")
        {
            break;
        }
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert_eq!(parse_response(&buf).status, 413);
    e.up.saw_nothing();
    assert_eq!(e.denials("body_too_large", "tight", "none").await, 1);
}

#[tokio::test]
async fn invalid_chunk_size_is_400() {
    let e = start().await;
    let req = b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    e.refused(req, 400).await;
    assert_eq!(e.denials("bad_request", "none", "none").await, 1);
    e.log_line("rampart.denial.reason", "bad_chunk_size");
    assert_eq!(e.malformed("bad_chunk_size").await, 1);
}

// ---- Framing as sent (the hardened stream reads the raw bytes) ------------------------------

const CHUNKED_HEAD: &str = "POST /submit HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked(host: &str, body: &[u8]) -> Vec<u8> {
    let mut r = CHUNKED_HEAD.replace("{host}", host).into_bytes();
    r.extend_from_slice(body);
    r
}

/// Sends `first`, waits until the edge has read it, then sends `rest`; reads the answer.
async fn send_in_two(port: u16, first: &[u8], rest: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(first).await.unwrap();
    // The edge holds the head until the first chunk line: nothing comes back meanwhile.
    let mut probe = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), s.peek(&mut probe)).await;
    assert!(early.is_err(), "the edge answered before the body came");
    let _ = s.write_all(rest).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

#[tokio::test]
async fn space_or_tab_in_the_target_is_400_never_re_encoded() {
    let e = start().await;
    for target in ["/a /b", "/a\t/b", "/a /b?c d"] {
        let r = e.refused(&get_req("app.test", target), 400).await;
        assert!(r.header("x-request-id").is_some());
    }
    e.log_line("rampart.denial.reason", "space_in_target");
    assert_eq!(e.malformed("space_in_target").await, 3);
    assert_eq!(e.denials("bad_request", "none", "none").await, 3);
    // Behind a good request on the same connection, a malformed one does not break the good
    // one, and never goes up (Pingora does not serve pipelined requests: the connection closes).
    let mut two = b"GET /ok HTTP/1.1\r\nHost: app.test\r\n\r\n".to_vec();
    two.extend_from_slice(&get_req("app.test", "/a /b"));
    let mut s = TcpStream::connect(("127.0.0.1", e.setup.port))
        .await
        .unwrap();
    s.write_all(&two).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
    assert_eq!(
        e.up.requests.load(Ordering::SeqCst),
        1,
        "only the good one went up"
    );
}

#[tokio::test]
async fn bare_lf_after_a_chunk_extension_is_400_at_once() {
    let e = start().await;
    for host in ["app.test", "detect.test", "off.test"] {
        let started = Instant::now();
        e.refused(&chunked(host, b"5;a\nhello\r\n0\r\n\r\n"), 400)
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{host}: {:?}",
            started.elapsed()
        );
    }
    e.log_line("rampart.denial.reason", "bare_lf_in_chunk");
    assert_eq!(e.malformed("bare_lf_in_chunk").await, 3);
}

#[tokio::test]
async fn chunk_sizes_with_leading_zeros_are_accepted_and_forwarded_normalised() {
    let e = start().await;
    let body = b"005\r\nhello\r\n00000000000000000000006\r\n world\r\n000\r\n\r\n";
    for host in ["app.test", "detect.test", "off.test"] {
        let r = send(e.setup.port, &chunked(host, body)).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    let bodies = e.up.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3);
    for b in bodies {
        assert_eq!(b, b"hello world");
    }
}

/// Chunked framing broken in the first chunk line or right after it: with the WAF off (body
/// streamed) or on, in one write or with the head first, refused before the head leaves.
#[tokio::test]
async fn broken_first_chunks_are_refused_before_the_head_leaves_in_every_body_mode() {
    let e = start().await;
    let cases: [(&[u8], &str); 9] = [
        (b"zz\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        (b"\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        (b"5\nhello\r\n0\r\n\r\n", "bare_lf_in_chunk"),
        (b"5\rhello\r\n0\r\n\r\n", "bad_chunk_size"),
        (b"5 5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        (b"3\r\nhello\r\n0\r\n\r\n", "bad_chunk_terminator"),
        (b"5\r\nhello\n0\r\n\r\n", "bare_lf_in_chunk"),
        (
            b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            "chunk_size_too_large",
        ),
    ];
    let mut refused = 0;
    for (body, reason) in cases {
        for host in ["off.test", "detect.test", "app.test"] {
            let r = send(e.setup.port, &chunked(host, body)).await;
            assert_eq!(r.status, 400, "{host} {reason}: {}", r.body);
            let head = chunked(host, b"");
            let r = send_in_two(e.setup.port, &head, body).await;
            assert_eq!(r.status, 400, "{host} {reason} (head first): {}", r.body);
            refused += 2;
        }
        assert!(e.malformed(reason).await >= 1, "{reason} not counted");
    }
    e.up.saw_nothing();
    let total: u64 = e.metric_sum("rampart_malformed_requests_total").await;
    assert_eq!(total, refused);
    // The same head followed by a good first chunk streams on.
    let r = send_in_two(
        e.setup.port,
        &chunked("off.test", b""),
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap().as_slice(), [b"hello".to_vec()]);
}

#[tokio::test]
async fn transfer_encoding_not_ending_in_one_chunked_is_400() {
    let e = start().await;
    for te in ["chunked, chunked", "gzip", "chunked, gzip"] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: off.test\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
        );
        e.refused(req.as_bytes(), 400).await;
    }
    assert_eq!(e.malformed("bad_transfer_encoding").await, 3);
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let e = start().await;
    let req = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    e.refused(req, 400).await;
    assert_eq!(
        e.log_line("rampart.denial.reason", "te_and_cl")["http.response.status_code"],
        400
    );
    assert_eq!(e.denials("bad_request", "none", "none").await, 1);
}

#[tokio::test]
async fn duplicate_content_length_is_400() {
    let e = start().await;
    let req = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    e.refused(req, 400).await;
    assert!(e.denials("bad_request", "none", "none").await >= 1);
}

#[tokio::test]
async fn two_equal_content_lengths_are_400_and_not_forwarded() {
    let e = start().await;
    let req =
        b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    e.refused(req, 400).await;
    e.log_line("rampart.denial.reason", "duplicate_content_length");
    assert_eq!(e.denials("bad_request", "none", "none").await, 1);
}

#[tokio::test]
async fn host_with_two_ports_is_400_and_not_forwarded() {
    let e = start().await;
    e.refused(&get_req("app.test:80:81", "/"), 400).await;
    e.log_line("rampart.denial.reason", "malformed_host");
}

#[tokio::test]
async fn obs_fold_is_400() {
    let e = start().await;
    let req = b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n  b\r\n\r\n";
    e.refused(req, 400).await;
    assert!(e.denials("bad_request", "none", "none").await >= 1);
    e.log_line("rampart.denial.reason", "unparsable_request");
}

#[tokio::test]
async fn nul_in_header_value_is_400() {
    let e = start().await;
    let req = b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Nul: a\0b\r\n\r\n";
    e.refused(req, 400).await;
    assert!(e.denials("bad_request", "none", "none").await >= 1);
}

#[tokio::test]
async fn bare_cr_in_header_value_is_400() {
    let e = start().await;
    let req = b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Cr: a\rInjected: b\r\n\r\n";
    e.refused(req, 400).await;
    assert!(e.denials("bad_request", "none", "none").await >= 1);
}

#[tokio::test]
async fn absolute_form_to_another_host_is_400() {
    let e = start().await;
    let req = b"GET http://evil.test/ HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let r = e.refused(req, 400).await;
    // Pingora's parser or our host check refuses it: either way logged as an edge denial.
    let line = e.log_line("http.response.status_code", "400");
    assert_eq!(line["rampart.denial.by"], "edge", "{line} {}", r.body);
    assert_eq!(e.denials("bad_request", "none", "none").await, 1);
}

#[tokio::test]
async fn connect_is_405() {
    let e = start().await;
    let req = b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n";
    e.refused(req, 405).await;
    e.log_line("rampart.denial.reason", "connect_method");
    assert_eq!(e.denials("bad_request", "none", "none").await, 1);
}

/// Receives alert POSTs.
struct Webhook {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    async fn start() -> Webhook {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let store = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    // Read the head and the Content-Length body.
                    loop {
                        let Ok(n) = s.read(&mut tmp).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&tmp[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                store.lock().unwrap().push(body.to_string());
                                let _ = s
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Webhook { addr, bodies }
    }

    async fn wait(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(b) = self.bodies.lock().unwrap().first() {
                return b.clone();
            }
            assert!(Instant::now() < deadline, "no webhook call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn slow_body_is_cut_off_by_the_minimum_rate_and_logged() {
    let protect = LIMITS.replace(
        "header_timeout_secs = 1",
        "header_timeout_secs = 5\nmin_body_rate = 1000\nbody_rate_grace_secs = 1",
    );
    let e = start_with(&protect, "block").await;
    let mut s = TcpStream::connect(("127.0.0.1", e.setup.port))
        .await
        .unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\nabc")
        .await
        .unwrap();
    let started = Instant::now();
    // Trickle a byte every 200 ms (5 B/s, far under 1000 B/s); bounded to 50 writes.
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if s.write_all(b"a").await.is_err() {
            break;
        }
        if std::fs::read_to_string(e.edge.path("access.log"))
            .unwrap_or_default()
            .contains("\"body_rate\"")
        {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "cut off by the rate guard"
    );
    e.up.saw_nothing();
    let line = e.log_line("rampart.denial.reason", "body_rate");
    assert_eq!(line["event"], "rampart.denial");
    assert_eq!(e.denials("body_rate", "none", "none").await, 1);
}

/// One HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn h2_rapid_reset_closes_the_connection_and_logs_an_event() {
    install_provider();
    let up = Counting::start().await;
    let pki = Pki::new("h2-reset");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", &["app.test"]);
    let b = Basic::new();
    let protect = format!("{GENEROUS_LIMITS}[protect.h2]\nmax_resets_per_sec = 10\n");
    let edge = Edge::start(&b.config_with(up.addr(), "", &protect), dir);
    let cfg = client_config(&pki.ca_pem, &[&rustls::version::TLS13], &[b"h2"]);
    let mut s = handshake(edge.port("https"), "app.test", cfg)
        .await
        .unwrap();
    let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    wire.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
                                           // HPACK: :method GET, :scheme https, :path /, :authority app.test (literal, indexed name).
    let mut block = vec![0x82, 0x87, 0x84, 0x41, 8];
    block.extend_from_slice(b"app.test");
    for i in 0..100u32 {
        let id = 2 * i + 1;
        wire.extend(h2_frame(0x1, 0x5, id, &block)); // HEADERS, END_STREAM | END_HEADERS
        wire.extend(h2_frame(0x3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
    }
    let _ = s.write_all(&wire).await;
    let _ = s.flush().await;
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "connection not closed");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let lines = edge.access_lines(1);
        if let Some(l) = lines
            .into_iter()
            .find(|l| l["rampart.denial.reason"] == "h2_reset_flood")
        {
            break l;
        }
        assert!(Instant::now() < deadline, "no h2_reset_flood event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(line["event"], "rampart.denial");
    let m = admin(edge.admin(), "/metrics").await;
    assert!(
        m.body.contains(
            "rampart_denials_total{family=\"none\",reason=\"h2_reset_flood\",route=\"none\"} 1"
        ),
        "{}",
        m.body
    );
}

#[tokio::test]
async fn waf_blocks_over_the_threshold_call_the_webhook() {
    let hook = Webhook::start().await;
    let protect = format!(
        "{LIMITS}[protect.alerts]\nwebhook_url = \"http://{}/alert\"\n[protect.alerts.rules.waf_block]\nthreshold = 2\nwindow_secs = 60\ncooldown_secs = 60\n",
        hook.addr
    );
    let e = start_with(&protect, "block").await;
    for _ in 0..2 {
        let r = send(e.setup.port, &get_req("app.test", "/?q=1%27%20OR%201=1--")).await;
        assert_eq!(r.status, 403);
    }
    let alert = hook.wait().await;
    assert!(alert.contains("waf_block"), "{alert}");
    e.up.saw_nothing();
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_local_limits_and_alerts() {
    let hook = Webhook::start().await;
    let dead = RefusedPort::new(); // nothing listens there
    let protect = format!(
        "{LIMITS}[protect.fleet]\naddress = \"127.0.0.1:{}\"\n[protect.fleet.routes.limited]\nrequests = 1000\n[protect.alerts]\nwebhook_url = \"http://{}/alert\"\n",
        dead.port, hook.addr
    );
    let e = start_with(&protect, "block").await;
    // Never fail open silently, never block everyone: local limits (burst 2) still apply.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            send(e.setup.port, &get_req("limited.test", "/"))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let alert = hook.wait().await;
    assert!(alert.contains("redis_fallback"), "{alert}");
    assert_eq!(
        e.metric("rampart_ratelimit_redis_fallback").await,
        1,
        "fallback gauge"
    );
}

#[tokio::test]
async fn chunked_body_after_100_continue_is_inspected_whole_and_forwarded() {
    let e = start().await;
    let mut req =
        b"POST /upload HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    let mut body = Vec::new();
    for i in 0..6u8 {
        let chunk = vec![b'a' + i; 16 * 1024];
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
        body.extend_from_slice(&chunk);
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = send(e.setup.port, &req).await;
    // The interim 100 Continue comes first; the final answer is the upstream's.
    assert_eq!(r.status, 100, "{}", r.body);
    assert!(r.body.contains("HTTP/1.1 200"), "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap()[0], body);
    // 96 KiB: under the 128 KiB inspect_limit, so inspected whole (not partially).
    let line = e.log_line("http.route", "app");
    assert!(line.get("rampart.waf.body").is_none(), "{line}");
    assert_eq!(line["rampart.waf.action"], "pass");
}

/// A chunked request for `host` carrying `body` in chunks of `chunk` bytes.
fn chunked_req(host: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(chunk) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// A benign form body of exactly `len` bytes.
fn form_body(len: usize) -> Vec<u8> {
    let mut body = b"data=".to_vec();
    body.extend((0..len - body.len()).map(|i| b'a' + (i % 26) as u8));
    body
}

const BODY_ATTACK: &[u8] = b"&q=1' UNION SELECT password FROM users--&x=";

/// A 100 KiB form body with an SQL injection starting at byte 70,000.
fn body_with_late_attack() -> Vec<u8> {
    let mut body = form_body(70_000);
    body.extend_from_slice(BODY_ATTACK);
    body.extend(std::iter::repeat_n(b'b', 100 * 1024 - body.len()));
    body
}

#[tokio::test]
async fn chunked_attack_past_64k_is_blocked_before_anything_is_forwarded() {
    let e = start().await;
    let r = send(
        e.setup.port,
        &chunked_req("app.test", &body_with_late_attack(), 8 * 1024),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    e.up.saw_nothing();
    let line = e.log_line("http.route", "app");
    assert_eq!(line["rampart.waf.action"], "block");
    assert!(line.get("rampart.waf.body").is_none(), "{line}");
}

#[tokio::test]
async fn chunked_100k_body_is_inspected_whole_and_arrives_byte_exact() {
    let e = start().await;
    let body = form_body(100 * 1024);
    // Odd chunk sizes: reads don't line up with Pingora's 64 KiB window.
    let r = send(e.setup.port, &chunked_req("app.test", &body, 7_001)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap()[0], body);
    let line = e.log_line("http.route", "app");
    assert_eq!(line["rampart.waf.action"], "pass");
    assert!(line.get("rampart.waf.body").is_none(), "{line}");
    assert_eq!(line["http.request.body.size"], 100 * 1024);
}

#[tokio::test]
async fn chunked_1mib_body_is_inspected_in_part_and_streams_byte_exact_where_allowed() {
    let e = start().await;
    let body = form_body(1024 * 1024);
    // Route `bulk` passes what it could not inspect (`insecure_pass_uninspected_body`).
    let r = send(e.setup.port, &chunked_req("bulk.test", &body, 16 * 1024)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.up.bodies.lock().unwrap()[0], body);
    let line = e.log_line("http.route", "bulk");
    assert_eq!(line["rampart.waf.body"], "partial");
    assert_eq!(line["rampart.waf.action"], "pass");
    assert_eq!(e.uninspected("bulk", "inspect_limit", "passed").await, 1);
}

// ---- Bodies the WAF cannot inspect whole (#14 "Size") ------------------------------------

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A benign form or JSON body of `total` bytes with an SQL injection (a field of its own)
/// starting near byte `at`.
fn body_with_attack_at(content_type: &str, at: usize, total: usize) -> Vec<u8> {
    let filler = |n: usize| (0..n).map(|i| b'a' + (i % 26) as u8);
    let (head, attack, tail): (&[u8], &[u8], &[u8]) = if content_type == JSON {
        (
            b"{\"a\":\"",
            b"\",\"q\":\"1' UNION SELECT password FROM users--\",\"b\":\"",
            b"\"}",
        )
    } else {
        (b"data=", BODY_ATTACK, b"")
    };
    let mut body = head.to_vec();
    body.extend(filler(at.saturating_sub(head.len())));
    body.extend_from_slice(attack);
    let rest = total.saturating_sub(body.len() + tail.len());
    body.extend(filler(rest));
    body.extend_from_slice(tail);
    body
}

/// 130 KiB of benign filler, then the attack: past the default 128 KiB inspect_limit.
fn late_attacks() -> [(&'static str, Vec<u8>); 2] {
    [FORM, JSON].map(|t| (t, body_with_attack_at(t, 130 * 1024, 131 * 1024)))
}

#[tokio::test]
async fn attack_past_inspect_limit_is_413_by_default_and_never_forwarded() {
    let e = start().await;
    for (content_type, body) in late_attacks() {
        // Content-Length over the limit (refused unread) and chunked (refused once the
        // inspected part is read): neither reaches the upstream.
        let r = e
            .refused(&post_typed("app.test", content_type, &body), 413)
            .await;
        let id = r.header("x-request-id").unwrap().to_string();
        let line = e.log_line("http.request.id", &id);
        assert_eq!(line["rampart.denial.reason"], "body_uninspected", "{line}");
        assert_eq!(line["rampart.waf.uninspected"], "inspect_limit");
        let chunked = chunked_req("app.test", &body, 16 * 1024);
        e.refused(&chunked, 413).await;
    }
    assert_eq!(e.denials("body_uninspected", "app", "none").await, 4);
    assert_eq!(e.uninspected("app", "inspect_limit", "refused").await, 4);
}

#[tokio::test]
async fn attack_past_inspect_limit_is_forwarded_only_where_the_route_says_so() {
    let e = start().await;
    let mut sent = Vec::new();
    for (content_type, body) in late_attacks() {
        let r = send(e.setup.port, &post_typed("bulk.test", content_type, &body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        sent.push(body);
    }
    assert_eq!(*e.up.bodies.lock().unwrap(), sent);
    assert_eq!(e.uninspected("bulk", "inspect_limit", "passed").await, 2);
    let line = e.log_line("http.route", "bulk");
    assert_eq!(line["rampart.waf.uninspected_action"], "passed");
    assert_eq!(e.denials("body_uninspected", "bulk", "none").await, 0);
    // Detect mode refuses nothing: the uninspected tail is logged and counted as `detect`.
    let (content_type, body) = &late_attacks()[0];
    let r = send(e.setup.port, &post_typed("detect.test", content_type, body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.uninspected("detect", "inspect_limit", "detect").await, 1);
}

#[tokio::test]
async fn attack_anywhere_within_inspect_limit_is_403() {
    let e = start().await;
    let total = 128 * 1024;
    // Start, either side of the engine's 16 KiB value windows, middle, last bytes.
    let offsets = [0, 16 * 1024 - 20, 16 * 1024 + 5, 64 * 1024, total - 200];
    let mut n = 0;
    for content_type in [FORM, JSON] {
        for at in offsets {
            let body = body_with_attack_at(content_type, at, total);
            assert!(body.len() <= total, "{}", body.len());
            let r = send(e.setup.port, &post_typed("app.test", content_type, &body)).await;
            assert_eq!(r.status, 403, "{content_type} attack at {at}: {}", r.body);
            n += 1;
        }
    }
    e.up.saw_nothing();
    assert_eq!(e.denials("waf_block", "app", "sqli").await, n);
    assert_eq!(e.uninspected("app", "inspect_limit", "refused").await, 0);
}

#[tokio::test]
async fn fields_past_the_waf_field_limit_are_413_unless_passed() {
    let e = start().await;
    // 1,100 benign JSON leaves: the WAF inspects 1,024 fields, the rest would pass unread.
    let items: Vec<String> = (0..1100)
        .map(|i| format!("\"Blue shoe {i}, size 42\""))
        .collect();
    let body = format!("{{\"items\":[{}]}}", items.join(",")).into_bytes();
    let r = e.refused(&post_typed("app.test", JSON, &body), 413).await;
    let id = r.header("x-request-id").unwrap().to_string();
    let line = e.log_line("http.request.id", &id);
    assert_eq!(line["rampart.denial.reason"], "body_uninspected");
    assert_eq!(line["rampart.waf.uninspected"], "waf_limits");
    assert_eq!(e.uninspected("app", "waf_limits", "refused").await, 1);
    let r = send(e.setup.port, &post_typed("bulk.test", JSON, &body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.uninspected("bulk", "waf_limits", "passed").await, 1);
}

#[tokio::test]
async fn chunked_body_growing_past_max_body_while_streaming_is_413() {
    let e = start().await;
    // Route `stream`: 1 KiB inspected, then streaming (insecure_pass_uninspected_body); 8 KiB
    // max.
    let r = send(
        e.setup.port,
        &chunked_req("stream.test", &form_body(20 * 1024), 1024),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(e.up.requests.load(Ordering::SeqCst), 0, "never completed");
    let line = e.log_line("rampart.denial.reason", "body_too_large");
    assert_eq!(line["http.route"], "stream");
    assert_eq!(e.denials("body_too_large", "stream", "none").await, 1);
}

/// POSTs `body` over HTTP/2 (TLS, no content-length) and returns the response status.
async fn h2_post(port: u16, ca_pem: &str, body: &[u8]) -> u16 {
    let cfg = client_config(ca_pem, &[&rustls::version::TLS13], &[b"h2"]);
    let tls = handshake(port, "app.test", cfg).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("https://app.test/upload")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .unwrap();
    let (resp, mut stream) = client.send_request(req, false).unwrap();
    let mut rest = body;
    while !rest.is_empty() {
        stream.reserve_capacity(rest.len().min(16 * 1024));
        let cap = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(cap)) => cap,
            _ => break, // the edge answered and reset the stream
        };
        let (now, later) = rest.split_at(cap.min(rest.len()));
        if stream
            .send_data(bytes::Bytes::copy_from_slice(now), later.is_empty())
            .is_err()
        {
            break;
        }
        rest = later;
    }
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .unwrap()
        .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn h2_body_without_length_is_inspected_whole_before_forwarding() {
    install_provider();
    let up = Counting::start().await;
    let pki = Pki::new("h2-body");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", &["app.test"]);
    let b = Basic::new();
    let edge = Edge::start(&b.config_with(up.addr(), "", GENEROUS_LIMITS), dir);
    // An attack at byte 70,000 of 100 KiB: refused, nothing forwarded.
    assert_eq!(
        h2_post(edge.port("https"), &pki.ca_pem, &body_with_late_attack()).await,
        403
    );
    up.saw_nothing();
    // A benign 100 KiB body: forwarded byte-exact, inspected whole.
    let body = form_body(100 * 1024);
    assert_eq!(h2_post(edge.port("https"), &pki.ca_pem, &body).await, 200);
    assert_eq!(up.bodies.lock().unwrap()[0], body);
    let lines = edge.access_lines(2);
    let ok = lines
        .iter()
        .find(|l| l["http.response.status_code"] == 200)
        .unwrap();
    assert_eq!(ok["network.protocol.version"], "2", "{ok}");
    assert_eq!(ok["rampart.waf.action"], "pass");
    assert!(ok.get("rampart.waf.body").is_none(), "{ok}");
}

#[tokio::test]
async fn body_attack_after_100_continue_still_gets_the_403() {
    let e = start().await;
    let body = b"q=1' UNION SELECT password FROM users--";
    let mut req = format!(
        "POST /submit HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let r = send(e.setup.port, &req).await;
    assert_eq!(r.status, 100);
    assert!(r.body.contains("HTTP/1.1 403"), "{}", r.body);
    e.up.saw_nothing();
}
