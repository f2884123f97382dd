//! Certificate profiles: what each kind of certificate this CA makes contains.
//! Kept in one place so a reviewer can check every field against the rules.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::error::{PkiError, Result};
use crate::spiffe::{SpiffeId, TrustDomain};

/// Lifetime cap for any certificate this CA issues below the root.
pub const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// A random positive 128-bit serial number, and its hex form.
pub fn random_serial() -> Result<(SerialNumber, String)> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Crypto("random source"))?;
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // keep the full 16 bytes (no leading-zero stripping)
    Ok((SerialNumber::from_slice(&bytes), hex::encode(bytes)))
}

fn validity(params: &mut CertificateParams, not_before: OffsetDateTime, not_after: OffsetDateTime) {
    params.not_before = not_before;
    params.not_after = not_after;
}

/// Root CA: self-signed, unconstrained path length 1 (one intermediate).
pub fn root(
    td: &TrustDomain,
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> CertificateParams {
    ca_params(format!("Rampart root CA {td}"), 1, serial, nb, na)
}

/// A CA certificate: subject `O=Rampart, CN=NAME NOTBEFORE`, path length
/// `path_len`, key usage keyCertSign + cRLSign.
fn ca_params(
    name: String,
    path_len: u8,
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Rampart");
    dn.push(
        DnType::CommonName,
        format!("{name} {}", nb.unix_timestamp()),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(serial);
    validity(&mut p, nb, na);
    p
}

/// Intermediate issuing CA: path length 0, name-constrained to the DNS
/// suffixes. URI name constraints (`spiffe://DOMAIN/`) cannot be expressed:
/// rcgen 0.13's `GeneralSubtree` has no URI variant, and rustls-webpki 0.103
/// rejects every URI SAN below a CA carrying a URI constraint ("fail closed").
/// The trust domain is therefore enforced by the CA at issuance and by our
/// verifiers at handshake time.
pub fn intermediate(
    td: &TrustDomain,
    dns_suffixes: &[String],
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> CertificateParams {
    let mut p = ca_params(format!("Rampart issuing CA {td}"), 0, serial, nb, na);
    if !dns_suffixes.is_empty() {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: dns_suffixes
                .iter()
                .map(|s| GeneralSubtree::DnsName(s.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    p.use_authority_key_identifier_extension = true;
    p
}

/// SPIFFE X.509-SVID leaf (X509-SVID.md §4, §5): exactly one URI SAN,
/// `cA` false, key usage digitalSignature (critical), EKU serverAuth +
/// clientAuth.
pub fn svid(
    id: &SpiffeId,
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    let uri = rcgen::string::Ia5String::try_from(id.as_str()).map_err(|_| {
        rampart_tls::TlsError::InvalidSpiffeId {
            id: id.to_string(),
            why: "not IA5",
        }
    })?;
    p.subject_alt_names = vec![SanType::URI(uri)];
    p.is_ca = IsCa::ExplicitNoCa; // rcgen >= 0.14.10: encoded as an empty SEQUENCE (DER)
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(serial);
    validity(&mut p, nb, na);
    Ok(p)
}

/// The DNS names and IP addresses the CA service is reached at: its own
/// certificate carries them next to its SPIFFE ID, so standard tools
/// (`curl --cacert bundle.pem`, `openssl s_client -verify_hostname`) verify
/// it. Parsed once from `server_names` in the service config.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct ServiceNames {
    /// DNS names (lower case, no trailing dot).
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<std::net::IpAddr>,
}

impl ServiceNames {
    /// Each entry is an IP address or a DNS name.
    pub fn parse(names: &[String]) -> std::result::Result<Self, String> {
        let mut out = ServiceNames::default();
        for n in names {
            if let Ok(ip) = n.parse::<std::net::IpAddr>() {
                out.ips.push(ip);
                continue;
            }
            let name = n.trim_end_matches('.').to_ascii_lowercase();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
                return Err(format!("{n:?} is neither an IP address nor a DNS name"));
            }
            out.dns.push(name);
        }
        Ok(out)
    }

    /// True when no name is configured.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty()
    }
}

impl TryFrom<Vec<String>> for ServiceNames {
    type Error = String;
    fn try_from(v: Vec<String>) -> std::result::Result<Self, String> {
        ServiceNames::parse(&v)
    }
}

/// The CA service's certificate: its SVID plus the DNS / IP SANs it is
/// reached at.
pub fn service(
    id: &SpiffeId,
    names: &ServiceNames,
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut p = svid(id, serial, nb, na)?;
    for dns in &names.dns {
        let n = rcgen::string::Ia5String::try_from(dns.as_str())
            .map_err(|_| PkiError::CsrRefused(format!("DNS name {dns:?} is not IA5")))?;
        p.subject_alt_names.push(SanType::DnsName(n));
    }
    for ip in &names.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(p)
}

/// Edge server certificate: DNS SANs, serverAuth only.
pub fn edge_server(
    dns_names: &[String],
    serial: SerialNumber,
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(first) = dns_names.first().filter(|n| n.len() <= 64) {
        dn.push(DnType::CommonName, first.clone());
    }
    p.distinguished_name = dn;
    p.subject_alt_names = dns_names
        .iter()
        .map(|n| {
            rcgen::string::Ia5String::try_from(n.as_str())
                .map(SanType::DnsName)
                .map_err(|_| PkiError::CsrRefused(format!("DNS name {n:?} is not IA5")))
        })
        .collect::<Result<_>>()?;
    p.is_ca = IsCa::ExplicitNoCa; // rcgen >= 0.14.10: encoded as an empty SEQUENCE (DER)
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(serial);
    validity(&mut p, nb, na);
    Ok(p)
}

/// True when `name` equals a suffix or is a subdomain of it.
pub fn dns_name_permitted(name: &str, suffixes: &[String]) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    suffixes.iter().any(|s| {
        let s = s.trim_start_matches('.').to_ascii_lowercase();
        name == s || name.ends_with(&format!(".{s}"))
    })
}
