//! The `reload` scenario's change driver: while the legit traffic runs, the edge's config file
//! is replaced by each of the given variants in turn (routes, WAF policy, certificates: whatever
//! the variants differ in) and the edge gets a SIGHUP, `reloads` times; each reload is confirmed
//! on the edge's admin `/metrics` (`rampart_config_reloads_total{what="config"}` moving). Then
//! the edge gets a SIGTERM. Requests sent before the SIGTERM are reported as the `legit` class,
//! those sent after it (the drain) apart, so "no failed request until the drain" is one number.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Set at the SIGTERM; shared with the traffic, which records what it sends from then on as the
/// drain and stops [`DRAIN_WINDOW`] later.
pub type Terminated = Arc<OnceLock<Instant>>;

/// How long legit traffic goes on after the drain mark (the SIGTERM is 1 s after it).
pub const DRAIN_WINDOW: Duration = Duration::from_secs(3);

/// Time between marking the drain and sending the SIGTERM.
const SIGTERM_AFTER_MARK: Duration = Duration::from_secs(1);

/// Most time one reload may take to be reported by the edge.
const CONFIRM_WITHIN: Duration = Duration::from_secs(30);

/// What the driver changes and whom it signals.
#[derive(Debug, Clone)]
pub struct ChangePlan {
    /// The edge process.
    pub pid: u32,
    /// The config file the edge runs from; each variant is copied over it (atomically).
    pub config_path: PathBuf,
    /// Config files, used in turn.
    pub variants: Vec<PathBuf>,
    pub reloads: u32,
    /// Time between two reloads.
    pub interval: Duration,
    /// The edge's admin listener, to confirm each reload.
    pub admin: SocketAddr,
    /// Send SIGTERM after the last reload.
    pub sigterm: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChangeReport {
    pub reloads_sent: u32,
    /// Reloads the edge reported applied (`result="ok"`).
    pub reloads_applied: u64,
    /// Reloads the edge reported refused (`result="error"`): a variant it did not accept.
    pub reloads_refused: u64,
    /// Slowest time from SIGHUP to the edge reporting the reload, milliseconds.
    pub max_confirm_ms: f64,
    /// Seconds from the start of the run to the SIGTERM, if sent.
    pub sigterm_at_secs: Option<f64>,
    /// Problems of the driver itself (a signal not delivered, a reload never confirmed).
    pub problems: Vec<String>,
}

/// Reads `rampart_config_reloads_total{what="config",result=...}` (ok, error).
async fn reload_counts(admin: SocketAddr) -> std::io::Result<(u64, u64)> {
    let tcp = tokio::net::TcpStream::connect(admin).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/metrics")
        .header(hyper::header::HOST, "admin")
        .body(Empty::<Bytes>::new())
        .map_err(std::io::Error::other)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let count = |result: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("rampart_config_reloads_total{"))
            .filter(|l| {
                l.contains("what=\"config\"") && l.contains(&format!("result=\"{result}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    Ok((count("ok"), count("error")))
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map_err(|e| format!("kill -{sig} {pid}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("kill -{sig} {pid}: {status}"))
}

/// Copies `from` over `to` by a rename, so the edge never reads a half-written file.
fn replace_file(from: &PathBuf, to: &PathBuf) -> std::io::Result<()> {
    let tmp = to.with_extension("loadtest-tmp");
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to)
}

/// Runs the changes; sets `terminated` just before the SIGTERM. Bounded by `deadline`.
pub async fn drive(
    plan: ChangePlan,
    start: Instant,
    deadline: Instant,
    terminated: Terminated,
) -> ChangeReport {
    let mut report = ChangeReport::default();
    let (base_ok, base_err) = match reload_counts(plan.admin).await {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(format!("admin {}: {e}", plan.admin));
            (0, 0)
        }
    };
    for i in 0..plan.reloads {
        tokio::time::sleep(plan.interval).await;
        if Instant::now() >= deadline || plan.variants.is_empty() {
            report
                .problems
                .push("deadline reached before every reload".into());
            break;
        }
        let variant = &plan.variants[i as usize % plan.variants.len()];
        if let Err(e) = replace_file(variant, &plan.config_path) {
            report.problems.push(format!("{}: {e}", variant.display()));
            break;
        }
        let sent = Instant::now();
        if let Err(e) = signal(plan.pid, "HUP") {
            report.problems.push(e);
            break;
        }
        report.reloads_sent += 1;
        // Confirmed when the edge has counted this reload (applied or refused).
        let want = u64::from(report.reloads_sent);
        let confirmed = loop {
            match reload_counts(plan.admin).await {
                Ok((ok, err)) if ok + err - base_ok - base_err >= want => {
                    report.reloads_applied = ok - base_ok;
                    report.reloads_refused = err - base_err;
                    break true;
                }
                _ if sent.elapsed() > CONFIRM_WITHIN || Instant::now() >= deadline => {
                    break false;
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        if !confirmed {
            report
                .problems
                .push(format!("reload {want} not confirmed in time"));
            break;
        }
        let ms = sent.elapsed().as_secs_f64() * 1000.0;
        report.max_confirm_ms = report.max_confirm_ms.max(ms);
    }
    if plan.sigterm {
        tokio::time::sleep(plan.interval).await;
        // From here requests count as the drain; the SIGTERM follows a second later, so every
        // `legit` request was started (connected, sent) before it, even on a loaded machine.
        let _ = terminated.set(Instant::now());
        tokio::time::sleep(SIGTERM_AFTER_MARK).await;
        report.sigterm_at_secs = Some(start.elapsed().as_secs_f64());
        if let Err(e) = signal(plan.pid, "TERM") {
            report.problems.push(e);
        }
    }
    report
}
