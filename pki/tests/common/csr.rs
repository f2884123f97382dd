//! A CSR built by hand for refusal tests; shared with the crate's unit
//! tests (`src/ca/tests.rs` includes this file).

/// A CSR PEM for a fresh P-256 key with these URI SANs and, when `ca_true`,
/// a basicConstraints extension claiming `cA TRUE`.
pub fn csr(uris: &[&str], ca_true: bool) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI(rcgen::string::Ia5String::try_from(*u).unwrap()))
        .collect();
    if ca_true {
        // basicConstraints { cA TRUE }
        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 19],
            vec![0x30, 0x03, 0x01, 0x01, 0xff],
        )];
    }
    p.serialize_request(&key).unwrap().pem().unwrap()
}
