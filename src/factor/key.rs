//! [`FactorKey`]: the application key that seals TOTP secrets at rest and keys the hashes of
//! recovery codes and remembered devices.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The first byte of every sealed secret: the format (XChaCha20-Poly1305, 24-byte nonce).
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// The application key of the second factor: 32 random bytes.
///
/// TOTP secrets are stored sealed with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`)
/// under a key derived from it, with a fresh random 192-bit nonce each, bound to their user (a
/// sealed secret copied to another user does not open). Recovery codes and remembered-device
/// tokens are stored as HMAC-SHA-256 under two further derived keys. Give every instance of a
/// fleet the same key; losing it loses every enrolment (users then need their recovery path).
///
/// ```
/// use tower_jwt_login::factor::FactorKey;
///
/// // `openssl rand -base64 32`, or 64 hex digits.
/// let key = FactorKey::parse("q0JqGqV9o5sU1Vd8m3uQ6x1Zb7cY2eT4rN8wP0aL5kM=").unwrap();
/// assert!(FactorKey::parse("too short").is_err());
/// assert!(FactorKey::parse("").is_err());
/// # let _ = key;
/// ```
#[derive(Clone)]
pub struct FactorKey {
    cipher: XChaCha20Poly1305,
    recovery: Zeroizing<[u8; 32]>,
    device: Zeroizing<[u8; 32]>,
    check: Zeroizing<[u8; 32]>,
}

/// Why a [`FactorKey`] could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorKeyError {
    /// No key was given.
    Missing,
    /// Not 32 bytes in base64 (standard or URL-safe, padded or not) or hex.
    Malformed,
}

impl fmt::Display for FactorKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FactorKeyError::Missing => {
                "no second-factor key: give 32 random bytes, base64 or hex (openssl rand -base64 32)"
            }
            FactorKeyError::Malformed => {
                "the second-factor key must be 32 bytes, written as base64 or as 64 hex digits \
                 (openssl rand -base64 32)"
            }
        })
    }
}

impl std::error::Error for FactorKeyError {}

/// HMAC-SHA-256 of `label` under `key`: one derived key per purpose.
fn derive(key: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) {
        mac.update(b"tower-jwt-login second factor\0");
        mac.update(label);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

impl FactorKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        let sealing = derive(&key, b"seal");
        FactorKey {
            cipher: XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*sealing)),
            recovery: derive(&key, b"recovery"),
            device: derive(&key, b"device"),
            check: derive(&key, b"check"),
        }
    }

    /// The key from its text: 32 bytes as base64 (standard or URL-safe, with or without
    /// padding) or as 64 hex digits; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, FactorKeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FactorKeyError::Missing);
        }
        let decoded: Option<Zeroizing<Vec<u8>>> =
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode(text.as_bytes())
                    .ok()
                    .map(Zeroizing::new)
            } else {
                [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
                    .iter()
                    .find_map(|engine| engine.decode(text).ok())
                    .map(Zeroizing::new)
            };
        let bytes: [u8; 32] = decoded
            .as_deref()
            .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
            .ok_or(FactorKeyError::Malformed)?;
        Ok(FactorKey::from_bytes(bytes))
    }

    /// A random key, for a single process whose enrolments live no longer than it (tests, a
    /// memory store).
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        crate::token::fill_random(bytes.as_mut_slice());
        FactorKey::from_bytes(*bytes)
    }

    /// `secret` sealed for `subject`: version byte, nonce, ciphertext and tag.
    pub(crate) fn seal(&self, subject: &str, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::token::fill_random(&mut nonce);
        let aad = aad(subject);
        let payload = Payload {
            msg: secret,
            aad: &aad,
        };
        // Encrypting into a Vec fails only for messages beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The secret `sealed` for `subject`, or `None` when it does not open (another key, another
    /// subject, altered bytes).
    pub(crate) fn open(&self, subject: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        let aad = aad(subject);
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// The stored form of a recovery code (already normalized) of `subject`: hex HMAC-SHA-256.
    pub(crate) fn recovery_hash(&self, subject: &str, code: &str) -> String {
        keyed_hex(&self.recovery, subject, b"", code.as_bytes())
    }

    /// The stored form of a remembered-device token of `subject`, bound to `epoch` (see
    /// [`SecondFactorBuilder::credential_epoch`](super::SecondFactorBuilder::credential_epoch)).
    pub(crate) fn device_hash(&self, subject: &str, epoch: &[u8], token: &str) -> String {
        keyed_hex(&self.device, subject, epoch, token.as_bytes())
    }

    /// The key-check value: sealed known bytes, which open only under this key.
    pub(crate) fn check_value(&self) -> Vec<u8> {
        self.seal("", &*self.check)
    }

    /// Whether `stored` (another instance's [`check_value`](Self::check_value)) was sealed under
    /// this key.
    pub(crate) fn matches_check(&self, stored: &[u8]) -> bool {
        self.open("", stored)
            .is_some_and(|opened| opened.as_slice() == self.check.as_slice())
    }
}

/// The associated data of a sealed secret: a label and its subject.
fn aad(subject: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + subject.len());
    aad.extend_from_slice(b"tower-jwt-login totp v1\0");
    aad.extend_from_slice(subject.as_bytes());
    aad
}

