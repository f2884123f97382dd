//! Private keys at rest: AES-256-GCM (ring) under a key-encryption key (KEK)
//! read from a file or an environment variable. Files are written 0600.
//! Unencrypted PKCS#8 PEM is only read or written when the caller asked for
//! it by name (`KeyProtection::InsecureUnencrypted`).
//!
//! The KEK is either 64 hex characters (a raw 256-bit key) or a passphrase of
//! at least 16 characters, stretched with PBKDF2-HMAC-SHA256 and a per-file
//! random salt.

use std::fs;
use std::num::NonZeroU32;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{PkiError, Result};

const FORMAT: &str = "rampart-encrypted-key-v1";
/// OWASP 2023 guidance for PBKDF2-HMAC-SHA256.
const PBKDF2_ITERATIONS: u32 = 600_000;
const MIN_PASSPHRASE_LEN: usize = 16;
/// Default environment variable holding the KEK.
pub const DEFAULT_KEK_ENV: &str = "RAMPART_PKI_KEK";

/// The secret the key files are encrypted under.
#[derive(Clone)]
pub enum Kek {
    /// A raw 256-bit key.
    Raw([u8; 32]),
    /// A passphrase stretched with PBKDF2 per file.
    Passphrase(String),
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Parses KEK text: 64 hex chars, or a passphrase of 16+ characters.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = [0u8; 32];
            hex::decode_to_slice(text, &mut key).map_err(|_| PkiError::BadKek {
                source_name: source_name.to_string(),
                why: "invalid hex",
            })?;
            return Ok(Kek::Raw(key));
        }
        if text.chars().count() < MIN_PASSPHRASE_LEN {
            return Err(PkiError::BadKek {
                source_name: source_name.to_string(),
                why: "must be 64 hex characters (256-bit key) or a passphrase of at least 16 characters",
            });
        }
        Ok(Kek::Passphrase(text.to_string()))
    }

    /// Reads the KEK from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| PkiError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads the KEK from an environment variable.
    pub fn from_env(var: &str) -> Result<Self> {
        let text = std::env::var(var)
            .map_err(|_| PkiError::KekMissing(format!("environment variable {var} is not set")))?;
        Self::parse(&text, &format!("${var}"))
    }

    /// A fresh random raw KEK, hex encoded (for `rampart-pki kek generate`).
    pub fn generate_hex() -> Result<String> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| PkiError::Crypto("random source"))?;
        Ok(hex::encode(key))
    }
}

/// How private keys are protected on disk.
#[derive(Debug, Clone)]
pub enum KeyProtection {
    /// AES-256-GCM under a KEK (the default and only safe choice).
    Encrypted(Kek),
    /// Plain PKCS#8 PEM, 0600. Only when asked for by name.
    InsecureUnencrypted,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKeyFile {
    format: String,
    /// "raw" or "pbkdf2-sha256".
    kdf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    nonce: String,
    ciphertext: String,
}

/// Writes a PKCS#8 private key to `path` (mode 0600), protected as asked.
pub fn write_private_key(path: &Path, pkcs8_der: &[u8], protection: &KeyProtection) -> Result<()> {
    let contents = match protection {
        KeyProtection::InsecureUnencrypted => pem_encode("PRIVATE KEY", pkcs8_der),
        KeyProtection::Encrypted(kek) => encrypt(pkcs8_der, kek)?,
    };
    write_file_0600(path, contents.as_bytes())
}

/// Reads a private key written by [`write_private_key`]; returns PKCS#8 DER.
pub fn read_private_key(path: &Path, protection: &KeyProtection) -> Result<Vec<u8>> {
    let text = fs::read_to_string(path).map_err(|e| PkiError::io(path, e))?;
    if text.trim_start().starts_with("-----BEGIN") {
        return match protection {
            KeyProtection::InsecureUnencrypted => {
                pem_decode(&text).ok_or_else(|| PkiError::BadCaDir {
                    path: path.to_path_buf(),
                    why: "unreadable PEM private key".into(),
                })
            }
            KeyProtection::Encrypted(_) => Err(PkiError::UnencryptedKeyRefused {
                path: path.to_path_buf(),
            }),
        };
    }
    let file: EncryptedKeyFile = serde_json::from_str(&text).map_err(|e| PkiError::BadCaDir {
        path: path.to_path_buf(),
        why: format!("not an encrypted key file: {e}"),
    })?;
    match protection {
        KeyProtection::Encrypted(kek) => decrypt(&file, kek, path),
        KeyProtection::InsecureUnencrypted => Err(PkiError::KekMissing(format!(
            "{} is encrypted: give the key-encryption key with --kek-file or --kek-env",
            path.display()
        ))),
    }
}

fn derive_key(kek: &Kek, salt: &[u8], iterations: u32) -> [u8; 32] {
    match kek {
        Kek::Raw(key) => *key,
        Kek::Passphrase(pass) => {
            let mut out = [0u8; 32];
            let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                salt,
                pass.as_bytes(),
                &mut out,
            );
            out
        }
    }
}

fn aad(file: &EncryptedKeyFile) -> Vec<u8> {
    // Bind the header so nobody can swap the KDF parameters undetected.
    format!(
        "{}|{}|{:?}|{:?}",
        file.format, file.kdf, file.iterations, file.salt
    )
    .into_bytes()
}

