//! One-time join tokens, bound to one SPIFFE ID, stored only as their
//! SHA-256, expiring. Each token is a file `pending/<sha256>.json`;
//! redeeming renames it to `used/` — an atomic step, so a token is redeemed
//! at most once even by two CA processes sharing the directory.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{PkiError, Result};
use crate::keystore;
use crate::spiffe::SpiffeId;

const PREFIX: &str = "rpt_";
const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 86400);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    spiffe_id: String,
    created_at: i64,
    expires_at: i64,
}

/// The token directory of a CA (`DIR/tokens`).
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    /// Opens (creating if needed) the token store under the CA directory.
    pub fn open(ca_dir: &Path) -> Result<Self> {
        let dir = ca_dir.join("tokens");
        for sub in ["pending", "used"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| PkiError::io(dir.join(sub), e))?;
        }
        Ok(TokenStore { dir })
    }

    /// Creates a token for `id`, valid for `ttl`. The token itself is
    /// returned once and never stored.
    pub fn create(&self, id: &SpiffeId, ttl: Duration) -> Result<String> {
        if ttl > MAX_TOKEN_TTL {
            return Err(PkiError::BadRequest(
                "join tokens live at most 30 days".into(),
            ));
        }
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| PkiError::Crypto("random source"))?;
        let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let now = OffsetDateTime::now_utc();
        let rec = TokenRecord {
            spiffe_id: id.to_string(),
            created_at: now.unix_timestamp(),
            expires_at: (now + ttl).unix_timestamp(),
        };
        let json = serde_json::to_vec(&rec).map_err(|_| PkiError::Crypto("serialize token"))?;
        keystore::write_file_0600(&self.pending(&hash(&token)), &json)?;
        Ok(token)
    }

    /// Redeems `token`: checks it exists, is unused and unexpired, lets
    /// `check` refuse (e.g. CSR for another identity) without consuming it,
    /// then consumes it. Returns the bound identity.
    pub fn redeem(
        &self,
        token: &str,
        check: impl FnOnce(&SpiffeId) -> Result<()>,
    ) -> Result<SpiffeId> {
        if !token.starts_with(PREFIX) || token.len() > 128 {
            return Err(PkiError::TokenUnknown);
        }
        let h = hash(token);
        let pending = self.pending(&h);
        let text = match fs::read(&pending) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(if self.used(&h).exists() {
                    PkiError::TokenReused
                } else {
                    PkiError::TokenUnknown
                });
            }
            Err(e) => return Err(PkiError::io(pending, e)),
        };
        let rec: TokenRecord = serde_json::from_slice(&text).map_err(|_| PkiError::TokenUnknown)?;
        if OffsetDateTime::now_utc().unix_timestamp() >= rec.expires_at {
            return Err(PkiError::TokenExpired);
        }
        let id = SpiffeId::parse(&rec.spiffe_id)?;
        check(&id)?;
        match fs::rename(&pending, self.used(&h)) {
            Ok(()) => Ok(id),
            // Someone else redeemed it between our read and our rename.
            Err(e) if e.kind() == ErrorKind::NotFound => Err(PkiError::TokenReused),
            Err(e) => Err(PkiError::io(pending, e)),
        }
    }

    fn pending(&self, h: &str) -> PathBuf {
        self.dir.join("pending").join(format!("{h}.json"))
    }

    fn used(&self, h: &str) -> PathBuf {
        self.dir.join("used").join(format!("{h}.json"))
    }
}

fn hash(token: &str) -> String {
    hex::encode(digest(&SHA256, token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_bound_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
        let token = store.create(&id, Duration::from_secs(60)).unwrap();
        // Stored hashed only.
        for e in fs::read_dir(dir.path().join("tokens/pending")).unwrap() {
            let text = fs::read_to_string(e.unwrap().path()).unwrap();
            assert!(!text.contains(&token[PREFIX.len()..]));
        }
        // A refusing check does not consume it.
        let refused = store.redeem(&token, |_| Err(PkiError::CsrRefused("no".into())));
        assert!(matches!(refused, Err(PkiError::CsrRefused(_))));
        assert_eq!(store.redeem(&token, |_| Ok(())).unwrap(), id);
        assert!(matches!(
            store.redeem(&token, |_| Ok(())),
            Err(PkiError::TokenReused)
        ));
        assert!(matches!(
            store.redeem("rpt_nope", |_| Ok(())),
            Err(PkiError::TokenUnknown)
        ));
        let expired = store.create(&id, Duration::ZERO).unwrap();
        assert!(matches!(
            store.redeem(&expired, |_| Ok(())),
            Err(PkiError::TokenExpired)
        ));
    }
}
