use std::time::Duration;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::csr;
use crate::keystore::Kek;
use crate::spiffe::SpiffeId;

fn kek() -> KeyProtection {
    KeyProtection::Encrypted(Kek::parse(&"11".repeat(32), "test").unwrap())
}

fn td() -> TrustDomain {
    TrustDomain::parse("example.org").unwrap()
}

fn new_ca(dir: &Path) -> Ca {
    let mut opts = InitOptions::new(td());
    opts.dns_suffixes = vec!["edge.example.org".into()];
    Ca::init(dir, &opts, kek()).unwrap()
}

fn csr_for(uris: &[&str], ca_true: bool) -> csr::ParsedCsr {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI(rcgen::Ia5String::try_from(*u).unwrap()))
        .collect();
    if ca_true {
        // basicConstraints { cA TRUE }
        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 19],
            vec![0x30, 0x03, 0x01, 0x01, 0xff],
        )];
    }
    csr::parse_pem(&p.serialize_request(&key).unwrap().pem().unwrap()).unwrap()
}

#[test]
fn init_writes_encrypted_0600_keys_and_a_constrained_intermediate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let issuer = ca.issuer();
    let (_, cert) = X509Certificate::from_der(issuer.certificate()).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let nc = cert.name_constraints().unwrap().unwrap();
    assert!(nc.critical);
    let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(life <= 90 * 86400 + 60, "intermediate lives {life}s");
    for sub in ["roots", "intermediates"] {
        for entry in fs::read_dir(dir.path().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().unwrap() == "key" {
                let text = fs::read_to_string(&path).unwrap();
                assert!(
                    text.contains("rampart-encrypted-key-v1"),
                    "{path:?} not encrypted"
                );
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }
    assert_eq!(ca.trust_bundle().len(), 1);
    assert!(matches!(
        Ca::init(dir.path(), &InitOptions::new(td()), kek()),
        Err(PkiError::AlreadyInitialized(_))
    ));
}

#[test]
fn p384_root_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(td());
    opts.algorithm = KeyAlgorithm::P384;
    let ca = Ca::init(dir.path(), &opts, kek()).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
    let c = csr_for(&[id.as_str()], false);
    ca.issuer()
        .issue_svid(&id, &c.public_key, Duration::from_secs(60))
        .unwrap();
}

#[test]
fn svid_meets_the_rules_and_chains_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let id = SpiffeId::parse("spiffe://example.org/ns/web/sa/frontend").unwrap();
    let c = csr_for(&[id.as_str()], false);
    c.require_svid_for(&id).unwrap();
    let issued = ca
        .issuer()
        .issue_svid(&id, &c.public_key, Duration::from_secs(24 * 3600))
        .unwrap();
    assert_eq!(crate::inspect::check_svid(&issued.chain[0]).unwrap(), id);
    let (_, leaf) = X509Certificate::from_der(&issued.chain[0]).unwrap();
    let (_, inter) = X509Certificate::from_der(&issued.chain[1]).unwrap();
    assert_eq!(leaf.issuer().as_raw(), inter.subject().as_raw());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let life = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!((24 * 3600..=24 * 3600 + 60).contains(&life));
}

