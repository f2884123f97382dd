//! Reading certificates (x509-parser): reports for `inspect`. The SPIFFE X.509-SVID checks and
//! expiry helpers live in `rampart_tls::svid` and are re-exported here.

use std::fmt;

use ring::digest::{digest, SHA256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use crate::error::{PkiError, Result};

pub use rampart_tls::svid::{check_svid, not_after, not_before, public_key_der, serial_hex};
use rampart_tls::svid::{parse, to_time};

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
