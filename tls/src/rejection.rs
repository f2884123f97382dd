//! Why a peer certificate was refused, as a value a policy layer can log and count.
//!
//! The verifiers return rustls errors (rustls needs them to pick the TLS alert): chain problems
//! stay rustls' own (`UnknownIssuer`, `Expired`...: the peer gets the matching alert), and
//! revocation and SPIFFE problems are `CertificateError::Other` carrying a [`Rejection`] (the
//! peer gets `bad_certificate`). [`Rejection::classify`] reads any of them back, including from the
//! `io::Error` a tokio-rustls handshake returns.

use std::fmt;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

use crate::revocation::Revoked;
use crate::spiffe::SpiffeId;
use crate::svid::SvidDefect;

/// Why a peer was refused during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The client sent no certificate where one is required.
    NoClientCertificate,
    /// The chain does not lead to a root of the trust bundle (or a signature in it is bad).
    UnknownCa,
    /// The certificate (or one of its chain) is past its `notAfter`.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// A certificate of the chain is revoked (ID or serial).
    Revoked(Revoked),
    /// The leaf has more than one URI SAN (the count).
    SeveralUriSans(usize),
    /// The leaf has no URI SAN.
    NoUriSan,
    /// The leaf's URI SAN is not a SPIFFE ID.
    NotSpiffeId(String),
    /// The leaf breaks another X.509-SVID rule (CA flag, key usage, no path...).
    NotSvid(SvidDefect),
    /// The peer's SPIFFE ID is outside the bundle's trust domain.
    ForeignTrustDomain { id: SpiffeId, trust_domain: String },
    /// The peer is valid but not one of the identities this verifier admits.
    NotAllowed(SpiffeId),
    /// The server's certificate names hosts, none of them the one connected to.
    HostMismatch,
    /// Any other certificate problem (the rustls text).
    Other(String),
}

impl Rejection {
    /// Stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NoClientCertificate => "no_client_certificate",
            Rejection::UnknownCa => "unknown_ca",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Revoked(_) => "revoked",
            Rejection::SeveralUriSans(_) => "several_uri_sans",
            Rejection::NoUriSan => "no_uri_san",
            Rejection::NotSpiffeId(_) => "not_spiffe_id",
            Rejection::NotSvid(_) => "not_svid",
            Rejection::ForeignTrustDomain { .. } => "foreign_trust_domain",
            Rejection::NotAllowed(_) => "not_allowed",
            Rejection::HostMismatch => "host_mismatch",
            Rejection::Other(_) => "other",
        }
    }

    /// The rustls error a verifier returns for this rejection.
    pub fn into_rustls(self) -> rustls::Error {
        let cert = match self {
            Rejection::NoClientCertificate => return rustls::Error::NoCertificatesPresented,
            Rejection::UnknownCa => CertificateError::UnknownIssuer,
            Rejection::Expired => CertificateError::Expired,
            Rejection::NotYetValid => CertificateError::NotValidYet,
            Rejection::HostMismatch => CertificateError::NotValidForName,
            other => CertificateError::Other(OtherError(Arc::new(other))),
        };
        rustls::Error::InvalidCertificate(cert)
    }

    /// Reads a verifier's (or rustls') error back as a rejection.
    pub fn classify(err: &rustls::Error) -> Rejection {
        match err {
            rustls::Error::NoCertificatesPresented => Rejection::NoClientCertificate,
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::Other(OtherError(inner)) => {
                    match inner.downcast_ref::<Rejection>() {
                        Some(r) => r.clone(),
                        None => Rejection::Other(inner.to_string()),
                    }
                }
                CertificateError::UnknownIssuer
                | CertificateError::BadSignature
                | CertificateError::UnhandledCriticalExtension => Rejection::UnknownCa,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Rejection::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Rejection::NotYetValid
                }
                CertificateError::Revoked => Rejection::Other("revoked".into()),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Rejection::HostMismatch,
                other => Rejection::Other(format!("{other:?}")),
            },
            other => Rejection::Other(other.to_string()),
        }
    }

    /// Reads the rejection out of a failed tokio-rustls handshake, if it was one.
    pub fn from_io(err: &std::io::Error) -> Option<Rejection> {
        let inner = err.get_ref()?.downcast_ref::<rustls::Error>()?;
        match inner {
            rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
                Some(Rejection::classify(inner))
            }
            _ => None,
        }
    }

    /// The rejection for an X.509-SVID defect.
    pub fn from_defect(d: SvidDefect) -> Rejection {
        match d {
            SvidDefect::NoUriSan => Rejection::NoUriSan,
            SvidDefect::SeveralUriSans(n) => Rejection::SeveralUriSans(n),
            SvidDefect::NotSpiffeId(why) => Rejection::NotSpiffeId(why),
            other => Rejection::NotSvid(other),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoClientCertificate => f.write_str("no client certificate"),
            Rejection::UnknownCa => f.write_str("certificate does not chain to the trust bundle"),
            Rejection::Expired => f.write_str("certificate expired"),
            Rejection::NotYetValid => f.write_str("certificate not valid yet"),
            Rejection::Revoked(r) => write!(f, "revoked: {r}"),
            Rejection::SeveralUriSans(n) => {
                write!(f, "{n} URI SANs; an X.509-SVID has exactly one")
            }
            Rejection::NoUriSan => f.write_str("no URI SAN; an X.509-SVID has exactly one"),
            Rejection::NotSpiffeId(why) => write!(f, "URI SAN is not a SPIFFE ID: {why}"),
            Rejection::NotSvid(d) => write!(f, "not a valid X.509-SVID: {d}"),
            Rejection::ForeignTrustDomain { id, trust_domain } => {
                write!(f, "SPIFFE ID {id} is outside trust domain {trust_domain}")
            }
            Rejection::NotAllowed(id) => write!(f, "peer {id} is not an allowed identity"),
            Rejection::HostMismatch => {
                f.write_str("certificate does not name the host connected to")
            }
            Rejection::Other(why) => write!(f, "certificate refused: {why}"),
        }
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_round_trip_through_rustls_errors() {
        let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
        for r in [
            Rejection::NoClientCertificate,
            Rejection::UnknownCa,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::Revoked(Revoked::SpiffeId(id.clone())),
            Rejection::Revoked(Revoked::Serial("0102".into())),
            Rejection::SeveralUriSans(2),
            Rejection::NoUriSan,
            Rejection::ForeignTrustDomain {
                id: id.clone(),
                trust_domain: "other.org".into(),
            },
            Rejection::NotAllowed(id),
            Rejection::HostMismatch,
        ] {
            let back = Rejection::classify(&r.clone().into_rustls());
            assert_eq!(back, r);
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, r.clone().into_rustls());
            assert_eq!(Rejection::from_io(&io), Some(r));
        }
        assert_eq!(
            Rejection::classify(&rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: rustls_pki_types::UnixTime::now(),
                    not_after: rustls_pki_types::UnixTime::now(),
                }
            ))
            .reason(),
            "expired"
        );
    }
}
