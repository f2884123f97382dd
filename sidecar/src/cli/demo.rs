//! `rampart-sidecar demo`: the CA (the `rampart-pki` binary, see [`super::pki`]), three
//! workloads (frontend → payments → ledger) each behind its own sidecar, on loopback, and the
//! commands that show the mesh at work. Runs until Ctrl-C; everything lives in one folder
//! (printed), logs included.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use rampart_sidecar::pki_process::{self, write_file as write, write_private, Pki};

const TD: &str = "mesh.local";

fn id(sa: &str) -> String {
    format!("spiffe://{TD}/ns/shop/sa/{sa}")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

struct Ports {
    payments_app: u16,
    ledger_app: u16,
    payments_in: u16,
    ledger_in: u16,
    frontend_to_payments: u16,
    payments_to_ledger: u16,
}

pub fn run(dir: Option<PathBuf>) -> Result<ExitCode, String> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rampart-sidecar-demo-{}", std::process::id())),
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "{} exists and is not empty: give an empty or new --dir",
            dir.display()
        ));
    }
    // Before anything starts: a missing CA binary is the likeliest failure, say so at once.
    let pki = pki_process::find()?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(demo(dir, pki))
}

async fn demo(dir: PathBuf, pki: PathBuf) -> Result<ExitCode, String> {
    let ports = Ports {
        payments_app: free_port()?,
        ledger_app: free_port()?,
        payments_in: free_port()?,
        ledger_in: free_port()?,
        frontend_to_payments: free_port()?,
        payments_to_ledger: free_port()?,
    };

    // The CA: `rampart-pki init` then `serve`, keys encrypted under a random KEK kept in the
    // demo folder. Blocking steps (child processes), off the async workers.
    let ca = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Pki::start(pki, &dir, TD))
            .await
            .map_err(|e| format!("CA start: {e}"))??
    };

    // The apps: payments and ledger answer with what they learned about the caller.
    spawn_app(ports.payments_app, "payments").await?;
    spawn_app(ports.ledger_app, "ledger").await?;

    let directory = format!(
        "[[service]]\nname = \"frontend\"\nidentity = \"{}\"\nendpoints = [{{ port = 80, address = \"127.0.0.1:1\" }}]\n\n\
         [[service]]\nname = \"payments\"\nidentity = \"{}\"\nendpoints = [{{ port = 8080, address = \"127.0.0.1:{}\" }}]\n\n\
         [[service]]\nname = \"ledger\"\nidentity = \"{}\"\nendpoints = [{{ port = 9000, address = \"127.0.0.1:{}\" }}]\n",
        id("frontend"), id("payments"), ports.payments_in, id("ledger"), ports.ledger_in
    );
    let policies = [
        ("frontend", "[[outbound]]\nname = \"frontend-deps\"\n\n[[outbound.rule]]\nname = \"to-payments\"\nservices = [\"payments\"]\nports = [8080]\n".to_string()),
        ("payments", format!(
            "[[inbound]]\nname = \"payments-api\"\nports = [8080]\n\n[[inbound.rule]]\nname = \"frontend-reads\"\ncallers = [\"{}\"]\nmethods = [\"GET\"]\npaths = [\"/v1/payments/**\"]\n\n\
             [[outbound]]\nname = \"payments-deps\"\n\n[[outbound.rule]]\nname = \"to-ledger\"\nservices = [\"ledger\"]\nports = [9000]\n",
            id("frontend")
        )),
        ("ledger", format!(
            "# Dry run: would-be denials are logged and counted, traffic passes.\n[[inbound]]\nname = \"ledger-api\"\nmode = \"audit\"\nports = [9000]\n\n[[inbound.rule]]\nname = \"payments-writes\"\ncallers = [\"{}\"]\nmethods = [\"POST\"]\npaths = [\"/v1/entries\"]\n",
            id("payments")
        )),
    ];
    let mut children = Vec::new();
    let mut pids = std::collections::HashMap::new();
    for (name, policy) in &policies {
        let wd = dir.join(name);
        std::fs::create_dir_all(&wd).map_err(|e| e.to_string())?;
        write(&wd.join("policy.toml"), policy)?;
        write(&wd.join("directory.toml"), &directory)?;
        let token = ca.token(&id(name), "10m")?;
        write_private(&wd.join("join-token"), &token)?;
        let ports_toml = match *name {
            "frontend" => format!("[[outbound.listener]]\nlisten = \"127.0.0.1:{}\"\nservice = \"payments\"\nport = 8080\n", ports.frontend_to_payments),
            "payments" => format!(
                "[[inbound.port]]\nport = 8080\nprotocol = \"http\"\napp = \"127.0.0.1:{}\"\nlisten = \"127.0.0.1:{}\"\n\n[[outbound.listener]]\nlisten = \"127.0.0.1:{}\"\nservice = \"ledger\"\nport = 9000\n",
                ports.payments_app, ports.payments_in, ports.payments_to_ledger
            ),
            _ => format!("[[inbound.port]]\nport = 9000\nprotocol = \"http\"\napp = \"127.0.0.1:{}\"\nlisten = \"127.0.0.1:{}\"\n", ports.ledger_app, ports.ledger_in),
        };
        write(
            &wd.join("sidecar.toml"),
            &format!(
                "service = \"{name}\"\ntrust_domain = \"{TD}\"\npolicy = \"policy.toml\"\ndirectory = \"directory.toml\"\n\
                 identity = {{ ca = \"https://{}\", spiffe_id = \"{}\", bundle = \"../ca/bundle.pem\", token_file = \"join-token\", state_dir = \"state\" }}\n\n{ports_toml}",
                ca.addr,
                id(name)
            ),
        )?;
        let child = start_sidecar(&wd.join("sidecar.toml"), &dir.join(format!("{name}.log")))?;
        pids.insert(*name, child.id());
        children.push(child);
    }
    for (name, _) in &policies {
        wait_ready(&dir.join(format!("{name}.log")))?;
    }

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let d = dir.display();
    let pay_pid = pids.get("payments").copied().unwrap_or(0);
    println!(
        "rampart-sidecar demo: CA ({}) at https://{}, folder {d}",
        ca.bin().display(),
        ca.addr
    );
    println!("  frontend (no app; your curl is the frontend app) -> payments -> ledger, each behind its sidecar");
    println!("  logs: {d}/frontend.log {d}/payments.log {d}/ledger.log");
    println!();
    println!(
        "# 1. an allowed call: frontend's app calls payments through its sidecar (mTLS both ways)"
    );
    println!(
        "$ curl -s http://127.0.0.1:{}/v1/payments/42",
        ports.frontend_to_payments
    );
    println!("# 2. denied by policy (POST not allowed), and the explanation");
    println!(
        "$ curl -s -X POST http://127.0.0.1:{}/v1/payments/42",
        ports.frontend_to_payments
    );
    println!(
        "$ {} policy explain --config {d}/payments/sidecar.toml --from {} --to payments:8080 --method POST --path /v1/payments/42",
        exe.display(),
        id("frontend")
    );
    println!("# 3. a caller without a client certificate is refused, with the reason");
    println!(
        "$ curl -sk https://127.0.0.1:{}/v1/payments/42",
        ports.payments_in
    );
    println!("# 4. a dry-run denial: ledger's policy is in audit mode; payments' GET passes and is logged as audit_deny");
    println!(
        "$ curl -s http://127.0.0.1:{}/v1/entries",
        ports.payments_to_ledger
    );
    println!("$ grep -c '\"rampart.decision\":\"audit_deny\"' {d}/ledger.log");
    println!("# 5. a live policy reload cuts an open connection that the new policy denies");
    println!(
        "$ (curl -sN http://127.0.0.1:{}/v1/payments/stream; echo \" [curl exit $?]\") & sleep 1; sed -i 's#/v1/payments/\\*\\*#/v1/payments/none#' {d}/payments/policy.toml; kill -HUP {pay_pid}; wait",
        ports.frontend_to_payments
    );
    println!();
    println!("ready; Ctrl-C stops the demo");
    let _ = std::io::stdout().flush();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(ca);
    Ok(ExitCode::SUCCESS)
}