fn encrypt(plain: &[u8], kek: &Kek) -> Result<String> {
    let rng = SystemRandom::new();
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce)
        .map_err(|_| PkiError::Crypto("random source"))?;
    let (kdf, iterations, salt) = match kek {
        Kek::Raw(_) => ("raw", None, Vec::new()),
        Kek::Passphrase(_) => {
            let mut salt = vec![0u8; 16];
            rng.fill(&mut salt)
                .map_err(|_| PkiError::Crypto("random source"))?;
            ("pbkdf2-sha256", Some(PBKDF2_ITERATIONS), salt)
        }
    };
    let mut file = EncryptedKeyFile {
        format: FORMAT.into(),
        kdf: kdf.into(),
        iterations,
        salt: iterations.map(|_| B64.encode(&salt)),
        nonce: B64.encode(nonce),
        ciphertext: String::new(),
    };
    let key = derive_key(kek, &salt, iterations.unwrap_or(1));
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| PkiError::Crypto("aead key"))?,
    );
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(&file)),
        &mut buf,
    )
    .map_err(|_| PkiError::Crypto("aead seal"))?;
    file.ciphertext = B64.encode(buf);
    serde_json::to_string_pretty(&file).map_err(|_| PkiError::Crypto("serialize key file"))
}

fn decrypt(file: &EncryptedKeyFile, kek: &Kek, path: &Path) -> Result<Vec<u8>> {
    let bad_file = |why: &str| PkiError::BadCaDir {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if file.format != FORMAT {
        return Err(bad_file("unknown encrypted key format"));
    }
    let salt = match &file.salt {
        Some(s) => B64.decode(s).map_err(|_| bad_file("bad salt"))?,
        None => Vec::new(),
    };
    let expect_passphrase = file.kdf == "pbkdf2-sha256";
    if expect_passphrase != matches!(kek, Kek::Passphrase(_)) {
        return Err(PkiError::BadKeyPassphrase {
            path: path.to_path_buf(),
        });
    }
    let nonce: [u8; NONCE_LEN] = B64
        .decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| bad_file("bad nonce"))?;
    let mut buf = B64
        .decode(&file.ciphertext)
        .map_err(|_| bad_file("bad ciphertext encoding"))?;
    let key = derive_key(kek, &salt, file.iterations.unwrap_or(PBKDF2_ITERATIONS));
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| PkiError::Crypto("aead key"))?,
    );
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(file)),
            &mut buf,
        )
        .map_err(|_| PkiError::BadKeyPassphrase {
            path: path.to_path_buf(),
        })?;
    Ok(plain.to_vec())
}

/// Creates (or replaces) `path` with mode 0600 from the first byte written.
pub fn write_file_0600(path: &Path, contents: &[u8]) -> Result<()> {
    Ok(rampart_tls::pem::write_file_0600(path, contents)?)
}

/// Writes a public file atomically (tmp + rename), mode 0644.
pub fn write_file_public(path: &Path, contents: &[u8]) -> Result<()> {
    Ok(rampart_tls::pem::write_file_public(path, contents)?)
}

pub use rampart_tls::pem::pem_encode;

/// Opens (creating, 0600) the lock file `path` and takes an exclusive
/// `flock` on it: writers of one CA file (service and CLI) take turns.
/// Released when the returned file is dropped.
pub fn lock_exclusive(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let f = options.open(path).map_err(|e| PkiError::io(path, e))?;
    f.lock().map_err(|e| PkiError::io(path, e))?;
    Ok(f)
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    B64.decode(body.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_kek() -> Kek {
        Kek::parse(&"ab".repeat(32), "test").unwrap()
    }

    #[test]
    fn round_trip_raw_key_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let prot = KeyProtection::Encrypted(raw_kek());
        write_private_key(&path, b"secret pkcs8", &prot).unwrap();
        assert_eq!(read_private_key(&path, &prot).unwrap(), b"secret pkcs8");
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn wrong_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        write_private_key(&path, b"x", &KeyProtection::Encrypted(raw_kek())).unwrap();
        let other = KeyProtection::Encrypted(Kek::parse(&"cd".repeat(32), "t").unwrap());
        let err = read_private_key(&path, &other).unwrap_err();
        assert!(matches!(err, PkiError::BadKeyPassphrase { .. }), "{err}");
        assert!(err.to_string().contains("wrong key-encryption key"));
    }

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let prot =
            KeyProtection::Encrypted(Kek::parse("correct horse battery staple", "t").unwrap());
        write_private_key(&path, b"pk", &prot).unwrap();
        assert_eq!(read_private_key(&path, &prot).unwrap(), b"pk");
        let wrong =
            KeyProtection::Encrypted(Kek::parse("incorrect horse battery staple", "t").unwrap());
        assert!(matches!(
            read_private_key(&path, &wrong),
            Err(PkiError::BadKeyPassphrase { .. })
        ));
    }

    #[test]
    fn unencrypted_key_needs_the_insecure_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_private_key(&path, b"pk", &KeyProtection::InsecureUnencrypted).unwrap();
        let err = read_private_key(&path, &KeyProtection::Encrypted(raw_kek())).unwrap_err();
        assert!(matches!(err, PkiError::UnencryptedKeyRefused { .. }));
        assert_eq!(
            read_private_key(&path, &KeyProtection::InsecureUnencrypted).unwrap(),
            b"pk"
        );
    }

    #[test]
    fn short_kek_refused() {
        assert!(matches!(
            Kek::parse("short", "t"),
            Err(PkiError::BadKek { .. })
        ));
    }
}