#[test]
fn refusals_issue_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let issuer = ca.issuer();
    let id = SpiffeId::parse("spiffe://example.org/ns/web/sa/frontend").unwrap();
    let good = csr_for(&[id.as_str()], false);
    let over = issuer.issue_svid(&id, &good.public_key, Duration::from_secs(91 * 86400));
    assert!(matches!(over, Err(PkiError::LifetimeOverCap { .. })));
    let foreign = SpiffeId::parse("spiffe://evil.org/ns/web/sa/frontend").unwrap();
    assert!(matches!(
        issuer.issue_svid(&foreign, &good.public_key, Duration::from_secs(60)),
        Err(PkiError::ForeignTrustDomain { .. })
    ));
    let two = csr_for(&[id.as_str(), "spiffe://example.org/ns/x/sa/y"], false);
    let err = two.require_svid_for(&id).unwrap_err();
    assert!(err.to_string().contains("2 URI SANs"), "{err}");
    let ca_true = csr_for(&[id.as_str()], true);
    assert!(ca_true
        .require_svid_for(&id)
        .unwrap_err()
        .to_string()
        .contains("cA=true"));
    let other = csr_for(&["spiffe://example.org/ns/x/sa/y"], false);
    assert!(matches!(
        other.require_svid_for(&id),
        Err(PkiError::CsrIdentityMismatch { .. })
    ));
    let edge = issuer.issue_edge(
        &["www.other.com".into()],
        &good.public_key,
        Duration::from_secs(60),
    );
    assert!(matches!(edge, Err(PkiError::DnsNameNotPermitted { .. })));
    issuer
        .issue_edge(
            &["api.edge.example.org".into()],
            &good.public_key,
            Duration::from_secs(60),
        )
        .unwrap();
    assert!(matches!(
        csr::parse_pem("garbage"),
        Err(PkiError::BadCsr(_))
    ));
}

#[test]
fn bad_passphrase_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    new_ca(dir.path());
    let wrong = KeyProtection::Encrypted(Kek::parse(&"22".repeat(32), "t").unwrap());
    let err = Ca::open(dir.path(), wrong).err().unwrap();
    assert!(matches!(err, PkiError::BadKeyPassphrase { .. }), "{err}");
    let reopened = Ca::open(dir.path(), kek()).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
    let c = csr_for(&[id.as_str()], false);
    reopened
        .issuer()
        .issue_svid(&id, &c.public_key, Duration::from_secs(60))
        .unwrap();
}

#[test]
fn root_rotation_overlaps_then_retires() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = new_ca(dir.path());
    let first_root = ca.roots()[0].serial.clone();
    let first_inter = ca.issuer().serial().to_string();
    let ev = ca.rotate_intermediate().unwrap();
    assert!(matches!(ev, RotationEvent::IntermediateRotated { .. }));
    assert_ne!(ca.issuer().serial(), first_inter);
    ca.begin_root_rotation(Duration::ZERO).unwrap();
    assert_eq!(ca.trust_bundle().len(), 2);
    let policy = RotationPolicy {
        rotate_at_fraction: 2.0 / 3.0,
        bundle_propagation: Duration::ZERO,
    };
    let events = ca.tick(&policy).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RotationEvent::RootActivated { .. })),
        "{events:?}"
    );
    assert_ne!(ca.issuer().root_serial(), first_root);
    // Leaves of the old chain may live until the old intermediate's expiry
    // (we opened nothing, so only what was issued counts: nothing).
    assert_eq!(ca.trust_bundle().len(), 2);
    let events = ca.tick(&policy).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RotationEvent::RootRetired { .. })),
        "{events:?}"
    );
    assert_eq!(ca.trust_bundle().len(), 1);
    let reopened = Ca::open(dir.path(), kek()).unwrap();
    assert_eq!(reopened.issuer().serial(), ca.issuer().serial());
}

#[test]
fn tick_rotates_automatically_at_two_thirds_of_life() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(td());
    opts.root_ttl = Duration::from_secs(6);
    opts.intermediate_ttl = Duration::from_secs(3);
    let mut ca = Ca::init(dir.path(), &opts, kek()).unwrap();
    let policy = RotationPolicy {
        rotate_at_fraction: 2.0 / 3.0,
        bundle_propagation: Duration::ZERO,
    };
    assert!(
        ca.tick(&policy).unwrap().is_empty(),
        "nothing due right after init"
    );
    let (mut inter, mut root) = (false, false);
    let start = std::time::Instant::now();
    while !(inter && root) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no automatic rotation (inter {inter}, root {root})"
        );
        for ev in ca.tick(&policy).unwrap() {
            inter |= matches!(ev, RotationEvent::IntermediateRotated { .. });
            root |= matches!(ev, RotationEvent::RootIntroduced { .. });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
