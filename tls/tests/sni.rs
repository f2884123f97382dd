#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A certificate set mixing fixed and live certificates: SNI picks the entry, a live entry
//! serves whatever its owner stored last.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_tls::sni::{CertEntry, CertSet, KeySource};
use rampart_tls::test_ca::{dns, TestCa};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn key(ca: &TestCa, name: &str) -> Arc<CertifiedKey> {
    let (chain, key) = ca.leaf(vec![dns(name)], time::Duration::hours(1));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Arc::new(rampart_tls::pem::certified_key(chain, &key).unwrap())
}

fn leaf(k: &CertifiedKey) -> Vec<u8> {
    k.cert[0].to_vec()
}

#[test]
fn live_entries_serve_what_was_stored_last() {
    let ca = TestCa::new();
    let fixed = key(&ca, "files.example.org");
    let live_first = key(&ca, "ca.example.org");
    let live = Arc::new(ArcSwap::new(live_first.clone()));
    let set = CertSet::build(vec![
        CertEntry {
            key: KeySource::Fixed(fixed.clone()),
            server_names: vec![],
            default: false,
        },
        CertEntry {
            key: KeySource::Live(live.clone()),
            server_names: vec!["ca.example.org".into(), "*.ca.example.org".into()],
            default: true,
        },
    ])
    .unwrap();
    // Names from the fixed leaf itself; the live entry by its configured names and as default.
    assert_eq!(leaf(&set.select(Some("files.example.org"))), leaf(&fixed));
    assert_eq!(leaf(&set.select(Some("ca.example.org"))), leaf(&live_first));
    assert_eq!(
        leaf(&set.select(Some("x.ca.example.org"))),
        leaf(&live_first)
    );
    assert_eq!(leaf(&set.select(None)), leaf(&live_first));
    // A renewal stored by the owner reaches the next selection; the fixed entry is unchanged.
    let renewed = key(&ca, "ca.example.org");
    live.store(renewed.clone());
    assert_eq!(leaf(&set.select(Some("ca.example.org"))), leaf(&renewed));
    assert_eq!(leaf(&set.select(Some("unknown.org"))), leaf(&renewed));
    assert_eq!(leaf(&set.select(Some("files.example.org"))), leaf(&fixed));
    // An empty set is refused.
    assert!(CertSet::build(vec![]).is_err());
}
