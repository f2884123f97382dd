//! The certificate authority: its on-disk directory, the active issuer, the
//! trust bundle, and the rotation of intermediate and root.

pub mod issuer;
pub mod profiles;
pub mod rotation;
mod state;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{KeyPair, SignatureAlgorithm};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

pub use issuer::{IssuedCert, Issuer};
pub use rotation::{RotationEvent, RotationPolicy};
use state::CaState;
pub use state::{KeyAlgorithm, RootRotation};

use crate::error::{PkiError, Result};
use crate::keystore::{self, KeyProtection};
use crate::spiffe::TrustDomain;

/// Longest root lifetime accepted (10 years).
pub const MAX_ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86400);

/// Options for `rampart-pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The SPIFFE trust domain.
    pub trust_domain: TrustDomain,
    /// DNS suffixes edge certificates may use (name constraints).
    pub dns_suffixes: Vec<String>,
    /// Key algorithm for CA keys.
    pub algorithm: KeyAlgorithm,
    /// Root lifetime (default one year).
    pub root_ttl: Duration,
    /// Intermediate lifetime (at most 90 days).
    pub intermediate_ttl: Duration,
}

impl InitOptions {
    /// Defaults: P-256, root one year, intermediate 90 days.
    pub fn new(trust_domain: TrustDomain) -> Self {
        InitOptions {
            trust_domain,
            dns_suffixes: Vec::new(),
            algorithm: KeyAlgorithm::P256,
            root_ttl: Duration::from_secs(365 * 24 * 3600),
            intermediate_ttl: profiles::MAX_LIFETIME,
        }
    }
}

/// A CA certificate the CA trusts (a root) with its parsed expiry.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Serial (hex), also the file stem under `roots/`.
    pub serial: String,
    /// DER certificate.
    pub der: CertificateDer<'static>,
    /// Expiry.
    pub not_after: OffsetDateTime,
}

/// An opened CA directory.
pub struct Ca {
    dir: PathBuf,
    protection: KeyProtection,
    state: CaState,
    roots: Vec<TrustedRoot>,
    issuer: Arc<Issuer>,
    /// During an emergency drain: the new root certified by the old one.
    cross: Option<CertificateDer<'static>>,
}

