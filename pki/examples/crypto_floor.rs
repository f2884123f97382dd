//! The cryptographic floor of one renewal, timed with ring (the provider
//! the CA actually runs), to set beside `openssl speed ecdsap256
//! ecdhx25519` measured in the same run.
//!
//! A renewal by a distinct client costs the server at least: 2 ECDSA P-256
//! signatures (its CertificateVerify, the new leaf), 4 verifications (the
//! client's CertificateVerify, the client leaf by the intermediate, the
//! intermediate by the root, the CSR's proof of possession) and 2 X25519
//! scalar multiplications (its key share, the shared secret).
//!
//! Times are CPU time of the timing thread, like `openssl speed`'s.
//!
//! ```sh
//! cargo build --release -p rampart-pki --example crypto_floor
//! target/release/examples/crypto_floor 2      # seconds per primitive
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey as PeerKey, X25519};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};

/// CPU time of this thread (ns), from `/proc/thread-self/schedstat`: the
/// machine is shared, so wall time would count other processes' turns
/// (`openssl speed` also reports CPU time).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat field")
}

/// CPU microseconds per call of `f`, run for `secs` of CPU time.
fn time(secs: f64, mut f: impl FnMut()) -> f64 {
    let (start, mut n) = (thread_cpu_ns(), 0u64);
    let budget = (secs * 1e9) as u64;
    while thread_cpu_ns() - start < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    (thread_cpu_ns() - start) as f64 / 1e3 / n as f64
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(2.0);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // About the size of a leaf's TBSCertificate.
    let msg = vec![0x5a_u8; 400];
    let sig = key.sign(&rng, &msg).unwrap();
    let public =
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref().to_vec());
    public.verify(&msg, sig.as_ref()).unwrap();

    let sign = time(secs, || {
        key.sign(&rng, &msg).unwrap();
    });
    let verify = time(secs, || {
        public.verify(&msg, sig.as_ref()).unwrap();
    });
    let peer = EphemeralPrivateKey::generate(&X25519, &rng)
        .unwrap()
        .compute_public_key()
        .unwrap();
    let peer = peer.as_ref().to_vec();
    // Key share: a new private key and its public key (one scalar mult).
    let keygen = time(secs, || {
        let k = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        k.compute_public_key().unwrap();
    });
    // Key share + shared secret (two scalar mults).
    let both = time(secs, || {
        let k = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        k.compute_public_key().unwrap();
        agreement::agree_ephemeral(k, &PeerKey::new(&X25519, &peer), |s| s.len()).unwrap();
    });
    let floor = 2.0 * sign + 4.0 * verify + both;
    println!("ring P-256 sign {sign:.1} us, verify {verify:.1} us; X25519 key share {keygen:.1} us, key share + agreement {both:.1} us");
    println!(
        "floor = 2 x {sign:.1} + 4 x {verify:.1} + {both:.1} = {floor:.1} us -> {:.0} renewals per CPU-second",
        1e6 / floor
    );
}
