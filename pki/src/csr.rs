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
    // The key type first: a key we do not certify is named as such, not
    // reported as a failed signature check.
    check_key_algorithm(&csr.certification_request_info.subject_pki)?;
    csr.verify_signature().map_err(|_| {
        PkiError::BadCsr("signature does not verify (proof of possession failed)".into())
    })?;
    let public_key = SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|_| PkiError::UnsupportedKeyAlgorithm("(unreadable public key)".into()))?;
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

/// Accepts exactly the key types the docs promise: ECDSA P-256, ECDSA
/// P-384 and Ed25519. Everything else (RSA of any size, P-521, secp256k1,
/// DSA, ...) is refused with `unsupported key algorithm ...`.
fn check_key_algorithm(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<()> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
        OID_SIG_ED25519,
    };
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_SIG_ED25519 {
        return Ok(());
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => Ok(()),
            Some(c) => Err(PkiError::UnsupportedKeyAlgorithm(format!(
                "ECDSA on curve {}",
                curve_name(&c.to_id_string())
            ))),
            None => Err(PkiError::UnsupportedKeyAlgorithm(
                "ECDSA without a named curve".into(),
            )),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(k)) => k.key_size(),
            _ => 0,
        };
        return Err(PkiError::UnsupportedKeyAlgorithm(format!(
            "RSA ({bits} bits)"
        )));
    }
    Err(PkiError::UnsupportedKeyAlgorithm(format!(
        "OID {}",
        alg.to_id_string()
    )))
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.3.132.0.35" => "P-521 (secp521r1)".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        other => format!("OID {other}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSR for `spiffe://example.org/ns/a/sa/b` made by openssl with
    /// `newkey` (e.g. `rsa:2048`, `ec` + curve, `ed25519`).
    fn openssl_csr(newkey: &[&str]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(["req", "-new", "-nodes", "-keyout", "k.pem", "-out", "r.pem"])
            .args(["-subj", "/", "-addext"])
            .arg("subjectAltName=URI:spiffe://example.org/ns/a/sa/b")
            .args(newkey)
            .output()
            .expect("openssl is needed for this test");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(dir.path().join("r.pem")).unwrap()
    }

    #[test]
    fn key_algorithms_are_exactly_the_documented_ones() {
        for (newkey, name) in [
            (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
                "P-256",
            ),
            (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
                "P-384",
            ),
            (&["-newkey", "ed25519"][..], "Ed25519"),
        ] {
            let csr =
                parse_pem(&openssl_csr(newkey)).unwrap_or_else(|e| panic!("{name} refused: {e}"));
            csr.require_svid_for(&SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap())
                .unwrap();
        }
        for (newkey, says) in [
            (&["-newkey", "rsa:2048"][..], "RSA (2048 bits)"),
            (&["-newkey", "rsa:1024"][..], "RSA (1024 bits)"),
            (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
                "P-521",
            ),
            (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"][..],
                "secp256k1",
            ),
        ] {
            let err = parse_pem(&openssl_csr(newkey)).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PkiError::UnsupportedKeyAlgorithm(_)), "{msg}");
            assert!(msg.starts_with("unsupported key algorithm"), "{msg}");
            assert!(msg.contains(says), "{msg}");
            assert!(!msg.contains("proof of possession"), "{msg}");
        }
    }
}
