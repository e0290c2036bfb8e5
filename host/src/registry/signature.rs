//! Connector signatures: an Ed25519 signature over a component's bytes, carried inside the
//! component as its last custom section, `bss-signature`, so a signed connector is still one file
//! that is dropped into the plugins folder (a detached `.sig` beside it could arrive late, or not
//! at all, and the watcher would have to pair them).
//!
//! | part of the section | bytes |
//! |---|---|
//! | format version | 1 (`1`) |
//! | signer's public key | 32 (Ed25519; its key id is the hex of the first 8 bytes of its SHA-256) |
//! | signature | 64 (Ed25519) |
//!
//! With the public key inside, a file whose bytes changed after signing is told apart (tampered)
//! without any trust list; whether the signer is trusted, and for which connectors, is the trust
//! list's question.
//!
//! What is signed is [`DOMAIN`] followed by the SHA-256 of the component's bytes before the
//! section: the component as built, with no earlier signature. Signing again replaces the section.
//! wasmsign2's format was considered: it is built for core modules and carries several signatures
//! and key ids in a layout of its own; one signature at the end of a component, verified with the
//! `ring` the host already has, is all a connector needs.
//!
//! Keys are Ed25519 key pairs: the private key is a PKCS#8 document in a file of its own (mode
//! 0600); a public key is written `ed25519:<base64 of its 32 bytes>`.

use base64::Engine as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// The custom section's name.
pub const SECTION: &str = "bss-signature";

/// Put before the digest in what is signed, so a signature made for anything else never verifies.
pub const DOMAIN: &[u8] = b"bss:integration connector signature v1\0";

const VERSION: u8 = 1;
const KEY_ID_BYTES: usize = 8;
const PUBLIC_KEY_BYTES: usize = 32;
const SIGNATURE_BYTES: usize = 64;
const PAYLOAD_BYTES: usize = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;

/// A public key's short name: hex of the first 8 bytes of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_key)[..KEY_ID_BYTES])
}

/// A public key as text: `ed25519:BASE64`.
pub fn public_key_text(public_key: &[u8]) -> String {
    format!(
        "ed25519:{}",
        base64::engine::general_purpose::STANDARD.encode(public_key)
    )
}

/// Parses `ed25519:BASE64` (32 bytes); the error says what a key looks like.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = text.trim().strip_prefix("ed25519:") else {
        return Err(format!(
            "{text:?} is not a public key: write it as ed25519:BASE64, as `bss-host keys generate` prints it"
        ));
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        Ok(bytes) => Err(format!(
            "{text:?} holds {} bytes; an Ed25519 public key is 32",
            bytes.len()
        )),
        Err(error) => Err(format!("{text:?} is not valid base64: {error}")),
    }
}

/// A new key pair: the private key's PKCS#8 document and the public key.
pub fn generate() -> (Vec<u8>, Vec<u8>) {
    let random = ring::rand::SystemRandom::new();
    let document = Ed25519KeyPair::generate_pkcs8(&random).expect("the system's random numbers");
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).expect("a key just generated");
    (
        document.as_ref().to_vec(),
        pair.public_key().as_ref().to_vec(),
    )
}

/// What a component says about its signature (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// No `bss-signature` section.
    Unsigned,
    /// Signed by this public key; the bytes before the section are what was signed.
    By {
        public_key: Vec<u8>,
        signature: Vec<u8>,
        signed_len: usize,
    },
}

/// Why a component's signature cannot even be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "its {SECTION} section is not the last section: anything after a signature is unsigned"
    )]
    NotLast,
    #[error("its {SECTION} section is malformed ({0})")]
    Malformed(String),
    #[error("not a WebAssembly binary")]
    NotWasm,
}

fn leb128(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return usize::try_from(value).ok();
        }
    }
    None
}

/// Finds the signature section (walking the top-level sections: ids and sizes only).
pub fn read(bytes: &[u8]) -> Result<Signed, SignatureError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(SignatureError::NotWasm);
    }
    let mut at = 8;
    let mut found: Option<(usize, &[u8])> = None;
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let size = leb128(bytes, &mut at).ok_or(SignatureError::NotWasm)?;
        let end = at.checked_add(size).filter(|end| *end <= bytes.len());
        let Some(end) = end else {
            return Err(SignatureError::NotWasm);
        };
        if found.is_some() {
            return Err(SignatureError::NotLast);
        }
        if id == 0 {
            let mut name_at = at;
            let name_len = leb128(bytes, &mut name_at).ok_or(SignatureError::NotWasm)?;
            // A name that runs past its section is not a section this host reads.
            if name_at > end || name_len > end - name_at {
                return Err(SignatureError::NotWasm);
            }
            let name = bytes.get(name_at..name_at + name_len);
            if name == Some(SECTION.as_bytes()) {
                found = Some((start, &bytes[name_at + name_len..end]));
            }
        }
        at = end;
    }
    let Some((signed_len, payload)) = found else {
        return Ok(Signed::Unsigned);
    };
    if payload.len() != PAYLOAD_BYTES || payload[0] != VERSION {
        return Err(SignatureError::Malformed(format!(
            "{} bytes, format {}; this host reads format {VERSION} of {PAYLOAD_BYTES} bytes",
            payload.len(),
            payload.first().copied().unwrap_or(0),
        )));
    }
    Ok(Signed::By {
        public_key: payload[1..1 + PUBLIC_KEY_BYTES].to_vec(),
        signature: payload[1 + PUBLIC_KEY_BYTES..].to_vec(),
        signed_len,
    })
}

