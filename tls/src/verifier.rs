//! `ClientCertVerifier` and `ServerCertVerifier` that enforce SPIFFE rules on top of webpki
//! chain validation against a hot-swappable bundle.
//!
//! Order of checks, the same on both sides: the chain must lead to a root of the bundle and be
//! valid now (webpki), the leaf must be an X.509-SVID of the bundle's trust domain, no
//! certificate of the chain nor the SPIFFE ID may be on the bundle's revocation list, and the
//! ID must be admitted by the [`PeerPolicy`]. Every refusal is a [`Rejection`] (see
//! [`Rejection::classify`]) and is passed to the verifier's [`RejectHook`] if it has one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::bundle::{BundleHandle, BundleState};
use crate::provider::provider;
use crate::rejection::Rejection;
use crate::spiffe::SpiffeId;
use crate::svid::{host_sans, svid_id};

/// Handshake signature checks shared by both verifiers: our ring provider's
/// algorithms, whatever side of the connection we are on.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
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

        fn verify_tls13_signature(
            &self,
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

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Which peers are accepted once their chain and SVID verified.
#[derive(Debug, Clone)]
pub enum PeerPolicy {
    /// Any SPIFFE ID of the bundle's trust domain.
    AnyInTrustDomain,
    /// Only these IDs.
    OneOf(Vec<SpiffeId>),
}

/// Called with the peer's leaf and the rustls error when a peer certificate is rejected (the
/// CA service audits refused renewals with it; a sidecar counts denials). Read the typed
/// reason with [`Rejection::classify`].
pub type RejectHook = Arc<dyn Fn(&CertificateDer<'_>, &rustls::Error) + Send + Sync>;

/// What both verifiers check a peer against, and whom they tell of a refusal.
#[derive(derive_more::Debug)]
struct PeerChecks {
    bundle: BundleHandle,
    policy: PeerPolicy,
    #[debug("{}", on_reject.is_some())]
    on_reject: Option<RejectHook>,
}

impl PeerChecks {
    fn new(bundle: BundleHandle, policy: PeerPolicy) -> Self {
        PeerChecks {
            bundle,
            policy,
            on_reject: None,
        }
    }

    /// SVID rules, trust domain, revocation and policy, after the chain verified.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        state: &BundleState,
    ) -> Result<SpiffeId, Rejection> {
        let id = svid_id(end_entity).map_err(Rejection::from_defect)?;
        let trust_domain = self.bundle.trust_domain();
        if !id.is_member_of(trust_domain) {
            return Err(Rejection::ForeignTrustDomain {
                id,
                trust_domain: trust_domain.to_string(),
            });
        }
        let chain: Vec<&[u8]> = std::iter::once(end_entity.as_ref())
            .chain(intermediates.iter().map(|c| c.as_ref()))
            .collect();
        state
            .revoked
            .check(&id, &chain)
            .map_err(Rejection::Revoked)?;
        if let PeerPolicy::OneOf(allowed) = &self.policy {
            if !allowed.contains(&id) {
                return Err(Rejection::NotAllowed(id));
            }
        }
        Ok(id)
    }

    /// Runs the hook on a refusal and hands the error back.
    fn report(&self, leaf: &CertificateDer<'_>, e: rustls::Error) -> rustls::Error {
        if let Some(hook) = &self.on_reject {
            hook(leaf, &e);
        }
        e
    }
}

/// Verifies client certificates (server side of mTLS).
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    checks: PeerChecks,
    mandatory: bool,
}

impl SpiffeClientVerifier {
    /// Client certificates required and checked against `bundle`.
    pub fn new(bundle: BundleHandle, policy: PeerPolicy) -> Self {
        SpiffeClientVerifier {
            checks: PeerChecks::new(bundle, policy),
            mandatory: true,
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
        self.checks.on_reject = Some(hook);
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
        let state = self.checks.bundle.load();
        state
            .client_chain
            .verify_client_cert(end_entity, intermediates, now)
            .and_then(|_| {
                self.checks
                    .check(end_entity, intermediates, &state)
                    .map_err(Rejection::into_rustls)
            })
            .map(|_| ClientCertVerified::assertion())
            .map_err(|e| self.checks.report(end_entity, e))
    }

    signature_checks!();
}

/// Verifies server certificates (client side of mTLS) by SPIFFE ID, not
/// by DNS name.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    checks: PeerChecks,
    check_host_sans: bool,
}

impl SpiffeServerVerifier {
    /// Server certificates checked against `bundle` and `policy`.
    pub fn new(bundle: BundleHandle, policy: PeerPolicy) -> Self {
        SpiffeServerVerifier {
            checks: PeerChecks::new(bundle, policy),
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

    /// Calls `hook` on every rejected server certificate.
    pub fn with_reject_hook(mut self, hook: RejectHook) -> Self {
        self.checks.on_reject = Some(hook);
        self
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let state = self.checks.bundle.load();
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &state.roots,
            intermediates,
            now,
            provider().signature_verification_algorithms.all,
        )?;
        self.checks
            .check(end_entity, intermediates, &state)
            .map_err(Rejection::into_rustls)?;
        if self.check_host_sans {
            let names_hosts = host_sans(end_entity).is_ok_and(|s| !s.is_empty());
            if names_hosts && verify_server_name(&parsed, server_name).is_err() {
                return Err(Rejection::HostMismatch.into_rustls());
            }
        }
        Ok(())
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
        self.verify(end_entity, intermediates, server_name, now)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|e| self.checks.report(end_entity, e))
    }

    signature_checks!();
}