fn start_sidecar(config: &Path, log: &Path) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start a sidecar: {e}"))
}

/// Waits (20 s at most) for the sidecar's ready line in its log.
fn wait_ready(log: &Path) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(f) = std::fs::File::open(log) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if line.contains("\"rampart.sidecar.ready\"") {
                    return Ok(());
                }
                if line.starts_with("rampart-sidecar:") {
                    return Err(format!("a sidecar failed to start: {line}"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no ready line in {} within 20 s", log.display()))
}

/// A demo app: answers `app=NAME;xfcc=…;path=…`; `/v1/payments/stream` sends a line every
/// 200 ms for 30 s (to show a reload cutting it).
async fn spawn_app(port: u16, name: &'static str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("app {name} on port {port}: {e}"))?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let xfcc = req
                            .headers()
                            .get("x-forwarded-client-cert")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        if req.uri().path().ends_with("/stream") {
                            let (mut tx, body) =
                                http_body_util::channel::Channel::<Bytes, hyper::Error>::new(4);
                            tokio::spawn(async move {
                                for i in 0..150 {
                                    if tx
                                        .send_data(Bytes::from(format!("tick {i}\n")))
                                        .await
                                        .is_err()
                                    {
                                        return;
                                    }
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                            });
                            return Ok::<_, std::convert::Infallible>(http::Response::new(
                                body.boxed(),
                            ));
                        }
                        let text = format!("app={name};xfcc={xfcc};path={}\n", req.uri().path());
                        Ok(http::Response::new(
                            Full::new(Bytes::from(text))
                                .map_err(|never| match never {})
                                .boxed(),
                        ))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(())
}
