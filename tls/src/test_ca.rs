//! A small CA for tests (feature `test-ca`), built with rcgen: a root, and leaves signed by it
//! with whatever SANs and validity a test needs, including ones that break the X.509-SVID
//! rules. Test code only: it panics on failure, and its keys live in memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{BundleHandle, Identity, SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// A root CA and the leaves it signs.
pub struct TestCa {
    ca: rcgen::CertifiedIssuer<'static, KeyPair>,
}

/// A URI SAN.
pub fn uri(u: &str) -> SanType {
    SanType::URI(rcgen::string::Ia5String::try_from(u).unwrap())
}

/// A DNS SAN.
pub fn dns(d: &str) -> SanType {
    SanType::DnsName(rcgen::string::Ia5String::try_from(d).unwrap())
}

impl TestCa {
    /// A fresh root (P-256), valid from an hour ago for 30 days.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "rampart-tls test root");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(30);
        TestCa {
            ca: rcgen::CertifiedIssuer::self_signed(p, key).unwrap(),
        }
    }

    /// The root certificate.
    pub fn root(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> String {
        self.ca.pem()
    }

    /// A trust bundle of this root for `td`.
    pub fn bundle(&self, td: &str) -> BundleHandle {
        BundleHandle::new(TrustDomain::parse(td).unwrap(), vec![self.root()]).unwrap()
    }

    /// A leaf with the SVID profile but the given SANs and lifetime.
    pub fn leaf(
        &self,
        sans: Vec<SanType>,
        life: Duration,
    ) -> (Vec<CertificateDer<'static>>, KeyPair) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = sans;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::minutes(1);
        p.not_after = now + life;
        let cert = p.signed_by(&key, &self.ca).unwrap();
        (vec![cert.der().clone()], key)
    }

    /// A valid SVID for `id`, valid one hour.
    pub fn svid(&self, id: &str) -> Identity {
        self.svid_with(vec![uri(id)])
    }

    /// An SVID-shaped identity with extra SANs.
    pub fn svid_with(&self, sans: Vec<SanType>) -> Identity {
        let (chain, key) = self.leaf(sans, Duration::hours(1));
        Identity::new(chain, key.serialize_der()).unwrap()
    }
}

/// Parses a SPIFFE ID.
pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// An IP address SAN.
pub fn ip(addr: &str) -> SanType {
    SanType::IpAddress(addr.parse().unwrap())
}
