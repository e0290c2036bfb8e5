//! Secrets at rest: each secret value is sealed with ChaCha20-Poly1305 under the host's key, with a
//! random nonce per value and the value's place (instance and key) as associated data, so a sealed
//! value copied to another place does not open. The key is never stored in the database: it lives
//! in a key file (`key` in the data folder, created with mode 0600 on first run) or comes from the
//! `BSS_HOST_KEY` environment variable (base64 of 32 bytes).
//!
//! Sealed form: `v1:` followed by base64 of nonce (12 bytes) ‖ ciphertext ‖ tag.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// The environment variable that may hold the key instead of the key file.
pub const KEY_VARIABLE: &str = "BSS_HOST_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the key file {path} could not be {action}: {source}")]
    KeyFile {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the key in {origin} is not base64 of {KEY_LEN} bytes; restore the right key (it cannot be recovered from the database)"
    )]
    BadKey { origin: String },
    #[error(
        "a stored secret ({place}) does not open with this key: the key file or {KEY_VARIABLE} is not the one it was sealed with"
    )]
    WrongKey { place: String },
    #[error("a stored secret ({place}) is damaged: {reason}")]
    Damaged { place: String, reason: String },
}

/// Seals and opens secret values with the host's key.
pub struct SecretBox {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

fn decode_key(text: &str, origin: &str) -> Result<[u8; KEY_LEN], SecretError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| SecretError::BadKey {
            origin: origin.to_string(),
        })?;
    bytes.try_into().map_err(|_| SecretError::BadKey {
        origin: origin.to_string(),
    })
}

impl SecretBox {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        SecretBox {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        }
    }

    /// Whether a key is available without creating one.
    pub fn key_exists(data: &Path) -> bool {
        std::env::var_os(KEY_VARIABLE).is_some() || data.join("key").exists()
    }

    /// The key from `BSS_HOST_KEY`, else from `data/key`, creating that file (0600) when absent.
    pub fn open_or_create(data: &Path) -> Result<Self, SecretError> {
        if let Ok(text) = std::env::var(KEY_VARIABLE) {
            return Ok(Self::from_key(decode_key(&text, KEY_VARIABLE)?));
        }
        let path = data.join("key");
        let fail = |action: &'static str| {
            let path = path.clone();
            move |source| SecretError::KeyFile {
                path,
                action,
                source,
            }
        };
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(fail("read"))?;
            return Ok(Self::from_key(decode_key(
                &text,
                &path.display().to_string(),
            )?));
        }
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system random source works");
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(fail("created"))?;
        file.write_all(format!("{encoded}\n").as_bytes())
            .map_err(fail("written"))?;
        file.sync_all().map_err(fail("written"))?;
        Ok(Self::from_key(key))
    }

    /// Seals `plain` for its place (`instance/key`).
    pub fn seal(&self, place: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.as_bytes()),
                &mut data,
            )
            .expect("sealing cannot fail for in-memory data");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    /// Opens a value sealed for `place`.
    pub fn open(&self, place: &str, sealed: &str) -> Result<String, SecretError> {
        let damaged = |reason: &str| SecretError::Damaged {
            place: place.to_string(),
            reason: reason.to_string(),
        };
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| damaged("it has no v1: prefix"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| damaged("it is not base64"))?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(damaged("it is too short"));
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged("bad nonce"))?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(place.as_bytes()), &mut data)
            .map_err(|_| SecretError::WrongKey {
                place: place.to_string(),
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged("it is not text"))
    }
}

/// A secret of `bytes` random bytes, URL-safe (base64 without padding): API tokens, hook tokens.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_is_randomised_bound_to_its_place_and_keyed() {
        let secrets = SecretBox::from_key([7; 32]);
        let a = secrets.seal("acme/private-key", "hunter2");
        let b = secrets.seal("acme/private-key", "hunter2");
        assert_ne!(a, b, "a random nonce per value");
        assert!(!a.contains("hunter2"));
        assert_eq!(secrets.open("acme/private-key", &a).unwrap(), "hunter2");
        assert!(matches!(
            secrets.open("other/private-key", &a),
            Err(SecretError::WrongKey { .. })
        ));
        let other = SecretBox::from_key([8; 32]);
        assert!(matches!(
            other.open("acme/private-key", &a),
            Err(SecretError::WrongKey { .. })
        ));
        assert!(matches!(
            secrets.open("acme/private-key", "v1:!!"),
            Err(SecretError::Damaged { .. })
        ));
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::open_or_create(dir.path()).unwrap();
        let sealed = first.seal("p", "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = SecretBox::open_or_create(dir.path()).unwrap();
        assert_eq!(second.open("p", &sealed).unwrap(), "v");
        std::fs::write(dir.path().join("key"), "not a key").unwrap();
        let err = SecretBox::open_or_create(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("is not base64 of 32 bytes"),
            "{err}"
        );
    }
}
