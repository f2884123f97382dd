#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! Shared helpers: a CA directory in a temp dir and an in-process service;
//! [`cli`]: the real binary.

pub mod cli;
#[path = "csr.rs"]
mod csr_pem;
pub mod relay;

#[allow(unused_imports)]
pub use csr_pem::csr;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rampart_pki::ca::{Ca, InitOptions};
use rampart_pki::client::{certs_from_pem, SourceSettings};
use rampart_pki::config::ServeConfig;
use rampart_pki::keystore::{Kek, KeyProtection};
use rampart_pki::server::{self, RunningServer};
use rampart_pki::spiffe::{SpiffeId, TrustDomain};
use rampart_pki::tls::PeerPolicy;
use rustls_pki_types::CertificateDer;

/// Runs an async test on its own 2-worker runtime with a deadline for the
/// whole test *and* for the runtime's teardown: dropping a runtime waits
/// for every blocking task, so a blocking task that never returns would
/// hang the test after its last assertion; here it fails with a message.
/// `RUST_LOG` turns on the library's logs.
pub fn run(deadline: Duration, test: impl std::future::Future<Output = ()>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A failing assertion must not skip the bounded teardown below.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { tokio::time::timeout(deadline, test).await })
    }));
    let (done, teardown) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done.send(());
    });
    teardown
        .recv_timeout(Duration::from_secs(15))
        .expect("runtime teardown hung: a blocking task never returned");
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("test did not finish within {deadline:?}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`run`] with a fresh CA (`init_ca`) in a temporary directory that the
/// test owns.
pub fn run_with_ca<F: std::future::Future<Output = ()>>(
    deadline: Duration,
    test: impl FnOnce(tempfile::TempDir) -> F,
) {
    let dir = tempfile::tempdir().unwrap();
    init_ca(dir.path());
    run(deadline, test(dir));
}

pub const KEK_HEX: &str = "4242424242424242424242424242424242424242424242424242424242424242";

pub fn protection() -> KeyProtection {
    KeyProtection::Encrypted(Kek::parse(KEK_HEX, "test").unwrap())
}

/// Initialises a CA in `dir/ca` and writes the KEK to `dir/kek`.
pub fn init_ca(dir: &Path) {
    std::fs::write(dir.join("kek"), KEK_HEX).unwrap();
    Ca::init(
        &dir.join("ca"),
        &InitOptions::new(TrustDomain::parse("example.org").unwrap()),
        protection(),
    )
    .unwrap();
}

/// Service config for the CA in `dir/ca`; `extra` is appended TOML.
pub fn config(dir: &Path, listen: &str, extra: &str) -> ServeConfig {
    let text = format!(
        "listen = \"{listen}\"\nca_dir = \"{}\"\nkek_file = \"{}\"\n{extra}",
        dir.join("ca").display(),
        dir.join("kek").display()
    );
    ServeConfig::parse(&text, Path::new("test.toml")).unwrap()
}

pub async fn start(dir: &Path, extra: &str) -> RunningServer {
    server::start(config(dir, "127.0.0.1:0", extra))
        .await
        .unwrap()
}

/// A fresh CA in a temporary directory, served in-process with `extra`
/// appended to its config.
pub async fn serving(extra: &str) -> (tempfile::TempDir, RunningServer) {
    let dir = tempfile::tempdir().unwrap();
    init_ca(dir.path());
    let running = start(dir.path(), extra).await;
    (dir, running)
}

pub fn roots(dir: &Path) -> Vec<CertificateDer<'static>> {
    certs_from_pem(&std::fs::read_to_string(dir.join("ca/bundle.pem")).unwrap()).unwrap()
}

pub fn token(dir: &Path, id: &str, ttl: Duration) -> String {
    rampart_pki::token::TokenStore::open(&dir.join("ca"))
        .unwrap()
        .create(&SpiffeId::parse(id).unwrap(), ttl)
        .unwrap()
}

/// Bootstraps `id` (a fresh join token, `ttl_secs` leaves) against the CA
/// at `addr` serving `dir/ca`, within 10 s.
pub async fn bootstrap(
    dir: &Path,
    addr: SocketAddr,
    id: &str,
    ttl_secs: u64,
) -> Result<std::sync::Arc<rampart_pki::client::SvidSource>, rampart_pki::client::IdentityError> {
    let token = token(dir, id, Duration::from_secs(60));
    tokio::time::timeout(
        Duration::from_secs(10),
        rampart_pki::client::SvidSource::bootstrap(
            settings(addr, id, ttl_secs),
            roots(dir),
            &token,
        ),
    )
    .await
    .expect("bootstrap hung")
}

pub fn settings(addr: SocketAddr, id: &str, ttl_secs: u64) -> SourceSettings {
    let mut s = SourceSettings::new(addr, SpiffeId::parse(id).unwrap());
    s.ttl = Some(Duration::from_secs(ttl_secs));
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_millis(400);
    s.bundle_refresh = Duration::from_secs(1);
    s.mesh.policy = PeerPolicy::AnyInTrustDomain;
    s
}