fn message(unsigned: &[u8]) -> Vec<u8> {
    let mut message = DOMAIN.to_vec();
    message.extend_from_slice(&Sha256::digest(unsigned));
    message
}

/// The component without its signature section (as it was built).
pub fn unsigned_bytes(bytes: &[u8]) -> Result<&[u8], SignatureError> {
    Ok(match read(bytes)? {
        Signed::Unsigned => bytes,
        Signed::By { signed_len, .. } => &bytes[..signed_len],
    })
}

/// Signs a component with the PKCS#8 key `private_key`: its bytes with any earlier signature
/// replaced by this one.
pub fn sign(bytes: &[u8], private_key: &[u8]) -> Result<Vec<u8>, String> {
    let pair = Ed25519KeyPair::from_pkcs8(private_key)
        .map_err(|_| "the key file does not hold an Ed25519 private key (PKCS#8), as `bss-host keys generate` writes".to_string())?;
    let unsigned = unsigned_bytes(bytes).map_err(|e| e.to_string())?;
    let signature = pair.sign(&message(unsigned));
    let mut payload = vec![VERSION];
    payload.extend_from_slice(pair.public_key().as_ref());
    payload.extend_from_slice(signature.as_ref());
    let mut section = Vec::new();
    write_leb128(&mut section, SECTION.len());
    section.extend_from_slice(SECTION.as_bytes());
    section.extend_from_slice(&payload);
    let mut signed = unsigned.to_vec();
    signed.push(0);
    write_leb128(&mut signed, section.len());
    signed.extend_from_slice(&section);
    Ok(signed)
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A verified signature: who signed the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub public_key: Vec<u8>,
    pub key_id: String,
}

/// Verifies a component's signature: `Ok(None)` when it is unsigned, `Ok(Some(signer))` when the
/// signature matches its bytes, and an error when it does not (the bytes were changed after they
/// were signed) or cannot be read.
pub fn verify(bytes: &[u8]) -> Result<Option<Signer>, String> {
    let Signed::By {
        public_key,
        signature,
        signed_len,
    } = read(bytes).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let key_id = key_id(&public_key);
    UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(&message(&bytes[..signed_len]), &signature)
        .map_err(|_| {
            format!("tampered: its signature by key {key_id} does not match its bytes (they were changed after it was signed)")
        })?;
    Ok(Some(Signer { public_key, key_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: magic, component version and layer.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_signature_verifies_and_any_changed_byte_is_caught() {
        let (private, public) = generate();
        let signed = sign(EMPTY_COMPONENT, &private).unwrap();
        assert!(matches!(read(&signed).unwrap(), Signed::By { .. }));
        let signer = verify(&signed).unwrap().unwrap();
        assert_eq!(signer.public_key, public);
        assert_eq!(signer.key_id, key_id(&public));
        assert_eq!(unsigned_bytes(&signed).unwrap(), EMPTY_COMPONENT);
        // Signing again replaces the signature rather than stacking another.
        let (other_private, other_public) = generate();
        let resigned = sign(&signed, &other_private).unwrap();
        assert_eq!(resigned.len(), signed.len());
        assert_eq!(verify(&resigned).unwrap().unwrap().public_key, other_public);
        // One byte of the component changed: tampered.
        let mut tampered = signed.clone();
        tampered[6] ^= 1;
        assert!(verify(&tampered).unwrap_err().contains("tampered"));
        // A signature claiming another key: tampered too.
        let mut claimed = signed.clone();
        let at = claimed.len() - SIGNATURE_BYTES - PUBLIC_KEY_BYTES;
        claimed[at..at + PUBLIC_KEY_BYTES].copy_from_slice(&other_public);
        assert!(verify(&claimed).unwrap_err().contains("tampered"));
        assert_eq!(read(EMPTY_COMPONENT).unwrap(), Signed::Unsigned);
        assert_eq!(verify(EMPTY_COMPONENT).unwrap(), None);
        // A section after the signature is not covered by it.
        let mut appended = signed.clone();
        appended.extend_from_slice(&[0, 2, 1, b'x']);
        assert_eq!(read(&appended), Err(SignatureError::NotLast));
        // A custom section whose name runs past its end is refused, not a panic.
        let mut lying = EMPTY_COMPONENT.to_vec();
        lying.extend_from_slice(&[0, 1, 13]);
        lying.extend_from_slice(SECTION.as_bytes());
        assert_eq!(read(&lying), Err(SignatureError::NotWasm));
    }

    #[test]
    fn public_keys_round_trip_as_text() {
        let (_, public) = generate();
        let text = public_key_text(&public);
        assert_eq!(parse_public_key(&text).unwrap(), public);
        assert!(
            parse_public_key("ssh-ed25519 AAAA")
                .unwrap_err()
                .contains("ed25519:BASE64")
        );
        assert_eq!(key_id(&public).len(), 16);
    }
}
