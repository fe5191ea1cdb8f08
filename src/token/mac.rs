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
    /// Keys the HMAC. HMAC accepts keys of every length, so `None` only comes for a non-HMAC
    /// algorithm; it is surfaced as a configuration error rather than a panic.
    pub(crate) fn new(alg: Algorithm, key: &[u8]) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 => PreKeyed::Hs256(Hmac::new_from_slice(key).ok()?),
            Algorithm::HS384 => PreKeyed::Hs384(Hmac::new_from_slice(key).ok()?),
            Algorithm::HS512 => PreKeyed::Hs512(Hmac::new_from_slice(key).ok()?),
            Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256 => return None,
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

/// Wycheproof's HMAC vectors against the pre-keyed MAC, and truncated tags against the verify
/// path.
#[cfg(test)]
mod wycheproof_tests {
    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use wycheproof::TestResult;
    use wycheproof::mac::{TestName, TestSet};

    use super::{MAX_TAG_LEN, PreKeyed};
    use crate::error::TokenError;
    use crate::token::{Algorithm, JwtConfig, JwtKey, TokenUse};

    fn run(name: TestName, alg: Algorithm) {
        let set = TestSet::load(name).unwrap();
        let full_bits = PreKeyed::new(alg, b"k").unwrap().tag_len() * 8;
        let (mut full, mut truncated) = (0, 0);
        for group in &set.test_groups {
            for test in &group.tests {
                let mac = PreKeyed::new(alg, &test.key).unwrap();
                let tag: &[u8] = &test.tag;
                let mut ours = [0u8; MAX_TAG_LEN];
                let n = mac.sign(&test.msg, &mut ours);
                let valid = test.result == TestResult::Valid;
                let id = (test.tc_id, &test.comment);
                if group.tag_size == full_bits {
                    full += 1;
                    assert_eq!(mac.verify(&test.msg, tag), valid, "{id:?}");
                    assert_eq!(&ours[..n] == tag, valid, "{id:?}");
                } else {
                    // A truncated tag is never enough, even when it is a correct prefix
                    // (RFC 7518 §3.2: HS256 uses the full 256-bit output).
                    truncated += 1;
                    assert!(!mac.verify(&test.msg, tag), "{id:?}");
                    if valid {
                        assert!(ours[..n].starts_with(tag), "{id:?}");
                    }
                }
            }
        }
        assert!(
            full > 0 && truncated > 0,
            "{name:?}: {full} full, {truncated} truncated"
        );
    }

    #[test]
    fn hmac_sha256_vectors() {
        run(TestName::HmacSha256, Algorithm::HS256);
    }

    #[test]
    fn hmac_sha384_vectors() {
        run(TestName::HmacSha384, Algorithm::HS384);
    }

    #[test]
    fn hmac_sha512_vectors() {
        run(TestName::HmacSha512, Algorithm::HS512);
    }

    /// With each Wycheproof HMAC-SHA256 key, a token whose signature is the correct tag cut to
    /// the vector's tag size is refused by `Jwt::verify`; the full tag is accepted.
    #[test]
    fn truncated_tags_are_refused_by_verify() {
        let set = TestSet::load(TestName::HmacSha256).unwrap();
        let mut checked = 0;
        for group in &set.test_groups {
            let bytes = group.tag_size / 8;
            let Some(test) = group.tests.iter().find(|t| !t.key.is_empty()) else {
                continue;
            };
            let jwt = JwtConfig::new(JwtKey::from_secret(&*test.key).unwrap())
                .access_ttl(Duration::from_secs(600))
                .build()
                .unwrap();
            let token = jwt.issue_access("admin");
            let (input, _) = token.rsplit_once('.').unwrap();
            let mac = PreKeyed::new(Algorithm::HS256, &test.key).unwrap();
            let mut tag = [0u8; MAX_TAG_LEN];
            let n = mac.sign(input.as_bytes(), &mut tag);
            let cut = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&tag[..bytes.min(n)]));
            if bytes == n {
                assert!(jwt.verify(&cut, TokenUse::Access).is_ok());
            } else {
                assert_eq!(
                    jwt.verify(&cut, TokenUse::Access).unwrap_err(),
                    TokenError::InvalidSignature,
                    "{bytes}-byte tag"
                );
                checked += 1;
            }
        }
        assert!(checked > 0);
    }
}