impl Ca {
    /// Creates a new root and intermediate in `dir` (which must not hold a CA).
    pub fn init(dir: &Path, opts: &InitOptions, protection: KeyProtection) -> Result<Ca> {
        issuer::check_lifetime(opts.intermediate_ttl)?;
        if opts.root_ttl.is_zero() {
            return Err(PkiError::LifetimeZero);
        }
        if opts.root_ttl > MAX_ROOT_LIFETIME {
            return Err(PkiError::LifetimeOverCap {
                requested_secs: opts.root_ttl.as_secs(),
                max_secs: MAX_ROOT_LIFETIME.as_secs(),
            });
        }
        for suffix in &opts.dns_suffixes {
            if suffix.is_empty()
                || !suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            {
                return Err(PkiError::CsrRefused(format!("bad DNS suffix {suffix:?}")));
            }
        }
        if state::state_path(dir).exists() {
            return Err(PkiError::AlreadyInitialized(dir.to_path_buf()));
        }
        for sub in ["roots", "intermediates"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| PkiError::io(dir.join(sub), e))?;
        }
        restrict_dir(dir)?;
        let now = OffsetDateTime::now_utc();
        let alg = opts.algorithm.rcgen();
        let root_key = KeyPair::generate_for(alg)?;
        let (serial, root_serial) = profiles::random_serial()?;
        let root = profiles::root(
            &opts.trust_domain,
            serial,
            now - issuer::BACKDATE,
            now + opts.root_ttl,
        )
        .self_signed(&root_key)?;
        write_ca_files(
            dir,
            "roots",
            &root_serial,
            root.der(),
            &root_key,
            &protection,
        )?;
        let mut state = CaState {
            format: 1,
            trust_domain: opts.trust_domain.to_string(),
            dns_suffixes: opts.dns_suffixes.clone(),
            algorithm: opts.algorithm,
            root_ttl_secs: opts.root_ttl.as_secs(),
            intermediate_ttl_secs: opts.intermediate_ttl.as_secs(),
            active_root: root_serial.clone(),
            trusted_roots: vec![root_serial],
            active_intermediate: String::new(),
            root_rotation: None,
            active_root_leaves_until: 0,
        };
        let roots = load_roots(dir, &state)?;
        let issuer = new_intermediate(dir, &state, &roots, &protection, now)?;
        state.active_intermediate = issuer.serial().to_string();
        state.save(dir)?;
        let ca = Ca {
            dir: dir.to_path_buf(),
            protection,
            state,
            roots,
            issuer: Arc::new(issuer),
            cross: None,
        };
        ca.write_bundle()?;
        // A new CA has issued nothing: its registry of live workloads starts
        // complete (a CA directory without one may have issued leaves the
        // registry never saw, see `crate::workloads`).
        crate::workloads::create(dir)?;
        Ok(ca)
    }

    /// Opens an existing CA directory, decrypting the active keys. Leaves
    /// issued before are assumed to live up to the intermediate's expiry
    /// (the safe bound when nothing else is known).
    pub fn open(dir: &Path, protection: KeyProtection) -> Result<Ca> {
        Self::open_with_leaf_bound(dir, protection, MAX_LEAF_BOUND)
    }

    /// Like [`Ca::open`], for a service whose leaves never outlive
    /// `max_leaf_ttl`: any leaf issued before now expires by now +
    /// `max_leaf_ttl`, which bounds how long an old root must stay trusted.
    pub fn open_with_leaf_bound(
        dir: &Path,
        protection: KeyProtection,
        max_leaf_ttl: Duration,
    ) -> Result<Ca> {
        let state = CaState::load(dir)?;
        let roots = load_roots(dir, &state)?;
        check_active_root_key(dir, &state, &roots, &protection)?;
        let issuer = load_issuer(dir, &state, &protection, max_leaf_ttl)?;
        let cross = match &state.root_rotation {
            Some(RootRotation::Draining {
                emergency: true, ..
            }) => {
                let path = cross_path(dir, &state.active_root);
                path.exists().then(|| read_cert(&path)).transpose()?
            }
            _ => None,
        };
        Ok(Ca {
            dir: dir.to_path_buf(),
            protection,
            state,
            roots,
            issuer: Arc::new(issuer),
            cross,
        })
    }

    /// Records what the active issuer handed out in `state.json`, so a
    /// later root rotation waits for those leaves too (the CLI calls this
    /// after `issue`).
    pub fn persist_issued(&mut self) -> Result<()> {
        let until = self.issuer.issued_not_after().unix_timestamp();
        if until > self.state.active_root_leaves_until {
            self.state.active_root_leaves_until = until;
            self.state.save(&self.dir)?;
        }
        Ok(())
    }

    /// The trust domain of the CA in `dir`, read without touching keys.
    pub fn trust_domain_of(dir: &Path) -> Result<TrustDomain> {
        CaState::load(dir)?.trust_domain()
    }

    /// The active issuer (cheap clone; issuance needs no lock).
    pub fn issuer(&self) -> Arc<Issuer> {
        Arc::clone(&self.issuer)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> Result<TrustDomain> {
        Ok(TrustDomain::parse(&self.state.trust_domain)?)
    }

    /// Every root currently trusted (two during a root rotation).
    pub fn trust_bundle(&self) -> Vec<CertificateDer<'static>> {
        self.roots.iter().map(|r| r.der.clone()).collect()
    }

    /// The trusted roots with their expiry.
    pub fn roots(&self) -> &[TrustedRoot] {
        &self.roots
    }

    /// The trust bundle as PEM.
    pub fn trust_bundle_pem(&self) -> String {
        self.roots
            .iter()
            .map(|r| keystore::pem_encode("CERTIFICATE", &r.der))
            .collect()
    }

    /// During the drain of an emergency root rotation: the new root
    /// certified by the old one. Appended to every chain the CA hands out
    /// (its own server certificate included), so a workload that still
    /// trusts only the old root verifies the CA and its renewed peers.
    pub fn cross_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.cross.as_ref()
    }

    /// The root rotation in progress, if any.
    pub fn root_rotation(&self) -> Option<&RootRotation> {
        self.state.root_rotation.as_ref()
    }

    /// Intermediate lifetime configured at init.
    pub fn intermediate_ttl(&self) -> Duration {
        Duration::from_secs(self.state.intermediate_ttl_secs)
    }

    /// Root lifetime configured at init.
    pub fn root_ttl(&self) -> Duration {
        Duration::from_secs(self.state.root_ttl_secs)
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_bundle(&self) -> Result<()> {
        keystore::write_file_public(
            &self.dir.join("bundle.pem"),
            self.trust_bundle_pem().as_bytes(),
        )
    }

    fn active_root(&self) -> Result<&TrustedRoot> {
        self.roots
            .iter()
            .find(|r| r.serial == self.state.active_root)
            .ok_or_else(|| PkiError::BadCaDir {
                path: self.dir.clone(),
                why: "active root missing from trusted roots".into(),
            })
    }
}

/// Destroys a retired private key: overwritten with zeros, synced, then
/// removed. (On copy-on-write or journaling filesystems the old blocks may
/// survive; the key was also encrypted at rest with the KEK.)
pub(crate) fn destroy_key(path: &Path) -> Result<()> {
    use std::io::Write;
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(PkiError::io(path, e)),
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| PkiError::io(path, e))?;
    f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)])
        .and_then(|_| f.sync_all())
        .map_err(|e| PkiError::io(path, e))?;
    fs::remove_file(path).map_err(|e| PkiError::io(path, e))
}

/// The CA directory is private to the CA's user (0700).
fn restrict_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PkiError::io(dir, e))?;
    }
    Ok(())
}

