//! The revocation deny-list carried by a trust bundle: SPIFFE IDs and certificate serials that
//! no verifier of the bundle accepts any more, even inside their validity. It is replaced
//! whole, atomically with the bundle's roots (the CA publishes the full list each time).

use std::collections::BTreeSet;

use crate::error::{Result, TlsError};
use crate::spiffe::SpiffeId;

/// Revoked SPIFFE IDs and certificate serials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    ids: BTreeSet<SpiffeId>,
    /// Lower-case hex of the serial's DER content octets, as `svid::serial_hex` gives it.
    serials: BTreeSet<String>,
}

/// What a revocation matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The peer's SPIFFE ID is revoked (every certificate for it).
    SpiffeId(SpiffeId),
    /// A certificate of the chain (leaf or intermediate) has a revoked serial.
    Serial(String),
}

impl std::fmt::Display for Revoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Revoked::SpiffeId(id) => write!(f, "SPIFFE ID {id} is revoked"),
            Revoked::Serial(s) => write!(f, "certificate serial {s} is revoked"),
        }
    }
}

/// A serial in our form: hex digits only (colons allowed as separators), lower-cased, at least
/// one byte.
pub fn normalize_serial(serial: &str) -> Result<String> {
    let hex: String = serial
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(TlsError::BadCertificate(format!(
            "revoked serial {serial:?} is not an even number of hex digits"
        )));
    }
    Ok(hex)
}

impl RevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a list from SPIFFE ID and serial strings (as the CA publishes them), refusing
    /// the whole list if one entry is malformed.
    pub fn from_strings<I, S, J, T>(ids: I, serials: J) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        J: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut list = RevocationList::new();
        for id in ids {
            list.revoke_id(SpiffeId::parse(id.as_ref())?);
        }
        for s in serials {
            list.revoke_serial(s.as_ref())?;
        }
        Ok(list)
    }

    /// Revokes every certificate for `id`.
    pub fn revoke_id(&mut self, id: SpiffeId) -> &mut Self {
        self.ids.insert(id);
        self
    }

    /// Revokes the certificate with this serial (hex, colons allowed).
    pub fn revoke_serial(&mut self, serial: &str) -> Result<&mut Self> {
        self.serials.insert(normalize_serial(serial)?);
        Ok(self)
    }

    /// True when `id` is revoked.
    pub fn is_id_revoked(&self, id: &SpiffeId) -> bool {
        self.ids.contains(id)
    }

    /// True when the (normalized) serial is revoked.
    pub fn is_serial_revoked(&self, serial_hex: &str) -> bool {
        self.serials.contains(serial_hex)
    }

    /// Checks a verified peer: its ID, then the serials of its chain.
    pub fn check(&self, id: &SpiffeId, chain: &[&[u8]]) -> std::result::Result<(), Revoked> {
        if self.is_id_revoked(id) {
            return Err(Revoked::SpiffeId(id.clone()));
        }
        if self.serials.is_empty() {
            return Ok(());
        }
        for der in chain {
            // The chain already verified, so it parses; a serial we cannot read matches nothing.
            if let Ok(serial) = crate::svid::serial_hex(der) {
                if self.serials.contains(&serial) {
                    return Err(Revoked::Serial(serial));
                }
            }
        }
        Ok(())
    }

    /// Revoked SPIFFE IDs.
    pub fn ids(&self) -> impl Iterator<Item = &SpiffeId> {
        self.ids.iter()
    }

    /// Revoked serials (lower-case hex).
    pub fn serials(&self) -> impl Iterator<Item = &str> {
        self.serials.iter().map(String::as_str)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ids.len() + self.serials.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.serials.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalized_and_checked() {
        assert_eq!(normalize_serial("0A:1b").unwrap(), "0a1b");
        for bad in ["", "abc", "zz", "0x01"] {
            assert!(normalize_serial(bad).is_err(), "{bad}");
        }
        let list =
            RevocationList::from_strings(["spiffe://example.org/ns/a/sa/b"], ["01:02"]).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.is_serial_revoked("0102"));
        assert!(list.is_id_revoked(&SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap()));
        assert!(RevocationList::from_strings(["not-an-id"], Vec::<String>::new()).is_err());
    }
}
