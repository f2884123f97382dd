//! Rotation of the intermediate and the root, as a small state machine the
//! service drives with `tick` (and tests drive directly).
//!
//! - Intermediate: a new one is issued once the current one has lived 2/3
//!   of its life. Leaves already issued keep chaining through the old one
//!   (each peer sends its own chain), so both chains verify in the overlap.
//! - Root: the new root enters the trust bundle first (`Distributing`);
//!   after `propagation` (longer than a client's bundle refresh) issuance
//!   switches to an intermediate under the new root (`Draining`); the old
//!   root leaves the bundle only once the last leaf chaining to it expired.

use std::sync::Arc;
use std::time::Duration;

use rcgen::KeyPair;
use time::OffsetDateTime;

use super::state::CaState;
use super::{load_roots, new_intermediate, profiles, write_ca_files, Ca, RootRotation};
use crate::error::{PkiError, Result};

/// When the service rotates automatically.
#[derive(Debug, Clone)]
pub struct RotationPolicy {
    /// Fraction of a CA certificate's life after which it is replaced.
    pub rotate_at_fraction: f64,
    /// Time the new root spends in the bundle before issuance uses it.
    pub bundle_propagation: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_at_fraction: 2.0 / 3.0,
            bundle_propagation: Duration::from_secs(3600),
        }
    }
}

/// What a rotation step did (for the audit log and the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationEvent {
    /// A new intermediate became the issuer.
    IntermediateRotated { serial: String, root: String },
    /// A new root entered the trust bundle.
    RootIntroduced { serial: String },
    /// Issuance switched to the new root.
    RootActivated { serial: String },
    /// The old root left the trust bundle.
    RootRetired { serial: String },
}

impl Ca {
    /// Issues a new intermediate under the active root and makes it the issuer.
    pub fn rotate_intermediate(&mut self) -> Result<RotationEvent> {
        self.fold_persisted_leaves();
        let now = OffsetDateTime::now_utc();
        let old_until = self.issuer.max_issued_not_after().unix_timestamp();
        let issuer = new_intermediate(&self.dir, &self.state, &self.roots, &self.protection, now)?;
        let old_serial = self.state.active_intermediate.clone();
        let mut state = self.state.clone();
        state.active_intermediate = issuer.serial().to_string();
        state.active_root_leaves_until = state.active_root_leaves_until.max(old_until);
        state.save(&self.dir)?;
        self.state = state;
        self.issuer = Arc::new(issuer);
        // The retired intermediate never signs again: its key is destroyed
        // (its certificate stays, leaves still chain through it).
        super::destroy_key(
            &self
                .dir
                .join("intermediates")
                .join(format!("{old_serial}.key")),
        )?;
        Ok(RotationEvent::IntermediateRotated {
            serial: self.issuer.serial().to_string(),
            root: self.state.active_root.clone(),
        })
    }

    /// Creates a new root and adds it to the trust bundle; issuance switches
    /// to it after `propagation`.
    pub fn begin_root_rotation(&mut self, propagation: Duration) -> Result<RotationEvent> {
        if self.state.root_rotation.is_some() {
            return Err(PkiError::BadCaDir {
                path: self.dir.clone(),
                why: "a root rotation is already in progress".into(),
            });
        }
        let now = OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(self.state.algorithm.rcgen())?;
        let (serial, serial_hex) = profiles::random_serial()?;
        let ttl = self.root_ttl();
        let root = profiles::root(
            &self.trust_domain()?,
            serial,
            now - super::issuer::BACKDATE,
            now + ttl,
        )
        .self_signed(&key)?;
        write_ca_files(
            &self.dir,
            "roots",
            &serial_hex,
            root.der(),
            &key,
            &self.protection,
        )?;
        let mut state = self.state.clone();
        state.trusted_roots.push(serial_hex.clone());
        state.root_rotation = Some(RootRotation::Distributing {
            old_root: state.active_root.clone(),
            new_root: serial_hex.clone(),
            switch_at: (now + propagation).unix_timestamp(),
        });
        self.set_trusted_roots(state)?;
        Ok(RotationEvent::RootIntroduced { serial: serial_hex })
    }

