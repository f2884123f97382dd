#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Short scenarios against a tiny in-test HTTP server on loopback; the
//! report's numbers are checked against what the server saw.

use rampart_loadtest::http::Request;
use rampart_loadtest::runner::Live;
use rampart_loadtest::{mix, run, LoadMode, Plan, Scenario, Target};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const FLOODER: &str = "127.0.0.2";
const SLOW: &str = "127.0.0.3";
const LEGIT: &str = "127.0.0.10";

/// What the server saw, by source address.
#[derive(Default)]
struct Seen {
    requests: Mutex<HashMap<IpAddr, u64>>,
    open_from_slow: AtomicU64,
    max_open_from_slow: AtomicU64,
}

/// A keep-alive HTTP/1.1 server: the flooder gets 429 after 10 requests,
/// paths containing `%27` get 403, a started request head must be complete
/// within 300 ms (408 and close), and SLOW may hold at most 5 connections.
async fn server() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, peer)) = listener.accept().await {
            let seen = s.clone();
            tokio::spawn(async move {
                let slow = peer.ip().to_string() == SLOW;
                if slow {
                    let open = seen.open_from_slow.fetch_add(1, Ordering::SeqCst) + 1;
                    if open > 5 {
                        seen.open_from_slow.fetch_sub(1, Ordering::SeqCst);
                        return; // over the per-IP cap: close at once
                    }
                    seen.max_open_from_slow.fetch_max(open, Ordering::SeqCst);
                }
                let _ = serve(sock, peer.ip(), &seen).await;
                if slow {
                    seen.open_from_slow.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, seen)
}

async fn serve(sock: TcpStream, ip: IpAddr, seen: &Seen) -> std::io::Result<()> {
    let mut io = BufReader::new(sock);
    loop {
        // Idle keep-alive: wait up to 5 s for a request to start, then close
        // silently; once it has started, the whole head must come within
        // 300 ms (slowloris gets 408).
        match tokio::time::timeout(Duration::from_secs(5), io.fill_buf()).await {
            Ok(Ok(buf)) if !buf.is_empty() => {}
            _ => return Ok(()),
        }
        let head = tokio::time::timeout(Duration::from_millis(300), read_head(&mut io)).await;
        let (target, len) = match head {
            Ok(Ok(Some(h))) => h,
            Ok(_) => return Ok(()),
            Err(_) => {
                io.get_mut().write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").await?;
                return Ok(());
            }
        };
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        let n = {
            let mut map = seen.requests.lock().unwrap();
            let n = map.entry(ip).or_insert(0);
            *n += 1;
            *n
        };
        let status = if ip.to_string() == FLOODER && n > 10 {
            "429 Too Many Requests"
        } else if target.contains("%27") {
            "403 Forbidden"
        } else {
            "200 OK"
        };
        let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
        io.get_mut().write_all(resp.as_bytes()).await?;
    }
}

async fn read_head(io: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, usize)>> {
    let mut line = String::new();
    if io.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let target = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut len = 0;
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line == "\r\n" {
            return Ok(Some((target, len)));
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn plan(addr: SocketAddr, scenario: Scenario) -> Plan {
    Plan {
        target: Target::parse(&format!("http://{addr}"), None, None).unwrap(),
        scenario,
        duration: Duration::from_millis(1500),
        max_requests: 100_000,
        request_timeout: Duration::from_secs(5),
        max_connections: 8,
        legit_sources: vec![ip(LEGIT)],
        legit_mode: LoadMode::Open { rate: 100.0 },
        legit_requests: mix::benign_mix(),
        attack_sources: vec![ip(FLOODER)],
        attack_rate: 200.0,
        attack_requests: vec![Request::get("/")],
        slowloris_connections: 20,
        slowloris_interval: Duration::from_millis(100),
        change: None,
    }
}

fn seen_from(seen: &Seen, who: &str) -> u64 {
    seen.requests
        .lock()
        .unwrap()
        .get(&ip(who))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn flood_report_matches_what_the_server_saw() {
    let (addr, seen) = server().await;
    let report = run(plan(addr, Scenario::Flood), &Live::default())
        .await
        .unwrap();

    // Open loop: exactly rate × duration requests are scheduled.
    let legit = &report.legit;
    assert_eq!(legit.sent, 150);
    assert_eq!(legit.allowed, 150, "{legit:?}");
    assert_eq!(legit.statuses["200"], 150);
    assert_eq!(legit.success_rate, 1.0);
    assert_eq!(seen_from(&seen, LEGIT), 150);
    let lat = legit.latency_ms.as_ref().unwrap();
    assert!(lat.p50 > 0.0 && lat.p50 <= lat.p90 && lat.p90 <= lat.p99 && lat.p99 <= lat.max);

    let attack = report.attack.as_ref().unwrap();
    assert_eq!(attack.sent, 300);
    assert_eq!(seen_from(&seen, FLOODER), 300, "{attack:?}");
    assert_eq!((attack.allowed, attack.blocked), (10, 290));
    assert_eq!(attack.statuses["429"], 290);
    assert!(report.table().contains("attack"));
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["attack"]["statuses"]["429"], 290);
}

#[tokio::test]
async fn closed_loop_stops_at_max_requests() {
    let (addr, seen) = server().await;
    let mut p = plan(addr, Scenario::Benign);
    p.legit_mode = LoadMode::Closed { concurrency: 4 };
    p.max_requests = 50;
    p.duration = Duration::from_secs(30);
    let report = run(p, &Live::default()).await.unwrap();
    assert_eq!(report.legit.sent, 50);
    assert_eq!(report.legit.allowed, 50);
    assert_eq!(seen_from(&seen, LEGIT), 50);
    assert!(report.duration_secs < 30.0);
    assert!(report.attack.is_none());
}

#[tokio::test]
async fn attack_replays_the_corpus() {
    let (addr, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(
        &corpus,
        concat!(
            r#"{"source":"t","label":"attack","attack_type":"sqli","method":"GET","path":"/s","query":"q=%27or%201=1","headers":null,"body":null}"#,
            "\n",
            r#"{"source":"t","label":"attack","attack_type":"sqli","method":"POST","path":"/f","query":"","headers":{"Content-Type":"application/x-www-form-urlencoded"},"body":"q=%27--"}"#,
            "\n"
        ),
    )
    .unwrap();
    let requests =
        rampart_loadtest::corpus::load(&corpus, rampart_loadtest::corpus::LabelFilter::Attack, 10)
            .unwrap()
            .requests;
    let mut p = plan(addr, Scenario::Attack);
    p.attack_requests = requests;
    p.attack_sources = vec![ip("127.0.0.4")];
    p.duration = Duration::from_millis(500);
    let report = run(p, &Live::default()).await.unwrap();
    let attack = report.attack.unwrap();
    assert_eq!(attack.sent, 100);
    // The GET carries %27 in its target; the POST only in its body.
    assert_eq!(attack.statuses["403"], 50);
    assert_eq!(attack.statuses["200"], 50);
    assert_eq!(seen_from(&seen, "127.0.0.4"), 100);
    assert_eq!(report.legit.success_rate, 1.0);
}

#[tokio::test]
async fn slowloris_is_cut_off_and_legit_traffic_served() {
    let (addr, seen) = server().await;
    let mut p = plan(addr, Scenario::Slowloris);
    p.attack_sources = vec![ip(SLOW)];
    p.legit_mode = LoadMode::Open { rate: 50.0 };
    p.duration = Duration::from_millis(1200);
    let report = run(p, &Live::default()).await.unwrap();
    let slow = report.slowloris.unwrap();
    assert_eq!(report.legit.sent, 60);
    assert_eq!(report.legit.success_rate, 1.0);
    assert!(slow.opened >= 20, "{slow:?}");
    // Over the cap: closed at once; under it: 408 after 300 ms.
    assert!(slow.closed_by_server >= 20, "{slow:?}");
    assert!(slow.header_lines_sent > 0);
    assert!(seen.max_open_from_slow.load(Ordering::SeqCst) <= 5);
    assert_eq!(seen_from(&seen, SLOW), 0, "a slowloris head was completed");
}

#[test]
fn cli_writes_json_and_refuses_non_loopback() {
    let bin = env!("CARGO_BIN_EXE_rampart-loadtest");
    let out = std::process::Command::new(bin)
        .args([
            "--target",
            "http://192.0.2.1:80",
            "--duration",
            "1",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only loopback"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _seen) = rt.block_on(server());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = std::process::Command::new(bin)
        .args([
            "--target",
            &format!("http://{addr}"),
            "--scenario",
            "flood",
            "--duration",
            "1",
        ])
        .args([
            "--legit-rate",
            "40",
            "--legit-sources",
            LEGIT,
            "--attack-sources",
            FLOODER,
            "--attack-rate",
            "30",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("legit") && table.contains("p99 ms"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["scenario"], "flood");
    assert_eq!(v["legit"]["sent"], 40);
    assert_eq!(v["legit"]["allowed"], 40);
    assert_eq!(v["attack"]["sent"], 30);
    assert_eq!(v["attack"]["statuses"]["429"], 20);
}
