//! The one place that mints tokens, byte for byte as datarhei Core does (docs/protocol.md §4),
//! plus the session id claim `sid` when a [`Grant`] carries one, signed with the key ring's
//! signing key (its header names its `kid` when the ring has more than one key or the key is
//! asymmetric).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::keyring::Signer;
use super::mac::MAX_TAG_LEN;
use super::{Grant, IssuedPair, JwtInner, TokenPair, TokenUse, fill_random, now_secs};

/// The claims in Core's order (it serializes a sorted map): `exi exp iat iss jti sub usefor`,
/// then the crate's own: `sid` (only with a session), then the principal's extra claims (only
/// with some, appended as pre-serialized members by `mint`). serde writes struct fields in declaration
/// order, so this order is the wire order; without a session the bytes are exactly Core's.
#[derive(Serialize)]
struct MintedClaims<'a> {
    exi: u64,
    exp: u64,
    iat: u64,
    iss: &'a str,
    jti: &'a str,
    sub: &'a str,
    usefor: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

impl JwtInner {
    pub(crate) fn issue(&self, grant: &Grant<'_>) -> IssuedPair {
        let iat = now_secs();
        let mut random = [0u8; 32];
        fill_random(&mut random);
        let (a, r) = random.split_at(16);
        let refresh_jti = uuid_v4(r);
        IssuedPair {
            tokens: TokenPair {
                access_token: self.mint(grant, TokenUse::Access, iat, &uuid_v4(a)),
                refresh_token: self.mint(grant, TokenUse::Refresh, iat, &refresh_jti),
            },
            refresh_jti,
            refresh_expires_at: iat.saturating_add(self.refresh_ttl),
        }
    }

    pub(crate) fn issue_access(&self, grant: &Grant<'_>) -> String {
        let mut random = [0u8; 16];
        fill_random(&mut random);
        self.mint(grant, TokenUse::Access, now_secs(), &uuid_v4(&random))
    }

    fn mint(&self, grant: &Grant<'_>, usefor: TokenUse, iat: u64, jti: &str) -> String {
        let ttl = match usefor {
            TokenUse::Access => self.access_ttl,
            TokenUse::Refresh => self.refresh_ttl,
        };
        let claims = MintedClaims {
            exi: ttl,
            exp: iat.saturating_add(ttl),
            iat,
            iss: &self.issuer,
            jti,
            sub: grant.subject(),
            usefor: usefor.as_str(),
            sid: grant.session_id(),
        };
        // Serializing integers and strings into a Vec cannot fail.
        let mut json = serde_json::to_vec(&claims).unwrap_or_default();
        // The principal's extra claims, pre-serialized and checked when it was built, go after
        // Core's claims and `sid`: `…,"usefor":"access"}` and `{"roles":["admin"]}` become
        // `…,"usefor":"access","roles":["admin"]}`.
        if let Some(members) = grant.extra_json().and_then(|object| object.get(1..))
            && json.pop() == Some(b'}')
        {
            json.push(b',');
            json.extend_from_slice(members.as_bytes());
        }

        let header = &self.ring.signing.header_b64;
        let mut token = String::with_capacity(header.len() + json.len() * 4 / 3 + 92);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&json, &mut token);
        match &self.ring.signer {
            Signer::Hmac(mac) => {
                let mut tag = [0u8; MAX_TAG_LEN];
                let n = mac.sign(token.as_bytes(), &mut tag);
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(tag.get(..n).unwrap_or_default(), &mut token);
            }
            #[cfg(feature = "asymmetric")]
            Signer::Private(signer) => {
                let mut signature = String::with_capacity(344);
                signer.sign(token.as_bytes(), &mut signature);
                token.push('.');
                token.push_str(&signature);
            }
        }
        token
    }
}

/// Formats 16 random bytes as an RFC 9562 version 4 UUID (lowercase, hyphenated).
fn uuid_v4(random: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    for (dst, src) in bytes.iter_mut().zip(random) {
        *dst = *src;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10xx
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uuid_v4;

    #[test]
    fn uuid_v4_shape() {
        let id = uuid_v4(&[0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4(&[0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }
}
