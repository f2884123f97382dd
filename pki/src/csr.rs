//! Certificate signing requests: parsed and checked once, at the boundary.
//! Only the public key of a CSR is ever used; the certificate's contents
//! come from our profiles, never from what the requester asked for.

use rcgen::SubjectPublicKeyInfo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::error::{PkiError, Result};
use crate::spiffe::SpiffeId;

/// A CSR whose signature verified, reduced to what we may use.
#[derive(Debug)]
pub struct ParsedCsr {
    /// The URI SANs requested.
    pub uris: Vec<String>,
    /// The DNS SANs requested.
    pub dns_names: Vec<String>,
    /// Other SAN kinds requested (e-mail, IP, ...), as text.
    pub other_names: Vec<String>,
    /// True if the CSR asks for `cA = true`.
    pub requests_ca: bool,
    /// The key to certify.
    pub public_key: SubjectPublicKeyInfo,
}

/// Parses a PEM CSR and verifies its self-signature.
pub fn parse_pem(pem: &str) -> Result<ParsedCsr> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::BadCsr(format!("not a PEM CERTIFICATE REQUEST: {e}")))?;
    parse_der(der.as_ref())
}

/// Parses a DER CSR and verifies its self-signature.
pub fn parse_der(der: &[u8]) -> Result<ParsedCsr> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| PkiError::BadCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::BadCsr("trailing bytes after the CSR".into()));
    }
    csr.verify_signature().map_err(|_| {
        PkiError::BadCsr("signature does not verify (proof of possession failed)".into())
    })?;
    let public_key = SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|_| {
            PkiError::BadCsr("unsupported key type: use ECDSA P-256, P-384 or Ed25519".into())
        })?;
    let mut parsed = ParsedCsr {
        uris: vec![],
        dns_names: vec![],
        other_names: vec![],
        requests_ca: false,
        public_key,
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(u) => parsed.uris.push(u.to_string()),
                        GeneralName::DNSName(d) => parsed.dns_names.push(d.to_string()),
                        other => parsed.other_names.push(format!("{other:?}")),
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) => parsed.requests_ca |= bc.ca,
            _ => {}
        }
    }
    Ok(parsed)
}

impl ParsedCsr {
    /// Checks the CSR asks for exactly the SVID `entitled` and nothing else.
    pub fn require_svid_for(&self, entitled: &SpiffeId) -> Result<()> {
        if self.requests_ca {
            return Err(PkiError::CsrRefused(
                "requests cA=true; workload certificates are never CAs".into(),
            ));
        }
        if self.uris.len() != 1 {
            return Err(PkiError::CsrRefused(format!(
                "has {} URI SANs; an X.509-SVID has exactly one",
                self.uris.len()
            )));
        }
        if !self.dns_names.is_empty() || !self.other_names.is_empty() {
            return Err(PkiError::CsrRefused(
                "workload CSRs carry only the SPIFFE ID URI SAN".into(),
            ));
        }
        let requested = SpiffeId::parse(&self.uris[0])?;
        if &requested != entitled {
            return Err(PkiError::CsrIdentityMismatch {
                requested: requested.to_string(),
                entitled: entitled.to_string(),
            });
        }
        Ok(())
    }

    /// Checks the CSR is a plain server CSR with DNS names only.
    pub fn require_edge(&self) -> Result<()> {
        if self.requests_ca {
            return Err(PkiError::CsrRefused("requests cA=true".into()));
        }
        if !self.uris.is_empty() || !self.other_names.is_empty() || self.dns_names.is_empty() {
            return Err(PkiError::CsrRefused(
                "edge CSRs carry one or more DNS SANs and nothing else".into(),
            ));
        }
        Ok(())
    }
}

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
