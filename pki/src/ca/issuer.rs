//! The active issuing CA: signs workload SVIDs and edge certificates.
//! Built once when an intermediate becomes active and shared read-only
//! (`Arc`), so issuance takes no lock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::profiles::{self, MAX_LIFETIME};
use crate::error::{PkiError, Result};
use crate::spiffe::{SpiffeId, TrustDomain};

/// How far back `notBefore` is set, to tolerate small clock skew between
/// the CA and its peers.
pub const BACKDATE: Duration = Duration::from_secs(30);

/// A certificate just issued, with its chain up to (not including) the root.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// Leaf first, then the intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// Expiry of the leaf.
    pub not_after: OffsetDateTime,
    /// Serial number (hex).
    pub serial: String,
    /// Serial of the root the chain leads to.
    pub root_serial: String,
}

/// The signing half of an intermediate CA.
pub struct Issuer {
    trust_domain: TrustDomain,
    dns_suffixes: Vec<String>,
    signer: rcgen::Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    not_after: OffsetDateTime,
    serial: String,
    root_serial: String,
    /// Latest `notAfter` handed out, so a root is only retired after every
    /// leaf chaining to it has expired.
    max_issued_not_after: AtomicI64,
    /// What leaves issued before this process started may live until.
    assumed_issued_until: i64,
}

impl Issuer {
    /// Builds an issuer from a stored intermediate certificate and its key.
    pub(crate) fn new(
        trust_domain: TrustDomain,
        dns_suffixes: Vec<String>,
        ca_der: CertificateDer<'static>,
        ca_key: KeyPair,
        root_serial: String,
        assume_issued_until: OffsetDateTime,
    ) -> Result<Self> {
        // The issuer's name and key id are parsed from the stored
        // certificate so the issuer name in each leaf is byte-identical to
        // the intermediate's subject. A key that is not the certificate's
        // would sign leaves that never verify: refused here, at load.
        crate::inspect::require_key_matches(&ca_der, &ca_key, "intermediate")?;
        let not_after = crate::inspect::not_after(&ca_der)?;
        let serial = crate::inspect::serial_hex(&ca_der)?;
        let signer = rcgen::Issuer::from_ca_cert_der(&ca_der, ca_key)?;
        Ok(Issuer {
            trust_domain,
            dns_suffixes,
            signer,
            ca_der,
            not_after,
            serial,
            root_serial,
            max_issued_not_after: AtomicI64::new(0),
            assumed_issued_until: assume_issued_until.unix_timestamp(),
        })
    }

    /// Issues an X.509-SVID for `id` binding `public_key`, valid for `ttl`.
    pub fn issue_svid(
        &self,
        id: &SpiffeId,
        public_key: &impl PublicKeyData,
        ttl: Duration,
    ) -> Result<IssuedCert> {
        id.require_member_of(&self.trust_domain)?;
        require_not_reserved(id)?;
        let (serial, serial_hex) = profiles::random_serial()?;
        let (nb, na) = self.validity(ttl)?;
        let params = profiles::svid(id, serial, nb, na)?;
        self.sign(params, public_key, serial_hex)
    }

    /// Issues the CA service's own SVID. Not counted towards the old
    /// root's drain: the service replaces it at every intermediate rotation.
    pub(crate) fn issue_service_svid(
        &self,
        id: &SpiffeId,
        names: &profiles::ServiceNames,
        public_key: &impl PublicKeyData,
        ttl: Duration,
    ) -> Result<IssuedCert> {
        for name in &names.dns {
            if !self.dns_suffixes.is_empty()
                && !profiles::dns_name_permitted(name, &self.dns_suffixes)
            {
                return Err(PkiError::DnsNameNotPermitted {
                    name: name.clone(),
                    suffixes: self.dns_suffixes.join(", "),
                });
            }
        }
        let (serial, serial_hex) = profiles::random_serial()?;
        let (nb, na) = self.validity(ttl)?;
        let params = profiles::service(id, names, serial, nb, na)?;
        let cert = params.signed_by(public_key, &self.signer)?;
        Ok(IssuedCert {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            not_after: na,
            serial: serial_hex,
            root_serial: self.root_serial.clone(),
        })
    }

