//! Reading certificates (x509-parser): the SPIFFE X.509-SVID leaf rules the verifiers apply,
//! validity, serial and subject alternative names.

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{Result, TlsError};
use crate::spiffe::SpiffeId;

/// Parses one DER certificate with nothing after it.
pub fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(TlsError::BadCertificate("trailing bytes".into()));
    }
    Ok(cert)
}

/// An X.509 time as an `OffsetDateTime`.
pub fn to_time(t: x509_parser::time::ASN1Time) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|_| TlsError::BadCertificate("time out of range".into()))
}

/// The certificate's `notAfter`.
pub fn not_after(der: &[u8]) -> Result<OffsetDateTime> {
    to_time(parse(der)?.validity().not_after)
}

/// The certificate's `notBefore`.
pub fn not_before(der: &[u8]) -> Result<OffsetDateTime> {
    to_time(parse(der)?.validity().not_before)
}

/// The certificate's SubjectPublicKeyInfo (DER).
pub fn public_key_der(der: &[u8]) -> Result<Vec<u8>> {
    Ok(parse(der)?.public_key().raw.to_vec())
}

/// The certificate's serial number as lower-case hex of its DER bytes (the form the CA
/// records and revocation lists use).
pub fn serial_hex(der: &[u8]) -> Result<String> {
    Ok(hex::encode(parse(der)?.raw_serial()))
}

/// DNS names of a certificate: its DNS SANs, else its subject CNs (lower-cased).
pub fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok(cert) = parse(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = san_names(&cert)
        .into_iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    names
}

/// The DNS and IP subject alternative names of a certificate (no CN fallback).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSans {
    /// DNS SANs, lower-cased.
    pub dns: Vec<String>,
    /// IP address SANs.
    pub ips: Vec<IpAddr>,
}

impl HostSans {
    /// True when the certificate names no host at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty()
    }
}

/// Reads the DNS and IP SANs of `der`.
pub fn host_sans(der: &[u8]) -> Result<HostSans> {
    let cert = parse(der)?;
    let mut out = HostSans::default();
    for n in san_names(&cert) {
        match n {
            GeneralName::DNSName(d) => out.dns.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(raw) => {
                let ip = match raw.len() {
                    4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
                    _ => None,
                };
                out.ips.extend(ip);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn san_names<'a>(cert: &'a X509Certificate<'a>) -> Vec<GeneralName<'a>> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.clone(),
        _ => Vec::new(),
    }
}

/// Why a leaf is not an X.509-SVID (SPIFFE X509-SVID.md §4-5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvidDefect {
    /// The certificate does not parse.
    Unparsable(String),
    /// The subjectAltName extension does not parse.
    UnreadableSan,
    /// No URI SAN.
    NoUriSan,
    /// More than one URI SAN (the count).
    SeveralUriSans(usize),
    /// The URI SAN is not a valid SPIFFE ID.
    NotSpiffeId(String),
    /// The SPIFFE ID has no path (a trust domain ID).
    NoPath,
    /// `cA` is true on a leaf.
    IsCa,
    /// Key usage missing, not critical, without digitalSignature, or with keyCertSign/cRLSign.
    KeyUsage(&'static str),
}

impl fmt::Display for SvidDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvidDefect::Unparsable(e) => write!(f, "unparsable certificate: {e}"),
            SvidDefect::UnreadableSan => f.write_str("unreadable subjectAltName"),
            SvidDefect::NoUriSan => f.write_str("no URI SAN"),
            SvidDefect::SeveralUriSans(n) => write!(f, "{n} URI SANs; exactly one is allowed"),
            SvidDefect::NotSpiffeId(e) => write!(f, "URI SAN is not a SPIFFE ID: {e}"),
            SvidDefect::NoPath => f.write_str("leaf SPIFFE ID must have a path"),
            SvidDefect::IsCa => f.write_str("cA is true on a leaf"),
            SvidDefect::KeyUsage(why) => f.write_str(why),
        }
    }
}

/// Applies the X.509-SVID leaf rules and returns the SPIFFE ID: exactly one URI SAN holding
/// a SPIFFE ID with a path; not a CA; key usage present, critical, with digitalSignature and
/// without keyCertSign / cRLSign.
pub fn check_svid(der: &[u8]) -> Result<SpiffeId> {
    svid_id(der).map_err(|d| TlsError::NotSvid(d.to_string()))
}

