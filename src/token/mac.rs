//! Pre-keyed HMAC state: keyed once at configuration time, cloned per token.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::Algorithm;

/// An HMAC keyed once. Cloning the keyed state costs a memcpy; re-keying per call would hash
/// the key again (two compression-function calls for the padded inner and outer keys).
#[derive(Clone)]
pub(crate) enum PreKeyed {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

/// The longest tag of the supported algorithms (HS512).
pub(crate) const MAX_TAG_LEN: usize = 64;

impl PreKeyed {
    /// Keys the HMAC. HMAC accepts keys of every length, so `None` does not happen in practice;
    /// it is still surfaced as a configuration error rather than a panic.
    pub(crate) fn new(alg: Algorithm, key: &[u8]) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 => PreKeyed::Hs256(Hmac::new_from_slice(key).ok()?),
            Algorithm::HS384 => PreKeyed::Hs384(Hmac::new_from_slice(key).ok()?),
            Algorithm::HS512 => PreKeyed::Hs512(Hmac::new_from_slice(key).ok()?),
        })
    }

    pub(crate) fn tag_len(&self) -> usize {
        match self {
            PreKeyed::Hs256(_) => 32,
            PreKeyed::Hs384(_) => 48,
            PreKeyed::Hs512(_) => 64,
        }
    }

    /// The tag of `message`, written into `out`; returns its length.
    pub(crate) fn sign(&self, message: &[u8], out: &mut [u8; MAX_TAG_LEN]) -> usize {
        fn run<M: Mac + Clone>(mac: &M, message: &[u8], out: &mut [u8]) -> usize {
            let tag = mac.clone().chain_update(message).finalize().into_bytes();
            let n = tag.len().min(out.len());
            if let (Some(dst), Some(src)) = (out.get_mut(..n), tag.get(..n)) {
                dst.copy_from_slice(src);
            }
            n
        }
        match self {
            PreKeyed::Hs256(m) => run(m, message, out),
            PreKeyed::Hs384(m) => run(m, message, out),
            PreKeyed::Hs512(m) => run(m, message, out),
        }
    }

    /// Constant-time check of `tag` against the tag of `message`.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        match self {
            PreKeyed::Hs256(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
            PreKeyed::Hs384(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
            PreKeyed::Hs512(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
        }
    }
}