fn keyed_hex(key: &[u8; 32], subject: &str, epoch: &[u8], value: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    // Lengths first, so that no two (subject, epoch, value) triples hash the same input.
    for part in [subject.as_bytes(), epoch] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.update(value);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

impl fmt::Debug for FactorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FactorKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_subject_and_key() {
        let key = FactorKey::from_bytes([7; 32]);
        let sealed = key.seal("alice", b"secret bytes");
        assert_eq!(sealed.len(), 1 + 24 + 12 + 16);
        assert!(!sealed.windows(12).any(|w| w == b"secret bytes"));
        assert_eq!(
            key.open("alice", &sealed).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(key.open("bob", &sealed).is_none());
        assert!(
            FactorKey::from_bytes([8; 32])
                .open("alice", &sealed)
                .is_none()
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open("alice", &altered).is_none());
        assert!(key.open("alice", &sealed[..20]).is_none());
        assert!(key.open("alice", &[]).is_none());
        // A fresh nonce each time.
        assert_ne!(key.seal("alice", b"x"), key.seal("alice", b"x"));
    }

    #[test]
    fn the_check_value_tells_keys_apart() {
        let key = FactorKey::from_bytes([1; 32]);
        let other = FactorKey::from_bytes([2; 32]);
        assert!(key.matches_check(&key.check_value()));
        assert!(!other.matches_check(&key.check_value()));
        assert!(!key.matches_check(b"garbage"));
    }

    #[test]
    fn keys_parse_from_base64_and_hex_only_at_32_bytes() {
        let hex = "00".repeat(31) + "ff";
        let b64 = STANDARD.encode([0u8; 32]);
        let b64url = URL_SAFE_NO_PAD.encode([0xfb; 32]);
        for text in [
            hex.as_str(),
            &hex.to_uppercase(),
            &b64,
            &b64url,
            &format!(" {b64}\n"),
        ] {
            assert!(FactorKey::parse(text).is_ok(), "{text:?}");
        }
        assert_eq!(FactorKey::parse("  ").unwrap_err(), FactorKeyError::Missing);
        for text in [
            "00".repeat(31).as_str(),
            &STANDARD.encode([0u8; 31]),
            "not a key!",
        ] {
            assert_eq!(
                FactorKey::parse(text).unwrap_err(),
                FactorKeyError::Malformed,
                "{text:?}"
            );
        }
        // The same bytes in either form are the same key.
        let a = FactorKey::parse(&"ab".repeat(32)).unwrap();
        let b = FactorKey::parse(&STANDARD.encode([0xab; 32])).unwrap();
        assert_eq!(a.recovery_hash("s", "c"), b.recovery_hash("s", "c"));
        assert_eq!(format!("{a:?}"), "FactorKey(<redacted>)");
    }

    #[test]
    fn hashes_are_bound_to_subject_and_epoch() {
        let key = FactorKey::from_bytes([3; 32]);
        let h = key.device_hash("alice", b"e1", "token");
        assert_eq!(h.len(), 64);
        assert_ne!(h, key.device_hash("bob", b"e1", "token"));
        assert_ne!(h, key.device_hash("alice", b"e2", "token"));
        assert_ne!(h, key.device_hash("alice", b"", "e1token"));
        assert_ne!(
            key.recovery_hash("alice", "x"),
            key.recovery_hash("bob", "x")
        );
    }
}