/// How many leaves each thread keeps the reading of ([`svid_id`]): a sidecar's callers present
/// the same SVID on every connection until it is renewed, and a handshake reads its peer's leaf
/// twice (the verifier, then the connection's peer ID). Bounded: a peer sending new leaves only
/// turns the oldest out.
const READ_LEAVES: usize = 8;

type Reading = std::result::Result<SpiffeId, SvidDefect>;

thread_local! {
    /// The last [`READ_LEAVES`] leaves read on this thread (newest first) and their readings.
    static READ: std::cell::RefCell<std::collections::VecDeque<(Box<[u8]>, Reading)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

/// [`check_svid`] with the defect as a value (what verifiers report). The reading is a function
/// of the DER bytes alone: a leaf read lately on this thread (the same bytes) is not parsed
/// again (x509-parser: ~30k instructions per P-256 leaf, twice per handshake).
pub fn svid_id(der: &[u8]) -> Reading {
    // `try_with`: on a thread whose locals are being torn down, read without the memo.
    let known = READ
        .try_with(|r| {
            r.try_borrow().ok().and_then(|r| {
                r.iter()
                    .find(|(d, _)| **d == *der)
                    .map(|(_, id)| id.clone())
            })
        })
        .ok()
        .flatten();
    if let Some(reading) = known {
        return reading;
    }
    let reading = read_svid(der);
    let _ = READ.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if r.len() == READ_LEAVES {
                r.pop_back();
            }
            r.push_front((der.into(), reading.clone()));
        }
    });
    reading
}

/// Reads a leaf by the X.509-SVID rules (what [`svid_id`] remembers).
fn read_svid(der: &[u8]) -> Reading {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| SvidDefect::Unparsable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SvidDefect::Unparsable("trailing bytes".into()));
    }
    let uris: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(_) => return Err(SvidDefect::UnreadableSan),
    };
    let id = match uris.as_slice() {
        [] => return Err(SvidDefect::NoUriSan),
        [one] => SpiffeId::parse(one).map_err(|e| SvidDefect::NotSpiffeId(e.to_string()))?,
        many => return Err(SvidDefect::SeveralUriSans(many.len())),
    };
    if id.path().is_empty() {
        return Err(SvidDefect::NoPath);
    }
    if matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        return Err(SvidDefect::IsCa);
    }
    match cert.key_usage() {
        Ok(Some(ku)) => {
            if !ku.critical {
                return Err(SvidDefect::KeyUsage("key usage is not critical"));
            }
            if !ku.value.digital_signature() {
                return Err(SvidDefect::KeyUsage("key usage lacks digitalSignature"));
            }
            if ku.value.key_cert_sign() || ku.value.crl_sign() {
                return Err(SvidDefect::KeyUsage("key usage has keyCertSign or cRLSign"));
            }
        }
        _ => return Err(SvidDefect::KeyUsage("no key usage extension")),
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::test_ca::{dns, uri, TestCa};

    #[test]
    fn remembered_readings_are_each_leafs_own_reading() {
        let ca = TestCa::new();
        // More distinct leaves than are remembered, valid and defective, each read in turns
        // (hits, misses and leaves turned out): every answer is that leaf's own reading.
        let leaves: Vec<Vec<u8>> = (0..3 * READ_LEAVES)
            .map(|i| {
                let sans = match i % 4 {
                    0 => vec![uri(&format!("spiffe://mesh.local/ns/a/sa/s{i}"))],
                    1 => vec![dns("svc.example")],
                    2 => vec![
                        uri(&format!("spiffe://mesh.local/ns/a/sa/s{i}")),
                        uri("spiffe://mesh.local/ns/b/sa/x"),
                    ],
                    _ => vec![uri(&format!("spiffe://other.domain/sa/s{i}"))],
                };
                ca.leaf(sans, time::Duration::hours(1)).0[0].to_vec()
            })
            .collect();
        for round in 0..3 {
            for (i, der) in leaves.iter().enumerate() {
                // Twice in a row (a hit), then again after the others (a miss, turned out).
                for _ in 0..2 {
                    assert_eq!(svid_id(der), read_svid(der), "leaf {i}, round {round}");
                }
            }
            for der in leaves.iter().take(READ_LEAVES).rev() {
                assert_eq!(svid_id(der), read_svid(der));
            }
        }
        // The readings differ from leaf to leaf: a memo answering another leaf's would fail.
        assert!(svid_id(&leaves[0]).is_ok() && svid_id(&leaves[1]).is_err());
        assert_ne!(svid_id(&leaves[0]), svid_id(&leaves[4]));
        READ.with(|r| assert!(r.borrow().len() <= READ_LEAVES));
    }
}
