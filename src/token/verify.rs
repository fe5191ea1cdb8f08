//! The one place that verifies tokens, strictly (PROTOCOL.md §4 "better").
//!
//! The path a Core access token takes: length cap → split into three segments → compare the
//! header segment with the one we mint (a byte comparison, no decoding) → constant-time HMAC
//! check with the pre-keyed state → one base64 decode of the claims into a stack buffer → one
//! JSON parse borrowing from it → claim checks. Nothing is decoded twice; no lock is taken.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::mac::MAX_TAG_LEN;
use super::{Claims, JwtInner, TokenUse, now_secs};
use crate::error::TokenError;
use crate::json::parse_object;

/// Claims as they appear in the token. Missing and mistyped claims are told apart: a mistyped
/// one fails the parse (`InvalidClaims`), a missing one is `None` (`MissingClaim`). Duplicate
/// keys fail the parse too.
#[derive(Deserialize)]
struct RawClaims<'a> {
    exi: Option<u64>,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow)]
    usefor: Option<Cow<'a, str>>,
}

/// The header fields that matter. `kid`, `jku`, `x5u`, `jwk`, `x5c` are never consulted: the
/// key is the configured one.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

/// Claims of a Core token are about 200 bytes; anything up to this size decodes on the stack.
const STACK_CLAIMS: usize = 768;

impl JwtInner {
    pub(crate) fn verify(&self, token: &str, usefor: TokenUse) -> Result<Claims, TokenError> {
        if token.len() > self.max_token_len {
            return Err(TokenError::TooLong);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, claims) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if claims.contains('.') {
            // JWE compact serialization (five segments) and other shapes.
            return Err(TokenError::Malformed);
        }

        if header != self.header_b64 {
            self.check_header(header)?;
        }

        let mut tag = [0u8; MAX_TAG_LEN];
        let tag_len = decode_into(signature, &mut tag).map_err(|e| match e {
            TokenError::TooLong => TokenError::InvalidSignature,
            other => other,
        })?;
        let tag = tag.get(..tag_len).ok_or(TokenError::Malformed)?;
        if tag_len != self.mac.tag_len() || !self.mac.verify(signing_input.as_bytes(), tag) {
            return Err(TokenError::InvalidSignature);
        }

        let mut stack = [0u8; STACK_CLAIMS];
        let heap;
        let json: &[u8] = match decode_into(claims, &mut stack) {
            Ok(n) => stack.get(..n).ok_or(TokenError::Malformed)?,
            Err(TokenError::TooLong) => {
                heap = URL_SAFE_NO_PAD
                    .decode(claims)
                    .map_err(|_| TokenError::Malformed)?;
                &heap
            }
            Err(e) => return Err(e),
        };
        let raw: RawClaims<'_> = parse_object(json).ok_or(TokenError::InvalidClaims)?;
        self.check_claims(raw, usefor)
    }

    fn check_header(&self, header: &str) -> Result<(), TokenError> {
        let mut buf = [0u8; 256];
        let n = decode_into(header, &mut buf).map_err(|_| TokenError::Malformed)?;
        let json = buf.get(..n).ok_or(TokenError::Malformed)?;
        let raw: RawHeader<'_> = parse_object(json).ok_or(TokenError::Malformed)?;
        if raw.alg.as_deref() != Some(self.algorithm.as_str()) {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if raw.crit.is_some() {
            // We understand no extension, so any `crit` must be refused (RFC 7515 §4.1.11).
            return Err(TokenError::UnsupportedHeader);
        }
        if raw.typ.is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::UnsupportedHeader);
        }
        Ok(())
    }

    fn check_claims(&self, raw: RawClaims<'_>, usefor: TokenUse) -> Result<Claims, TokenError> {
        let now = now_secs();
        let exp = raw.exp.ok_or(TokenError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        let horizon = now.saturating_add(self.leeway);
        if raw.nbf.is_some_and(|nbf| nbf > horizon) {
            return Err(TokenError::NotYetValid);
        }
        if raw.iat.is_some_and(|iat| iat > horizon) {
            return Err(TokenError::IssuedInFuture);
        }
        let iss = raw.iss.ok_or(TokenError::MissingClaim("iss"))?;
        if *iss != *self.issuer {
            return Err(TokenError::InvalidIssuer);
        }
        let token_use = raw.usefor.ok_or(TokenError::MissingClaim("usefor"))?;
        if token_use != usefor.as_str() {
            return Err(TokenError::WrongTokenUse);
        }
        let subject = raw.sub.ok_or(TokenError::MissingClaim("sub"))?;
        if subject.is_empty() {
            return Err(TokenError::MissingClaim("sub"));
        }
        Ok(Claims {
            subject: subject.into_owned(),
            jti: raw.jti.map(Cow::into_owned),
            issuer: Arc::clone(&self.issuer),
            expires_at: exp,
            issued_at: raw.iat,
            not_before: raw.nbf,
            lifetime: raw.exi,
            token_use: usefor,
        })
    }
}

/// Strict base64url (no padding, canonical trailing bits) into `out`. `TooLong` when `out` is
/// too small.
fn decode_into(segment: &str, out: &mut [u8]) -> Result<usize, TokenError> {
    if base64::decoded_len_estimate(segment.len()) > out.len() {
        return Err(TokenError::TooLong);
    }
    URL_SAFE_NO_PAD
        .decode_slice(segment, out)
        .map_err(|_| TokenError::Malformed)
}
