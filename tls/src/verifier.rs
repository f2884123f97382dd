//! `ClientCertVerifier` and `ServerCertVerifier` that enforce SPIFFE rules
//! on top of webpki chain validation against a hot-swappable bundle.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::bundle::BundleHandle;
use crate::error::TlsError;
use crate::provider::provider;
use crate::spiffe::SpiffeId;
use crate::svid::{check_svid, host_sans};

/// Which peers are accepted once their chain and SVID verified.
#[derive(Debug, Clone)]
pub enum PeerPolicy {
    /// Any SPIFFE ID of the bundle's trust domain.
    AnyInTrustDomain,
    /// Only these IDs.
    OneOf(Vec<SpiffeId>),
}

/// Called with the peer's leaf and the error when a client certificate is
/// rejected (the CA service audits refused renewals with it).
pub type RejectHook = Arc<dyn Fn(&CertificateDer<'_>, &rustls::Error) + Send + Sync>;

fn reject(e: TlsError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// SVID rules + trust domain + policy, after the chain verified.
fn check_peer(
    leaf: &CertificateDer<'_>,
    bundle: &BundleHandle,
    policy: &PeerPolicy,
) -> Result<SpiffeId, rustls::Error> {
    let id = check_svid(leaf).map_err(reject)?;
    id.require_member_of(bundle.trust_domain())
        .map_err(reject)?;
    if let PeerPolicy::OneOf(allowed) = policy {
        if !allowed.contains(&id) {
            return Err(reject(TlsError::NotSvid(format!(
                "peer {id} is not an allowed identity"
            ))));
        }
    }
    Ok(id)
}

/// Verifies client certificates (server side of mTLS).
pub struct SpiffeClientVerifier {
    bundle: BundleHandle,
    policy: PeerPolicy,
    mandatory: bool,
    on_reject: Option<RejectHook>,
}

impl std::fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .field("bundle", &self.bundle)
            .field("policy", &self.policy)
            .finish()
    }
}

impl SpiffeClientVerifier {
    /// Client certificates required and checked against `bundle`.
    pub fn new(bundle: BundleHandle, policy: PeerPolicy) -> Self {
        SpiffeClientVerifier {
            bundle,
            policy,
            mandatory: true,
            on_reject: None,
        }
    }

    /// Client certificates optional (a client without one is anonymous);
    /// one that is sent is still fully verified.
    pub fn optional(mut self) -> Self {
        self.mandatory = false;
        self
    }

    /// Calls `hook` on every rejected client certificate.
    pub fn with_reject_hook(mut self, hook: RejectHook) -> Self {
        self.on_reject = Some(hook);
        self
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints would pin a borrowed slice to one bundle generation; our
        // clients have exactly one certificate, so none are needed.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let state = self.bundle.load();
        let result = state
            .client_chain
            .verify_client_cert(end_entity, intermediates, now)
            .and_then(|_| {
                check_peer(end_entity, &self.bundle, &self.policy)
                    .map(|_| ClientCertVerified::assertion())
            });
        if let (Err(e), Some(hook)) = (&result, &self.on_reject) {
            hook(end_entity, e);
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes()
    }
}

/// Verifies server certificates (client side of mTLS) by SPIFFE ID, not
/// by DNS name.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    bundle: BundleHandle,
    policy: PeerPolicy,
    check_host_sans: bool,
}

impl SpiffeServerVerifier {
    /// Server certificates checked against `bundle` and `policy`.
    pub fn new(bundle: BundleHandle, policy: PeerPolicy) -> Self {
        SpiffeServerVerifier {
            bundle,
            policy,
            check_host_sans: false,
        }
    }

    /// Also requires, when the server's leaf carries DNS or IP SANs, that the name the client
    /// connected to (the `ServerName` given to rustls) is one of them. A leaf without host
    /// SANs is authenticated by its SPIFFE ID alone.
    pub fn check_host_sans(mut self) -> Self {
        self.check_host_sans = true;
        self
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let state = self.bundle.load();
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &state.roots,
            intermediates,
            now,
            provider().signature_verification_algorithms.all,
        )?;
        check_peer(end_entity, &self.bundle, &self.policy)?;
        if self.check_host_sans {
            let sans = host_sans(end_entity).map_err(reject)?;
            if !sans.is_empty() {
                verify_server_name(&parsed, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes()
    }
}

/// Handshake signature checks shared by both verifiers: our ring provider's
/// algorithms, whatever side of the connection we are on.
mod signatures {
    use super::provider;
    use rustls::client::danger::HandshakeSignatureValid;
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::CertificateDer;

    pub(super) fn tls12(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    pub(super) fn tls13(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    pub(super) fn schemes() -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
