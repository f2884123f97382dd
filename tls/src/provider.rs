//! The one crypto provider of the workspace (ring) and the TLS profiles built on it.
//!
//! Suites are chosen by their IANA [`CipherSuite`] values, never by `Debug` names, so a rustls
//! upgrade that renames or adds a suite cannot widen a profile silently: a suite that is not in
//! a profile's list is not offered.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::{
    CipherSuite, ClientConfig, ConfigBuilder, ServerConfig, SupportedProtocolVersion, WantsVerifier,
};

use crate::error::Result;

/// TLS 1.3 suites: all AEAD, all with (EC)DHE key exchange.
const TLS13_SUITES: &[CipherSuite] = &[
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// The mesh's TLS 1.3 suites: AES-128-GCM first. Its SHA-256 transcript and key schedule run
/// on the CPU's SHA extensions where SHA-384 has none, and each record takes 10 AES rounds
/// instead of 14 (what BoringSSL and Go prefer too; the CA's listener does the same).
const MESH_SUITES: &[CipherSuite] = &[
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// TLS 1.3 suites, then the TLS 1.2 suites with ECDHE key exchange and an AEAD cipher.
const INTERMEDIATE_SUITES: &[CipherSuite] = &[
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// ring limited to `allowed` suites, in the order of `allowed` (most preferred first).
fn ring_with(allowed: &[CipherSuite]) -> CryptoProvider {
    let base = rustls::crypto::ring::default_provider();
    let mut cipher_suites: Vec<_> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| allowed.contains(&s.suite()))
        .collect();
    cipher_suites.sort_by_key(|s| allowed.iter().position(|a| *a == s.suite()));
    CryptoProvider {
        cipher_suites,
        ..base
    }
}

/// The workspace's crypto provider: ring with TLS 1.3 suites and the ECDHE + AEAD TLS 1.2
/// suites (the `intermediate` set), built once. Verifiers use its signature algorithms.
pub fn provider() -> Arc<CryptoProvider> {
    Profile::Intermediate.provider()
}

/// Installs [`provider`] as the process default, for libraries (Pingora) that build rustls
/// configs without being handed a provider. Returns false when a default was already
/// installed (by an earlier call, or by a test harness).
pub fn install_default_provider() -> bool {
    CryptoProvider::install_default((*provider()).clone()).is_ok()
}

/// A TLS profile: which protocol versions and cipher suites a config offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// TLS 1.3 only (Mozilla "modern"): a TLS 1.2 ClientHello fails the handshake.
    Modern,
    /// TLS 1.3, and TLS 1.2 with ECDHE key exchange and AEAD suites only (Mozilla
    /// "intermediate").
    Intermediate,
    /// Sidecar-to-sidecar and workload-to-CA mTLS: TLS 1.3 only.
    Mesh,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Modern, Profile::Intermediate, Profile::Mesh];

    /// The profile's name in config files and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Modern => "modern",
            Profile::Intermediate => "intermediate",
            Profile::Mesh => "mesh",
        }
    }

    /// Protocol versions offered.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static TLS13_AND_12: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        match self {
            Profile::Modern | Profile::Mesh => &TLS13_ONLY,
            Profile::Intermediate => &TLS13_AND_12,
        }
    }

    /// Cipher suites offered (IANA values), most preferred first.
    pub fn cipher_suites(self) -> &'static [CipherSuite] {
        match self {
            Profile::Modern => TLS13_SUITES,
            Profile::Mesh => MESH_SUITES,
            Profile::Intermediate => INTERMEDIATE_SUITES,
        }
    }

    /// The ring provider limited to this profile's suites, built once per profile.
    pub fn provider(self) -> Arc<CryptoProvider> {
        static CELLS: [OnceLock<Arc<CryptoProvider>>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let cell = &CELLS[self as usize];
        Arc::clone(cell.get_or_init(|| Arc::new(ring_with(self.cipher_suites()))))
    }

    /// A `ServerConfig` builder with this profile's provider and versions.
    pub fn server_builder(self) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>> {
        Ok(ServerConfig::builder_with_provider(self.provider())
            .with_protocol_versions(self.versions())?)
    }

    /// A `ClientConfig` builder with this profile's provider and versions.
    pub fn client_builder(self) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>> {
        Ok(ClientConfig::builder_with_provider(self.provider())
            .with_protocol_versions(self.versions())?)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown TLS profile {0:?}: expected modern, intermediate or mesh")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_offer_exactly_their_suites() {
        for p in Profile::ALL {
            let offered: Vec<CipherSuite> = p
                .provider()
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect();
            // Exactly the profile's suites, in its order of preference.
            assert_eq!(offered, p.cipher_suites(), "{p}");
        }
        // No TLS 1.2 suite in the TLS 1.3-only profiles.
        for p in [Profile::Modern, Profile::Mesh] {
            assert!(p
                .provider()
                .cipher_suites
                .iter()
                .all(|s| s.version() == &rustls::version::TLS13));
            assert_eq!(p.versions().len(), 1);
        }
        assert_eq!(Profile::Intermediate.versions().len(), 2);
        // ring's own order for the edge's profiles; AES-128-GCM first between sidecars.
        let ring: Vec<CipherSuite> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(ring, INTERMEDIATE_SUITES);
        assert_eq!(&ring[..3], TLS13_SUITES);
        assert_eq!(
            Profile::Mesh.cipher_suites()[0],
            CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }

    #[test]
    fn provider_is_built_once() {
        assert!(Arc::ptr_eq(&provider(), &provider()));
        assert!(Arc::ptr_eq(
            &Profile::Mesh.provider(),
            &Profile::Mesh.provider()
        ));
    }

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!("old".parse::<Profile>().is_err());
    }
}