fn write_ca_files(
    dir: &Path,
    sub: &str,
    serial: &str,
    der: &CertificateDer<'_>,
    key: &KeyPair,
    protection: &KeyProtection,
) -> Result<()> {
    keystore::write_private_key(
        &dir.join(sub).join(format!("{serial}.key")),
        &key.serialize_der(),
        protection,
    )?;
    keystore::write_file_public(
        &dir.join(sub).join(format!("{serial}.pem")),
        keystore::pem_encode("CERTIFICATE", der).as_bytes(),
    )
}

/// Where the cross-certificate of `root` (by the root it replaced) is kept.
fn cross_path(dir: &Path, root: &str) -> PathBuf {
    dir.join("roots").join(format!("{root}.cross.pem"))
}

fn read_cert(path: &Path) -> Result<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path).map_err(|e| PkiError::BadCaDir {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn read_key(
    path: &Path,
    alg: &'static SignatureAlgorithm,
    protection: &KeyProtection,
) -> Result<KeyPair> {
    let der = keystore::read_private_key(path, protection)?;
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der),
        alg,
    )?)
}

fn load_roots(dir: &Path, state: &CaState) -> Result<Vec<TrustedRoot>> {
    state
        .trusted_roots
        .iter()
        .map(|serial| {
            let der = read_cert(&dir.join("roots").join(format!("{serial}.pem")))?;
            let not_after = crate::inspect::not_after(&der)?;
            Ok(TrustedRoot {
                serial: serial.clone(),
                der,
                not_after,
            })
        })
        .collect()
}

/// Decrypts the active root's key only to check it is the root's (a key
/// swapped between files is found at load, not at the next rotation).
fn check_active_root_key(
    dir: &Path,
    state: &CaState,
    roots: &[TrustedRoot],
    protection: &KeyProtection,
) -> Result<()> {
    let Some(root) = roots.iter().find(|r| r.serial == state.active_root) else {
        return Err(PkiError::BadCaDir {
            path: dir.to_path_buf(),
            why: "active root missing from trusted roots".into(),
        });
    };
    let key = read_key(
        &dir.join("roots").join(format!("{}.key", root.serial)),
        state.algorithm.rcgen(),
        protection,
    )?;
    crate::inspect::require_key_matches(&root.der, &key, "root")
}

/// Longer than any lifetime we issue: "bounded only by the intermediate".
const MAX_LEAF_BOUND: Duration = profiles::MAX_LIFETIME;

fn load_issuer(
    dir: &Path,
    state: &CaState,
    protection: &KeyProtection,
    max_leaf_ttl: Duration,
) -> Result<Issuer> {
    let serial = &state.active_intermediate;
    let der = read_cert(&dir.join("intermediates").join(format!("{serial}.pem")))?;
    let key = read_key(
        &dir.join("intermediates").join(format!("{serial}.key")),
        state.algorithm.rcgen(),
        protection,
    )?;
    let not_after = crate::inspect::not_after(&der)?;
    // We cannot know what was issued before this process started (only
    // what was persisted), so assume the worst the leaf bound allows.
    let bound = (OffsetDateTime::now_utc() + max_leaf_ttl).min(not_after);
    let persisted =
        OffsetDateTime::from_unix_timestamp(state.active_root_leaves_until).unwrap_or(bound);
    Issuer::new(
        state.trust_domain()?,
        state.dns_suffixes.clone(),
        der,
        key,
        state.active_root.clone(),
        bound.max(persisted),
    )
}

/// Creates, stores and returns a new intermediate signed by the active root.
fn new_intermediate(
    dir: &Path,
    state: &CaState,
    roots: &[TrustedRoot],
    protection: &KeyProtection,
    now: OffsetDateTime,
) -> Result<Issuer> {
    let root = roots
        .iter()
        .find(|r| r.serial == state.active_root)
        .ok_or_else(|| PkiError::BadCaDir {
            path: dir.to_path_buf(),
            why: "active root missing".into(),
        })?;
    let alg = state.algorithm.rcgen();
    let root_key = read_key(
        &dir.join("roots").join(format!("{}.key", root.serial)),
        alg,
        protection,
    )?;
    crate::inspect::require_key_matches(&root.der, &root_key, "root")?;
    let root_issuer = rcgen::Issuer::from_ca_cert_der(&root.der, &root_key)?;
    let key = KeyPair::generate_for(alg)?;
    let (serial, serial_hex) = profiles::random_serial()?;
    let na = (now + Duration::from_secs(state.intermediate_ttl_secs)).min(root.not_after);
    let td = state.trust_domain()?;
    let cert = profiles::intermediate(&td, &state.dns_suffixes, serial, now - issuer::BACKDATE, na)
        .signed_by(&key, &root_issuer)?;
    write_ca_files(
        dir,
        "intermediates",
        &serial_hex,
        cert.der(),
        &key,
        protection,
    )?;
    Issuer::new(
        td,
        state.dns_suffixes.clone(),
        cert.der().clone(),
        key,
        root.serial.clone(),
        now,
    )
}

#[cfg(test)]
mod tests;
