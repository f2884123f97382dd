//! Subcommands of `rampart-pki`. Each prints what a person needs to act on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rampart_pki::ca::{Ca, InitOptions, KeyAlgorithm};
use rampart_pki::config::{key_protection, ServeConfig};
use rampart_pki::error::{PkiError, Result};
use rampart_pki::keystore::{self, pem_encode, KeyProtection};
use rampart_pki::spiffe::{SpiffeId, TrustDomain};
use rampart_pki::token::TokenStore;
use rampart_pki::{audit, csr, inspect};
use serde_json::json;

/// Rampart's built-in CA: short-lived SPIFFE certificates and their rotation.
#[derive(Parser)]
#[command(name = "rampart-pki", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a root and an intermediate CA in DIR.
    Init(InitArgs),
    /// Issue a workload SVID (--spiffe-id or --ns/--sa) or an edge server
    /// certificate (--dns).
    Issue(IssueArgs),
    /// Join tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the CA as an HTTPS service.
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Show a certificate (or each certificate of a PEM chain).
    Inspect {
        /// PEM file.
        file: PathBuf,
    },
    /// Put an identity or one certificate on the revocation deny-list:
    /// renewal and bootstrap refuse it at once; verifiers refuse it after
    /// their next bundle refresh.
    Revoke(RevokeArgs),
    /// Rotate a CA certificate now, through the running service.
    #[command(subcommand)]
    Rotate(RotateCommand),
    /// Keep a workload's SVID in a directory (cert.pem, key.pem 0600,
    /// bundle.pem, revoked.json), renewed at 2/3 of its life.
    Agent(AgentArgs),
    /// Print the current trust bundle (every trusted root).
    Bundle {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key-encryption key tools.
    #[command(subcommand)]
    Kek(KekCommand),
}

#[derive(Args)]
struct KeyArgs {
    /// File holding the key-encryption key (64 hex chars or a passphrase).
    #[arg(long, conflicts_with = "kek_env")]
    kek_file: Option<PathBuf>,
    /// Environment variable holding the key-encryption key
    /// (default RAMPART_PKI_KEK when set).
    #[arg(long)]
    kek_env: Option<String>,
    /// Store CA keys unencrypted (0600). Unsafe: for throwaway test CAs only.
    #[arg(long)]
    insecure_unencrypted_keys: bool,
}

impl KeyArgs {
    fn protection(&self) -> Result<KeyProtection> {
        key_protection(
            self.kek_file.as_deref(),
            self.kek_env.as_deref(),
            self.insecure_unencrypted_keys,
        )
    }
}

#[derive(Args)]
struct InitArgs {
    /// SPIFFE trust domain, e.g. prod.example.org.
    #[arg(long)]
    trust_domain: String,
    /// CA directory to create.
    #[arg(long)]
    dir: PathBuf,
    /// DNS suffix edge certificates may use (repeatable); becomes a name
    /// constraint of the intermediate.
    #[arg(long = "dns-suffix")]
    dns_suffixes: Vec<String>,
    /// CA key algorithm.
    #[arg(long, value_enum, default_value = "p256")]
    algorithm: KeyAlgorithm,
    /// Root lifetime (e.g. 365d).
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    root_ttl: Duration,
    /// Intermediate lifetime (at most 90d).
    #[arg(long, default_value = "90d", value_parser = parse_duration)]
    intermediate_ttl: Duration,
    #[command(flatten)]
    keys: KeyArgs,
}

