//! Keys and certificate signing requests a workload sends to the CA.

use rampart_tls::SpiffeId;

use crate::error::Result;

/// Builds a CSR for `id` with a fresh P-256 key: returns (CSR PEM, key).
pub fn new_svid_csr(id: &SpiffeId) -> Result<(String, rcgen::KeyPair)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let uri = rcgen::string::Ia5String::try_from(id.as_str())?;
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key))
}

/// Builds a CSR for the DNS names of an edge server certificate with a fresh P-256 key.
pub fn new_edge_csr(dns_names: &[String]) -> Result<(String, rcgen::KeyPair)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(dns_names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key))
}
