//! Reading certificates (x509-parser): reports for `inspect`, the SPIFFE
//! X.509-SVID checks the verifiers apply, and expiry helpers.

use std::fmt;

use ring::digest::{digest, SHA256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{PkiError, Result};
use crate::spiffe::SpiffeId;

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::BadCertificate("trailing bytes".into()));
    }
    Ok(cert)
}

fn to_time(t: x509_parser::time::ASN1Time) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|_| PkiError::BadCertificate("time out of range".into()))
}

/// The certificate's `notAfter`.
pub fn not_after(der: &[u8]) -> Result<OffsetDateTime> {
    to_time(parse(der)?.validity().not_after)
}

/// The certificate's SubjectPublicKeyInfo (DER).
pub fn public_key_der(der: &[u8]) -> Result<Vec<u8>> {
    Ok(parse(der)?.public_key().raw.to_vec())
}

/// The certificate's serial number (hex of its content octets).
pub fn serial_hex(der: &[u8]) -> Result<String> {
    Ok(hex::encode(parse(der)?.raw_serial()))
}

/// Refuses a key that is not the one certified by `der` (e.g. a root key
/// placed in an intermediate's file): such a CA would sign certificates
/// that never verify.
pub fn require_key_matches(der: &[u8], key: &impl rcgen::PublicKeyData, what: &str) -> Result<()> {
    if public_key_der(der)? != key.subject_public_key_info() {
        return Err(PkiError::KeyMismatch(format!(
            "the {what} key does not belong to the {what} certificate (serial {})",
            serial_hex(der)?
        )));
    }
    Ok(())
}

/// The certificate's `notBefore`.
pub fn not_before(der: &[u8]) -> Result<OffsetDateTime> {
    to_time(parse(der)?.validity().not_before)
}

/// Applies the X.509-SVID leaf rules (SPIFFE X509-SVID.md §4-5) and returns
/// the SPIFFE ID: exactly one URI SAN holding a SPIFFE ID with a path; not
/// a CA; key usage present, critical, with digitalSignature and without
/// keyCertSign / cRLSign.
pub fn check_svid(der: &[u8]) -> Result<SpiffeId> {
    let cert = parse(der)?;
    let not_svid = |why: &str| PkiError::NotSvid(why.to_string());
    let uris: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| {
                if let GeneralName::URI(u) = n {
                    Some(*u)
                } else {
                    None
                }
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(_) => return Err(not_svid("unreadable subjectAltName")),
    };
    let id = match uris.as_slice() {
        [] => return Err(not_svid("no URI SAN")),
        [one] => SpiffeId::parse(one).map_err(|e| PkiError::NotSvid(e.to_string()))?,
        many => {
            return Err(PkiError::NotSvid(format!(
                "{} URI SANs; exactly one is allowed",
                many.len()
            )))
        }
    };
    if id.path().is_empty() {
        return Err(not_svid("leaf SPIFFE ID must have a path"));
    }
    if matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        return Err(not_svid("cA is true on a leaf"));
    }
    match cert.key_usage() {
        Ok(Some(ku)) => {
            if !ku.critical {
                return Err(not_svid("key usage is not critical"));
            }
            if !ku.value.digital_signature() {
                return Err(not_svid("key usage lacks digitalSignature"));
            }
            if ku.value.key_cert_sign() || ku.value.crl_sign() {
                return Err(not_svid("key usage has keyCertSign or cRLSign"));
            }
        }
        _ => return Err(not_svid("no key usage extension")),
    }
    Ok(id)
}

/// What `rampart-pki inspect` shows.
#[derive(Debug)]
pub struct CertReport {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub subject_alt_names: Vec<String>,
    pub is_ca: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub seconds_left: i64,
    pub sha256_fingerprint: String,
    /// `Ok(id)` when the certificate meets the X.509-SVID rules.
    pub svid: std::result::Result<String, String>,
    /// When a renewing client replaces it (2/3 of its life).
    pub rotation_due: OffsetDateTime,
}

/// Builds a report for one DER certificate.
pub fn inspect(der: &[u8]) -> Result<CertReport> {
    let cert = parse(der)?;
    let nb = to_time(cert.validity().not_before)?;
    let na = to_time(cert.validity().not_after)?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
        _ => Vec::new(),
    };
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    Ok(CertReport {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial()),
        subject_alt_names: sans,
        is_ca,
        not_before: nb,
        not_after: na,
        seconds_left: (na - OffsetDateTime::now_utc()).whole_seconds(),
        sha256_fingerprint: fingerprint(der),
        svid: if is_ca {
            Err("CA certificate".into())
        } else {
            check_svid(der)
                .map(|id| id.to_string())
                .map_err(|e| e.to_string())
        },
        rotation_due: nb + (na - nb) * (2.0 / 3.0),
    })
}

/// SHA-256 fingerprint, colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let d = digest(&SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::IPAddress(ip) => format!("IP:{}", hex::encode(ip)),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for CertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "subject:       {}", self.subject)?;
        writeln!(f, "issuer:        {}", self.issuer)?;
        writeln!(f, "serial:        {}", self.serial)?;
        writeln!(f, "SANs:          {}", self.subject_alt_names.join(", "))?;
        writeln!(f, "CA:            {}", self.is_ca)?;
        writeln!(f, "not before:    {}", self.not_before)?;
        writeln!(f, "not after:     {}", self.not_after)?;
        let left = if self.seconds_left > 0 {
            format!("{}s", self.seconds_left)
        } else {
            "EXPIRED".into()
        };
        writeln!(f, "time left:     {left}")?;
        writeln!(f, "SHA-256:       {}", self.sha256_fingerprint)?;
        match &self.svid {
            Ok(id) => writeln!(f, "X.509-SVID:    yes ({id})")?,
            Err(why) => writeln!(f, "X.509-SVID:    no ({why})")?,
        }
        write!(f, "rotation due:  {}", self.rotation_due)
    }
}
