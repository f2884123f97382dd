//! The demo's ephemeral CA: a root that signs the edge's server certificate. The proxy's
//! integration tests use it too (`#[path]`-included), so test certificates come from the same
//! code the demo runs.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write;
use std::path::Path;

/// A CA that signs server certificates (PEM).
pub struct EphemeralCa {
    ca: rcgen::CertifiedIssuer<'static, KeyPair>,
}

impl EphemeralCa {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, CA_LIFETIME);
        let ca = rcgen::CertifiedIssuer::self_signed(params, key)?;
        Ok(EphemeralCa { ca })
    }

    pub fn cert_pem(&self) -> String {
        self.ca.pem()
    }

    /// A leaf for `names` (DNS names or IP addresses): (chain PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_LIFETIME);
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The demo CA lives a quarter at most (S.N.2); its leaves a month, well under the 90 days that
/// TLS checkers (sslyze's Mozilla profiles) accept, instead of rcgen's default of year 4096.
const CA_LIFETIME: time::Duration = time::Duration::days(90);
const LEAF_LIFETIME: time::Duration = time::Duration::days(30);

/// Valid from an hour ago (clock skew) for `lifetime`.
fn set_validity(params: &mut CertificateParams, lifetime: time::Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + lifetime;
}

/// Writes a file readable only by the owner (keys).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}