    /// Issues an edge server certificate for `dns_names`.
    pub fn issue_edge(
        &self,
        dns_names: &[String],
        public_key: &impl PublicKeyData,
        ttl: Duration,
    ) -> Result<IssuedCert> {
        if dns_names.is_empty() {
            return Err(PkiError::CsrRefused(
                "an edge certificate needs at least one DNS name".into(),
            ));
        }
        for name in dns_names {
            if !profiles::dns_name_permitted(name, &self.dns_suffixes) {
                return Err(PkiError::DnsNameNotPermitted {
                    name: name.clone(),
                    suffixes: if self.dns_suffixes.is_empty() {
                        "none configured: pass --dns-suffix at init".into()
                    } else {
                        self.dns_suffixes.join(", ")
                    },
                });
            }
        }
        let (serial, serial_hex) = profiles::random_serial()?;
        let (nb, na) = self.validity(ttl)?;
        let params = profiles::edge_server(dns_names, serial, nb, na)?;
        self.sign(params, public_key, serial_hex)
    }

    fn validity(&self, ttl: Duration) -> Result<(OffsetDateTime, OffsetDateTime)> {
        check_lifetime(ttl)?;
        let now = OffsetDateTime::now_utc();
        // A leaf never outlives its issuer (RFC 5280 path validation would
        // reject it after the issuer expires anyway).
        let na = (now + ttl).min(self.not_after);
        if na <= now {
            return Err(PkiError::CertificateNotValidNow(
                "the issuing CA has expired".into(),
            ));
        }
        Ok((now - BACKDATE, na))
    }

    fn sign(
        &self,
        params: CertificateParams,
        public_key: &impl PublicKeyData,
        serial: String,
    ) -> Result<IssuedCert> {
        let not_after = params.not_after;
        let cert = params.signed_by(public_key, &self.signer)?;
        self.max_issued_not_after
            .fetch_max(not_after.unix_timestamp(), Ordering::Relaxed);
        Ok(IssuedCert {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            not_after,
            serial,
            root_serial: self.root_serial.clone(),
        })
    }

    /// Signs arbitrary params (tests build non-compliant certificates).
    #[cfg(test)]
    pub(crate) fn sign_raw(
        &self,
        params: CertificateParams,
        public_key: &impl PublicKeyData,
    ) -> Result<IssuedCert> {
        self.sign(params, public_key, String::new())
    }

    /// The intermediate certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The intermediate's expiry.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The intermediate's serial (hex).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Serial of the root this intermediate chains to.
    pub fn root_serial(&self) -> &str {
        &self.root_serial
    }

    /// The trust domain this issuer serves.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Latest expiry of any leaf issued (or assumed issued) by this issuer.
    pub fn max_issued_not_after(&self) -> OffsetDateTime {
        let ts = self
            .max_issued_not_after
            .load(Ordering::Relaxed)
            .max(self.assumed_issued_until);
        OffsetDateTime::from_unix_timestamp(ts).unwrap_or(self.not_after)
    }

    /// Latest expiry of the leaves this process issued.
    pub fn issued_not_after(&self) -> OffsetDateTime {
        let ts = self.max_issued_not_after.load(Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp(ts).unwrap_or(self.not_after)
    }
}

/// Path of the CA service's own identity, `spiffe://DOMAIN/rampart/pki`.
pub const SERVICE_PATH: &str = "/rampart/pki";

/// Refuses the identities no workload may hold: the bare trust-domain ID
/// (no path) and anything under the CA's own `/rampart/` namespace (its
/// service identity `spiffe://DOMAIN/rampart/pki` above all).
pub fn require_not_reserved(id: &SpiffeId) -> Result<()> {
    let path = id.path();
    let why = if path.is_empty() || path == "/" {
        "the bare trust-domain ID names the whole domain"
    } else if path == SERVICE_PATH {
        "the CA's own identity"
    } else if path.starts_with("/rampart/") {
        "the /rampart/ path is reserved for Rampart's own services"
    } else {
        return Ok(());
    };
    Err(PkiError::ReservedIdentity {
        id: id.to_string(),
        why,
    })
}

/// Refuses zero lifetimes and lifetimes over the 90-day cap.
pub fn check_lifetime(ttl: Duration) -> Result<()> {
    if ttl.is_zero() {
        return Err(PkiError::LifetimeZero);
    }
    if ttl > MAX_LIFETIME {
        return Err(PkiError::LifetimeOverCap {
            requested_secs: ttl.as_secs(),
            max_secs: MAX_LIFETIME.as_secs(),
        });
    }
    Ok(())
}