    /// Advances any rotation that is due. Call periodically.
    pub fn tick(&mut self, policy: &RotationPolicy) -> Result<Vec<RotationEvent>> {
        let now = OffsetDateTime::now_utc();
        let mut events = Vec::new();
        match self.state.root_rotation.clone() {
            Some(RootRotation::Distributing {
                old_root,
                new_root,
                switch_at,
            }) if now.unix_timestamp() >= switch_at => {
                events.push(self.activate_new_root(old_root, new_root, false)?);
            }
            Some(RootRotation::Draining {
                old_root,
                retire_at,
                ..
            }) if now.unix_timestamp() >= retire_at => {
                events.push(self.retire_root(old_root)?);
            }
            None if self.root_due(now, policy) => {
                events.push(self.begin_root_rotation(policy.bundle_propagation)?);
            }
            _ => {}
        }
        if due(
            now,
            self.issuer_not_before(),
            self.issuer.not_after(),
            policy.rotate_at_fraction,
        ) {
            events.push(self.rotate_intermediate()?);
        }
        Ok(events)
    }

    fn activate_new_root(
        &mut self,
        old_root: String,
        new_root: String,
        emergency: bool,
    ) -> Result<RotationEvent> {
        self.fold_persisted_leaves();
        if emergency {
            // Before the old root's key is destroyed below.
            self.cross = Some(self.cross_certify(&old_root, &new_root)?);
        }
        let old_leaves_until = self
            .issuer
            .max_issued_not_after()
            .unix_timestamp()
            .max(self.state.active_root_leaves_until);
        let mut state = self.state.clone();
        state.active_root = new_root.clone();
        state.active_root_leaves_until = 0;
        state.root_rotation = Some(RootRotation::Draining {
            old_root,
            retire_at: old_leaves_until,
            emergency,
        });
        // Persist the phase before the new intermediate so a crash in
        // between never loses the retire time.
        state.save(&self.dir)?;
        let old_root = self.state.active_root.clone();
        self.state = state;
        self.rotate_intermediate()?;
        // The old root signs nothing more (intermediates now come from the
        // new one): its key is destroyed; its certificate stays in the
        // bundle until the drain ends.
        super::destroy_key(&self.dir.join("roots").join(format!("{old_root}.key")))?;
        Ok(RotationEvent::RootActivated { serial: new_root })
    }

