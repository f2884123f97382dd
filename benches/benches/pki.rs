#![allow(clippy::unwrap_used, clippy::expect_used)]
//! rampart-pki speed: P-256 leaf issuance per second on one core (from a
//! public key, and from a PEM CSR including its signature check), the bare
//! P-256 signature as the baseline, and a renewal round trip over the CA
//! service (TLS handshake with client certificate + CSR + issuance).
//!
//! Run: `cargo bench -p rampart-benches --bench pki`

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_pki::ca::{Ca, InitOptions};
use rampart_pki::client::{certs_from_pem, SourceSettings, SvidSource};
use rampart_pki::config::ServeConfig;
use rampart_pki::keystore::{Kek, KeyProtection};
use rampart_pki::spiffe::{SpiffeId, TrustDomain};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

const KEK: &str = "5151515151515151515151515151515151515151515151515151515151515151";

fn new_ca(dir: &Path) -> Ca {
    std::fs::write(dir.join("kek"), KEK).unwrap();
    let prot = KeyProtection::Encrypted(Kek::parse(KEK, "bench").unwrap());
    Ca::init(
        &dir.join("ca"),
        &InitOptions::new(TrustDomain::parse("example.org").unwrap()),
        prot,
    )
    .unwrap()
}

fn issuance(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let issuer = ca.issuer();
    let id = SpiffeId::parse("spiffe://example.org/ns/bench/sa/leaf").unwrap();
    let (csr_pem, key) = rampart_pki::client::csr::new_svid_csr(&id).unwrap();
    let ttl = Duration::from_secs(24 * 3600);

    let mut g = c.benchmark_group("pki_issue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("p256_sign_only_baseline", |b| {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let tbs = vec![0x5au8; 400]; // about a leaf's TBSCertificate
        b.iter(|| kp.sign(&rng, &tbs).unwrap());
    });
    g.bench_function("p256_leaf_from_public_key", |b| {
        b.iter(|| issuer.issue_svid(&id, &key, ttl).unwrap());
    });
    g.bench_function("p256_leaf_from_csr", |b| {
        b.iter(|| {
            let csr = rampart_pki::csr::parse_pem(&csr_pem).unwrap();
            csr.require_svid_for(&id).unwrap();
            issuer.issue_svid(&id, &csr.public_key, ttl).unwrap()
        });
    });
    g.finish();
}

fn renewal_round_trip(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    new_ca(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let text = format!(
        "listen = \"127.0.0.1:0\"\nca_dir = \"{}\"\nkek_file = \"{}\"\n[rate_limit]\nper_minute = 10000000\nburst = 1000000\n",
        dir.path().join("ca").display(),
        dir.path().join("kek").display()
    );
    let cfg = ServeConfig::parse(&text, Path::new("bench.toml")).unwrap();
    let running = rt.block_on(rampart_pki::server::start(cfg)).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/ns/bench/sa/renew").unwrap();
    let token = rampart_pki::token::TokenStore::open(&dir.path().join("ca"))
        .unwrap()
        .create(&id, Duration::from_secs(600))
        .unwrap();
    let roots = certs_from_pem(&std::fs::read_to_string(dir.path().join("ca/bundle.pem")).unwrap())
        .unwrap();
    let source = rt
        .block_on(SvidSource::bootstrap(
            SourceSettings::new(running.addr, id),
            roots,
            &token,
        ))
        .unwrap();

    let mut g = c.benchmark_group("pki_renew");
    g.throughput(Throughput::Elements(1));
    g.bench_function("renewal_round_trip_mtls", |b| {
        b.iter(|| rt.block_on(source.renew_now()).unwrap());
    });
    g.finish();
    rt.block_on(running.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = issuance, renewal_round_trip
}
criterion_main!(benches);