#[derive(Args)]
struct IssueArgs {
    /// CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Workload SPIFFE ID.
    #[arg(long, conflicts_with_all = ["ns", "dns"])]
    spiffe_id: Option<String>,
    /// Namespace (with --sa): spiffe://DOMAIN/ns/NS/sa/SA.
    #[arg(long, requires = "sa", conflicts_with = "dns")]
    ns: Option<String>,
    /// Service account (with --ns).
    #[arg(long, requires = "ns", conflicts_with = "dns")]
    sa: Option<String>,
    /// DNS name of an edge server certificate (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    /// Lifetime (default 24h; at most 90d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    ttl: Duration,
    /// CSR to sign (PEM). Without it a P-256 key is generated.
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Output prefix: writes PREFIX.pem (chain) and PREFIX.key (0600).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    keys: KeyArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["id", "serial"])))]
struct RevokeArgs {
    /// CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Revoke every certificate of this SPIFFE ID, now and later.
    #[arg(long)]
    id: Option<String>,
    /// Revoke one certificate by serial (hex, as `inspect` prints it).
    #[arg(long)]
    serial: Option<String>,
    /// Why (kept in the list and the audit log).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Args)]
struct AgentArgs {
    /// The CA service, HOST:PORT.
    #[arg(long)]
    ca: String,
    /// The workload's SPIFFE ID.
    #[arg(long)]
    id: String,
    /// File with a one-time join token (only needed without a valid SVID in --out).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Trust bundle to authenticate the CA at first start (`rampart-pki bundle`).
    #[arg(long)]
    bundle_file: Option<PathBuf>,
    /// Output directory (a tmpfs in Kubernetes).
    #[arg(long)]
    out: PathBuf,
    /// Requested certificate lifetime (the CA caps it).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Trust bundle refresh interval.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    bundle_refresh: Duration,
    /// Serve /metrics (SVID seconds to expiry) on this address, e.g. 127.0.0.1:9405.
    #[arg(long)]
    metrics_listen: Option<String>,
}

#[derive(Subcommand)]
enum RotateCommand {
    /// New intermediate now; the old one's key is destroyed.
    Intermediate {
        /// CA directory of the running service.
        #[arg(long)]
        dir: PathBuf,
    },
    /// New root. Normal: distributed in the bundle for
    /// bundle_propagation_secs before issuance uses it. --emergency: used
    /// at once; the old root stays trusted until the leaves it signed
    /// expire, its key is destroyed at once.
    Root {
        /// CA directory of the running service.
        #[arg(long)]
        dir: PathBuf,
        /// Switch issuance to the new root at once.
        #[arg(long)]
        emergency: bool,
        /// With --emergency: drop the old root from the bundle at once.
        /// Every workload still holding a leaf of the old root fails its
        /// handshakes until it renews or bootstraps again.
        #[arg(long, requires = "emergency")]
        break_workloads_now: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a one-time join token bound to one SPIFFE ID.
    Create {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The identity the token grants.
        #[arg(long)]
        id: String,
        /// Token lifetime.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of an audit log.
    Verify {
        /// Audit log (JSON lines).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum KekCommand {
    /// Write a new random 256-bit key-encryption key (hex, 0600).
    Generate {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init(a) => init(a),
        Command::Issue(a) => issue(a),
        Command::Token(TokenCommand::Create { dir, id, ttl }) => token_create(&dir, &id, ttl),
        Command::Serve { config } => serve(&config),
        Command::Revoke(a) => revoke(a),
        Command::Rotate(r) => rotate(r),
        Command::Agent(a) => agent(a),
        Command::Inspect { file } => inspect_file(&file),
        Command::Bundle { dir } => {
            let pem = std::fs::read_to_string(dir.join("bundle.pem"))
                .map_err(|e| PkiError::io(dir.join("bundle.pem"), e))?;
            write_stdout(&pem)
        }
        Command::Audit(AuditCommand::Verify { file }) => {
            let v = audit::verify(&file)?;
            println!(
                "OK: {} records, chain intact; last hash {}",
                v.records, v.last_hash
            );
            if let Some(r) = &v.restarted {
                println!(
                    "this chain was started after a break: {} broke at line {} ({}); last hash that verified there {}",
                    r["sealed_log"].as_str().unwrap_or("the sealed log"),
                    r["broken_at_line"],
                    r["why"].as_str().unwrap_or("unknown"),
                    r["last_good_hash"].as_str().unwrap_or("unknown"),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Kek(KekCommand::Generate { out }) => {
            keystore::write_file_0600(
                &out,
                format!("{}\n", keystore::Kek::generate_hex()?).as_bytes(),
            )?;
            println!(
                "wrote {} (0600); keep it away from the CA directory's backups",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(a: InitArgs) -> Result<ExitCode> {
    let protection = a.keys.protection()?;
    let mut opts = InitOptions::new(TrustDomain::parse(&a.trust_domain)?);
    opts.dns_suffixes = a.dns_suffixes;
    opts.algorithm = a.algorithm;
    opts.root_ttl = a.root_ttl;
    opts.intermediate_ttl = a.intermediate_ttl;
    if matches!(protection, KeyProtection::InsecureUnencrypted) {
        eprintln!("warning: CA keys stored UNENCRYPTED (--insecure-unencrypted-keys)");
    }
    let ca = Ca::init(&a.dir, &opts, protection)?;
    let issuer = ca.issuer();
    println!(
        "initialised CA for trust domain {} in {}",
        opts.trust_domain,
        a.dir.display()
    );
    println!(
        "root:         {} (expires {})",
        ca.roots()[0].serial,
        ca.roots()[0].not_after
    );
    println!(
        "intermediate: {} (expires {})",
        issuer.serial(),
        issuer.not_after()
    );
    println!("trust bundle: {}", a.dir.join("bundle.pem").display());
    Ok(ExitCode::SUCCESS)
}

fn issue(a: IssueArgs) -> Result<ExitCode> {
    let mut ca = Ca::open(&a.dir, a.keys.protection()?)?;
    let issuer = ca.issuer();
    let td = ca.trust_domain()?;
    let given_csr = match &a.csr {
        Some(p) => Some(csr::parse_pem(
            &std::fs::read_to_string(p).map_err(|e| PkiError::io(p, e))?,
        )?),
        None => None,
    };
    let generated = match given_csr {
        Some(_) => None,
        None => Some(rcgen::KeyPair::generate_for(
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )?),
    };
    let log = audit::AuditLog::open(&a.dir.join("audit.jsonl"))?;
    let (subject, result) = if a.dns.is_empty() {
        let id = match (&a.spiffe_id, &a.ns, &a.sa) {
            (Some(id), _, _) => SpiffeId::parse(id)?,
            (None, Some(ns), Some(sa)) => SpiffeId::workload(&td, ns, sa)?,
            _ => {
                return Err(PkiError::BadRequest(
                    "give --spiffe-id, --ns with --sa, or --dns".into(),
                ))
            }
        };
        let r = match (&given_csr, &generated) {
            (Some(c), _) => c
                .require_svid_for(&id)
                .and_then(|_| issuer.issue_svid(&id, &c.public_key, a.ttl)),
            (None, Some(k)) => issuer.issue_svid(&id, k, a.ttl),
            _ => unreachable_key(),
        };
        (id.to_string(), r)
    } else {
        let r = match (&given_csr, &generated) {
            (Some(c), _) => c
                .require_edge()
                .and_then(|_| issuer.issue_edge(&a.dns, &c.public_key, a.ttl)),
            (None, Some(k)) => issuer.issue_edge(&a.dns, k, a.ttl),
            _ => unreachable_key(),
        };
        (a.dns.join(","), r)
    };
    let issued = match result {
        Ok(i) => i,
        Err(e) => {
            let _ = log.append("refused", json!({"kind": "cli", "subject": subject, "reason": e.reason(), "message": e.to_string()}));
            return Err(e);
        }
    };
    ca.persist_issued()?;
    let key = if a.dns.is_empty() {
        subject.clone()
    } else {
        format!("{subject}#edge")
    };
    rampart_pki::workloads::record_offline(
        &a.dir,
        &key,
        rampart_pki::workloads::LiveLeaf {
            serial: issued.serial.clone(),
            root: issued.root_serial.clone(),
            not_after: issued.not_after.unix_timestamp(),
            issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        },
    )?;
    // During an emergency root drain the chain ends with the new root
    // certified by the old one (peers that trust only the old root verify it).
    let chain: String = issued
        .chain
        .iter()
        .chain(ca.cross_certificate())
        .map(|c| pem_encode("CERTIFICATE", c))
        .collect();
    let cert_path = with_ext(&a.out, "pem");
    keystore::write_file_public(&cert_path, chain.as_bytes())?;
    if let Some(k) = generated {
        keystore::write_file_0600(&with_ext(&a.out, "key"), k.serialize_pem().as_bytes())?;
    }
    log.append("issued", json!({"kind": "cli", "subject": subject, "serial": issued.serial, "not_after": issued.not_after.unix_timestamp()}))?;
    println!(
        "issued {subject} serial {} expires {} -> {}",
        issued.serial,
        issued.not_after,
        cert_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn unreachable_key() -> Result<rampart_pki::ca::IssuedCert> {
    Err(PkiError::BadRequest("no key to certify".into()))
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn token_create(dir: &Path, id: &str, ttl: Duration) -> Result<ExitCode> {
    let id = SpiffeId::parse(id)?;
    // Refuse tokens for identities this CA cannot issue.
    let td = Ca::trust_domain_of(dir)?;
    id.require_member_of(&td)?;
    rampart_pki::ca::issuer::require_not_reserved(&id)?;
    let token = TokenStore::open(dir)?.create(&id, ttl)?;
    let log = audit::AuditLog::open(&dir.join("audit.jsonl"))?;
    log.append(
        "token_created",
        json!({"spiffe_id": id.as_str(), "ttl_secs": ttl.as_secs()}),
    )?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{token}");
    eprintln!(
        "one-time join token for {id}, valid {}s; it is shown only now",
        ttl.as_secs()
    );
    Ok(ExitCode::SUCCESS)
}

fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    use rampart_pki::revocation::{self, Target};
    let td = Ca::trust_domain_of(&a.dir)?;
    let target = match (&a.id, &a.serial) {
        (Some(id), None) => {
            let id = SpiffeId::parse(id)?;
            id.require_member_of(&td)?;
            Target::Id(id)
        }
        (None, Some(serial)) => Target::Serial(revocation::normalize_serial(serial)?),
        _ => return Err(PkiError::BadRequest("give --id or --serial".into())),
    };
    let added = revocation::revoke(&a.dir, &target, &a.reason)?;
    let what = match &target {
        Target::Id(id) => format!("identity {id}"),
        Target::Serial(s) => format!("certificate serial {s}"),
    };
    let log = audit::AuditLog::open(&a.dir.join("audit.jsonl"))?;
    log.append(
        "revoked",
        json!({"target": what, "reason": a.reason, "new": added}),
    )?;
    if added {
        println!("revoked {what}: renewal and bootstrap refuse it now; verifiers refuse it after their next bundle refresh");
    } else {
        println!("{what} was already revoked");
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(r: RotateCommand) -> Result<ExitCode> {
    let (dir, path) = match &r {
        RotateCommand::Intermediate { dir } => (dir, "/v1/admin/rotate/intermediate".to_string()),
        RotateCommand::Root {
            dir,
            emergency,
            break_workloads_now,
        } => (
            dir,
            match (emergency, break_workloads_now) {
                (false, _) => "/v1/admin/rotate/root".to_string(),
                (true, false) => "/v1/admin/rotate/root?emergency".to_string(),
                (true, true) => "/v1/admin/rotate/root?emergency&break_workloads".to_string(),
            },
        ),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PkiError::io("tokio runtime", e))?;
    let answer = rt.block_on(rampart_pki::server::admin::post(dir, &path))?;
    let events: Vec<&str> = answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    for ev in &events {
        println!("{ev}");
    }
    if let RotateCommand::Root { .. } = r {
        let (old, live) = (
            answer["workloads_on_old_root"].as_u64().unwrap_or(0),
            answer["live_workloads"].as_u64().unwrap_or(0),
        );
        if events.iter().any(|e| e.starts_with("RootRetired")) {
            println!("old root retired; {live} live workloads, {old} of them on an old root (they must bootstrap again)");
        } else {
            println!("{old} of {live} live workloads still hold a leaf under the old root; it leaves the bundle once they have renewed or their leaves expired (rampart_pki_workloads_on_old_root)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn agent(a: AgentArgs) -> Result<ExitCode> {
    use rampart_pki::agent;
    let opts = agent::AgentOptions {
        ca: a.ca,
        spiffe_id: SpiffeId::parse(&a.id)?,
        token_file: a.token_file,
        bundle_file: a.bundle_file,
        out: a.out.clone(),
        ttl: a.ttl,
        bundle_refresh: a.bundle_refresh,
    };
    let metrics_addr = a
        .metrics_listen
        .as_deref()
        .map(agent::parse_listen)
        .transpose()?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| PkiError::io("tokio runtime", e))?;
    rt.block_on(async {
        let source = agent::start(&opts).await?;
        let renewal = source.spawn();
        let writer = tokio::spawn(agent::keep_files_current(a.out.clone(), source.clone()));
        let mut ready = format!("ready {}", a.out.display());
        let metrics = match metrics_addr {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| PkiError::io(format!("listen {addr}"), e))?;
                let bound = l
                    .local_addr()
                    .map_err(|e| PkiError::io("metrics listener", e))?;
                ready.push_str(&format!(" metrics http://{bound}/metrics"));
                Some(tokio::spawn(agent::serve_metrics(l, source.clone())))
            }
            None => None,
        };
        let stop = stop_signal();
        // Supervisors and tests wait for this line.
        println!("{ready}");
        let _ = std::io::stdout().flush();
        stop.await;
        renewal.abort();
        writer.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn serve(config: &Path) -> Result<ExitCode> {
    let cfg = ServeConfig::load(config)?;
    // A multi-thread runtime: a current-thread one (no cross-thread
    // wake-ups) did not cut the CPU time per renewal measurably and served
    // 20-40 % fewer renewals a second on a busy machine (one thread competing
    // for a core); docs/measurements/pki.md.
    let rt = tokio::runtime::Runtime::new().map_err(|e| PkiError::io("tokio runtime", e))?;
    rt.block_on(async {
        let running = rampart_pki::server::start(cfg).await?;
        let stop = stop_signal();
        // Integration tests and supervisors wait for this line.
        println!("ready https://{}", running.addr);
        let _ = std::io::stdout().flush();
        stop.await;
        // Stops accepting and flushes queued audit records before exit.
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGINT or SIGTERM (what supervisors send). SIGTERM is caught from the
/// moment this is called (inside the runtime): call it *before* printing
/// the ready line, or a supervisor's SIGTERM right after that line meets the
/// default action and kills the process (exit by signal, nothing flushed).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn inspect_file(file: &Path) -> Result<ExitCode> {
    let certs = rampart_tls::pem::load_certs(file)?;
    let mut text = String::new();
    for (i, der) in certs.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("{}\n", inspect::inspect(der)?));
    }
    write_stdout(&text)
}

/// Writes command output; a reader that closed the pipe (`| head`) ends
/// the command quietly instead of panicking like `println!`.
fn write_stdout(text: &str) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(PkiError::io("standard output", e)),
    }
}

/// Parses `90d`, `24h`, `30m`, `45s` or plain seconds.
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with unit s, m, h or d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too large"))
}
