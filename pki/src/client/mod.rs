//! The client side, embedded by the sidecar and the edge:
//! [`CaClient`] speaks to the CA service; [`SvidSource`] holds the current
//! SVID, renews it at about 2/3 of its life (with jitter), backs off while
//! the CA is down, keeps serving the current certificate until it expires,
//! and publishes each new rustls config on a watch channel.

mod ca_client;
mod edge;
mod source;

pub use ca_client::CaClient;
pub use edge::EdgeCertSource;
pub use source::{SourceSettings, SvidSource, SvidStatus};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{PkiError, Result};

/// Parses every certificate of a PEM bundle or chain.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(PkiError::BadCertificate("no CERTIFICATE in PEM".into()));
    }
    Ok(certs)
}
