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

#[path = "../../tests/common/csr.rs"]
mod test_csr;

/// One rotation check; asserts it produced an event `want` accepts.
fn tick_expecting(ca: &mut Ca, policy: &RotationPolicy, want: fn(&RotationEvent) -> bool) {
    let events = ca.tick(policy).unwrap();
    assert!(events.iter().any(want), "{events:?}");
}

fn csr_for(uris: &[&str], ca_true: bool) -> csr::ParsedCsr {
    csr::parse_pem(&test_csr::csr(uris, ca_true)).unwrap()
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
        Err(PkiError::Tls(
            rampart_tls::TlsError::ForeignTrustDomain { .. }
        ))
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
    tick_expecting(&mut ca, &policy, |e| {
        matches!(e, RotationEvent::RootActivated { .. })
    });
    assert_ne!(ca.issuer().root_serial(), first_root);
    // Leaves of the old chain may live until the old intermediate's expiry
    // (we opened nothing, so only what was issued counts: nothing).
    assert_eq!(ca.trust_bundle().len(), 2);
    tick_expecting(&mut ca, &policy, |e| {
        matches!(e, RotationEvent::RootRetired { .. })
    });
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

/// Parses DER certificates with pyca/cryptography, a strict DER parser (it
/// refuses, e.g., a DEFAULT value encoded explicitly). Returns one line per
/// file: "OK name" or "FAIL name: why".
fn strict_parse(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (name, der) in files {
        let p = dir.path().join(format!("{name}.der"));
        fs::write(&p, der).unwrap();
        args.push(p);
    }
    const SCRIPT: &str = r#"
import sys, os
from cryptography import x509
for path in sys.argv[1:]:
    name = os.path.basename(path)[:-4]
    try:
        c = x509.load_der_x509_certificate(open(path, "rb").read())
        c.subject; c.issuer; c.public_key(); c.serial_number
        exts = list(c.extensions)
        c.extensions.get_extension_for_class(x509.BasicConstraints)
        print("OK", name, len(exts))
    except Exception as e:
        print("FAIL", name + ":", type(e).__name__, e)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args(&args)
        .output()
        .expect("python3 is needed for the strict DER test (apt install python3-cryptography)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "strict parser did not run (apt install python3-cryptography): {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_certificate_kind_is_strict_der() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = new_ca(dir.path());
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
    let issue_all = |ca: &Ca, tag: &str, files: &mut Vec<(String, Vec<u8>)>| {
        let issuer = ca.issuer();
        for (i, root) in ca.trust_bundle().into_iter().enumerate() {
            files.push((format!("{tag}-root{i}"), root.to_vec()));
        }
        files.push((format!("{tag}-intermediate"), issuer.certificate().to_vec()));
        let svid = issuer
            .issue_svid(&id, &leaf_key, Duration::from_secs(3600))
            .unwrap();
        files.push((format!("{tag}-svid"), svid.chain[0].to_vec()));
        let edge = issuer
            .issue_edge(
                &["www.edge.example.org".into()],
                &leaf_key,
                Duration::from_secs(3600),
            )
            .unwrap();
        files.push((format!("{tag}-edge"), edge.chain[0].to_vec()));
        let service = issuer
            .issue_service_svid(
                &crate::server::service_id(&td()).unwrap(),
                &profiles::ServiceNames::parse(&[
                    "ca.edge.example.org".into(),
                    "127.0.0.1".into(),
                    "::1".into(),
                ])
                .unwrap(),
                &leaf_key,
                Duration::from_secs(3600),
            )
            .unwrap();
        files.push((format!("{tag}-service"), service.chain[0].to_vec()));
    };
    issue_all(&ca, "init", &mut files);
    ca.rotate_intermediate().unwrap();
    ca.begin_root_rotation(Duration::ZERO).unwrap();
    ca.tick(&RotationPolicy {
        rotate_at_fraction: 0.66,
        bundle_propagation: Duration::ZERO,
    })
    .unwrap();
    issue_all(&ca, "rotated", &mut files);

    // The control: the encoding older rcgen releases wrote for a leaf
    // (basicConstraints { cA FALSE }, the DEFAULT spelled out). A parser
    // that accepts it proves nothing.
    let mut p = profiles::svid(
        &id,
        profiles::random_serial().unwrap().0,
        OffsetDateTime::now_utc(),
        OffsetDateTime::now_utc() + Duration::from_secs(60),
    )
    .unwrap();
    p.is_ca = rcgen::IsCa::NoCa;
    p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 19],
        vec![0x30, 0x03, 0x01, 0x01, 0x00],
    )];
    let old = ca.issuer().sign_raw(p, &leaf_key).unwrap();
    files.push(("control-explicit-ca-false".into(), old.chain[0].to_vec()));

    let lines = strict_parse(&files);
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    for line in &lines {
        if line.contains("control-explicit-ca-false") {
            assert!(
                line.starts_with("FAIL"),
                "the strict parser accepted explicit cA FALSE: {line}"
            );
        } else {
            assert!(line.starts_with("OK"), "{line}");
        }
    }
}

#[test]
fn a_key_in_the_wrong_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let root = ca.roots()[0].serial.clone();
    let inter = ca.issuer().serial().to_string();
    drop(ca);
    let root_key = dir.path().join("roots").join(format!("{root}.key"));
    let inter_key = dir
        .path()
        .join("intermediates")
        .join(format!("{inter}.key"));
    let saved = fs::read(&inter_key).unwrap();
    // The root's key placed in the intermediate's file.
    fs::copy(&root_key, &inter_key).unwrap();
    let err = Ca::open(dir.path(), kek())
        .err()
        .expect("mismatch not detected");
    assert!(matches!(err, PkiError::KeyMismatch(_)), "{err}");
    assert!(
        err.to_string().contains("intermediate key does not belong"),
        "{err}"
    );
    // And the intermediate's key in the root's file.
    fs::write(&inter_key, &saved).unwrap();
    fs::copy(&inter_key, &root_key).unwrap();
    let err = Ca::open(dir.path(), kek())
        .err()
        .expect("mismatch not detected");
    assert!(
        err.to_string().contains("root key does not belong"),
        "{err}"
    );
}

#[test]
fn reserved_identities_are_never_issued() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path());
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    for (id, why) in [
        ("spiffe://example.org/rampart/pki", "the CA's own identity"),
        ("spiffe://example.org", "bare trust-domain"),
        (
            "spiffe://example.org/rampart/other",
            "/rampart/ path is reserved",
        ),
    ] {
        let err = ca
            .issuer()
            .issue_svid(&SpiffeId::parse(id).unwrap(), &key, Duration::from_secs(60))
            .unwrap_err();
        assert!(
            matches!(err, PkiError::ReservedIdentity { .. }),
            "{id}: {err}"
        );
        assert!(err.to_string().contains(why), "{id}: {err}");
    }
    ca.issuer()
        .issue_svid(
            &SpiffeId::parse("spiffe://example.org/ns/rampart/sa/pki").unwrap(),
            &key,
            Duration::from_secs(60),
        )
        .unwrap();
}