    /// Certifies `new_root`'s key with `old_root`'s (same subject, new
    /// serial) and keeps it beside the new root.
    fn cross_certify(
        &self,
        old_root: &str,
        new_root: &str,
    ) -> Result<rustls_pki_types::CertificateDer<'static>> {
        let find = |serial: &str| {
            self.roots
                .iter()
                .find(|r| r.serial == serial)
                .ok_or_else(|| PkiError::BadCaDir {
                    path: self.dir.clone(),
                    why: format!("root {serial} missing from trusted roots"),
                })
        };
        let (old, new) = (find(old_root)?, find(new_root)?);
        let alg = self.state.algorithm.rcgen();
        let key = |serial: &str| {
            super::read_key(
                &self.dir.join("roots").join(format!("{serial}.key")),
                alg,
                &self.protection,
            )
        };
        let old_key = key(old_root)?;
        let new_key = key(new_root)?;
        let old_issuer = rcgen::Issuer::from_ca_cert_der(&old.der, &old_key)?;
        // The new root's own profile and validity (its subject embeds its
        // notBefore), so the subject is byte-identical; a new serial.
        let params = profiles::root(
            &self.trust_domain()?,
            profiles::random_serial()?.0,
            crate::inspect::not_before(&new.der)?,
            new.not_after,
        );
        let cert = params.signed_by(&new_key, &old_issuer)?;
        crate::keystore::write_file_public(
            &super::cross_path(&self.dir, new_root),
            crate::keystore::pem_encode("CERTIFICATE", cert.der()).as_bytes(),
        )?;
        Ok(cert.der().clone())
    }

    /// Makes `state`, whose trusted roots changed, the CA's: the roots are
    /// read first (a missing or bad root file changes nothing), then the
    /// state is saved and the bundle file rewritten.
    fn set_trusted_roots(&mut self, state: CaState) -> Result<()> {
        let roots = load_roots(&self.dir, &state)?;
        state.save(&self.dir)?;
        self.state = state;
        self.roots = roots;
        self.write_bundle()
    }

    fn retire_root(&mut self, old_root: String) -> Result<RotationEvent> {
        let mut state = self.state.clone();
        state.trusted_roots.retain(|s| *s != old_root);
        state.root_rotation = None;
        self.set_trusted_roots(state)?;
        if self.cross.take().is_some() {
            let _ = std::fs::remove_file(super::cross_path(&self.dir, &self.state.active_root));
        }
        Ok(RotationEvent::RootRetired { serial: old_root })
    }

    /// Emergency root rotation: a new root is created and used at once (no
    /// distribution phase); the old root stays in the bundle until the
    /// leaves it signed expire, or until the service sees that no live
    /// workload holds one any more ([`Ca::retire_emergency_root`]) — or,
    /// with `break_workloads`, leaves it now, so every workload still
    /// holding an old leaf fails until it bootstraps again.
    pub fn emergency_root_rotation(&mut self, break_workloads: bool) -> Result<Vec<RotationEvent>> {
        let mut events = Vec::new();
        match self.state.root_rotation.clone() {
            // A root still draining: only breaking workloads may cut it short.
            Some(RootRotation::Draining {
                old_root,
                retire_at,
                ..
            }) => {
                if !break_workloads {
                    return Err(PkiError::BadCaDir {
                        path: self.dir.clone(),
                        why: format!(
                            "root {old_root} is still draining until {retire_at} (unix); \
                             --break-workloads-now retires it at once"
                        ),
                    });
                }
                events.push(self.retire_root(old_root)?);
            }
            // A normal rotation under way: its new root is used at once.
            Some(RootRotation::Distributing {
                old_root, new_root, ..
            }) => {
                events.push(self.activate_new_root(old_root.clone(), new_root, true)?);
                if break_workloads {
                    events.push(self.retire_root(old_root)?);
                }
                return Ok(events);
            }
            None => {}
        }
        let old_root = self.state.active_root.clone();
        events.push(self.begin_root_rotation(Duration::ZERO)?);
        let new_root = match &self.state.root_rotation {
            Some(RootRotation::Distributing { new_root, .. }) => new_root.clone(),
            _ => {
                return Err(PkiError::BadCaDir {
                    path: self.dir.clone(),
                    why: "root rotation did not start".into(),
                })
            }
        };
        events.push(self.activate_new_root(old_root.clone(), new_root, true)?);
        if break_workloads {
            events.push(self.retire_root(old_root)?);
        }
        Ok(events)
    }

    /// The old root of an emergency rotation still in the bundle, if any.
    pub fn emergency_draining_root(&self) -> Option<&str> {
        match &self.state.root_rotation {
            Some(RootRotation::Draining {
                old_root,
                emergency: true,
                ..
            }) => Some(old_root),
            _ => None,
        }
    }

    /// Retires the old root of an emergency rotation now: the service calls
    /// this once no live workload holds a leaf under it.
    pub fn retire_emergency_root(&mut self) -> Result<Vec<RotationEvent>> {
        match self.emergency_draining_root() {
            Some(old) => {
                let old = old.to_string();
                Ok(vec![self.retire_root(old)?])
            }
            None => Ok(Vec::new()),
        }
    }

    fn root_due(&self, now: OffsetDateTime, policy: &RotationPolicy) -> bool {
        match self.active_root() {
            Ok(root) => {
                let ttl = time::Duration::try_from(self.root_ttl()).unwrap_or(time::Duration::ZERO);
                due(
                    now,
                    root.not_after - ttl,
                    root.not_after,
                    policy.rotate_at_fraction,
                )
            }
            Err(_) => false,
        }
    }

    /// `rampart-pki issue` may have recorded leaves in `state.json` while
    /// the service runs: never let our save drop them.
    fn fold_persisted_leaves(&mut self) {
        if let Ok(disk) = super::state::CaState::load(&self.dir) {
            if disk.active_root == self.state.active_root {
                self.state.active_root_leaves_until = self
                    .state
                    .active_root_leaves_until
                    .max(disk.active_root_leaves_until);
            }
        }
    }

    /// When the intermediate was issued (`notBefore` is backdated for
    /// clock skew; the life that counts starts at issuance).
    fn issuer_not_before(&self) -> OffsetDateTime {
        crate::inspect::not_before(self.issuer.certificate())
            .map(|nb| nb + super::issuer::BACKDATE)
            .unwrap_or(self.issuer.not_after())
    }
}

/// True once `fraction` of the span from `nb` to `na` has elapsed.
fn due(now: OffsetDateTime, nb: OffsetDateTime, na: OffsetDateTime, fraction: f64) -> bool {
    let life = (na - nb).as_seconds_f64();
    life <= 0.0 || (now - nb).as_seconds_f64() >= life * fraction
}
