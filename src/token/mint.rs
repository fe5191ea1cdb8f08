//! The one place that mints tokens, byte for byte as datarhei Core does (docs/protocol.md §4),
//! plus the session id claim `sid` when a [`Grant`] carries one, signed with the key ring's
//! signing key (its header names its `kid` when the ring has more than one key or the key is
//! asymmetric).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::keyring::Signer;
use super::mac::MAX_TAG_LEN;
use super::{Grant, IssuedPair, JwtInner, TokenPair, TokenUse, fill_random, now_secs};
use crate::json::{push_str, push_u64};

/// The claims in Core's order (it serializes a sorted map): `exi exp iat iss jti sub usefor`,
/// then the crate's own: `sid` (only with a session), then the principal's extra claims (only
/// with some, appended as pre-serialized members). Written as serde_json writes such a struct
/// (the test below compares the two), so that without a session the bytes are exactly Core's.
#[derive(Clone, Copy)]
struct MintedClaims<'a> {
    exi: u64,
    exp: u64,
    iat: u64,
    iss: &'a str,
    jti: &'a str,
    sub: &'a str,
    usefor: &'static str,
    sid: Option<&'a str>,
    /// The extra claims' object (`{"roles":["admin"]}`), whose members follow the others.
    extra: Option<&'a str>,
}

impl MintedClaims<'_> {
    fn to_json(self) -> Vec<u8> {
        let mut json = Vec::with_capacity(
            160 + self.iss.len()
                + self.sub.len()
                + self.sid.map_or(0, str::len)
                + self.extra.map_or(0, str::len),
        );
        json.extend_from_slice(b"{\"exi\":");
        push_u64(&mut json, self.exi);
        json.extend_from_slice(b",\"exp\":");
        push_u64(&mut json, self.exp);
        json.extend_from_slice(b",\"iat\":");
        push_u64(&mut json, self.iat);
        json.extend_from_slice(b",\"iss\":");
        push_str(&mut json, self.iss);
        json.extend_from_slice(b",\"jti\":");
        push_str(&mut json, self.jti);
        json.extend_from_slice(b",\"sub\":");
        push_str(&mut json, self.sub);
        json.extend_from_slice(b",\"usefor\":");
        push_str(&mut json, self.usefor);
        if let Some(sid) = self.sid {
            json.extend_from_slice(b",\"sid\":");
            push_str(&mut json, sid);
        }
        // `…,"usefor":"access"` and `{"roles":["admin"]}` become `…,"usefor":"access","roles":["admin"]}`.
        match self.extra.and_then(|object| object.get(1..)) {
            Some(members) if members.len() > 1 => {
                json.push(b',');
                json.extend_from_slice(members.as_bytes());
            }
            _ => json.push(b'}'),
        }
        json
    }
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
        let json = MintedClaims {
            exi: ttl,
            exp: iat.saturating_add(ttl),
            iat,
            iss: &self.issuer,
            jti,
            sub: grant.subject(),
            usefor: usefor.as_str(),
            sid: grant.session_id(),
            extra: grant.extra_json(),
        }
        .to_json();

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
    use super::{MintedClaims, uuid_v4};

    /// The claims as serde_json writes the struct (what minting used before): the reference.
    #[derive(serde::Serialize)]
    struct Reference<'a> {
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

    #[test]
    fn claims_are_written_as_serde_json_writes_them() {
        let subjects = [
            "admin",
            "",
            "a\"b\\c",
            "line\nbreak",
            "\u{1}",
            "ünï € 😀",
            "<&>",
        ];
        let issuers = ["datarhei-core", "iss \"quoted\""];
        for sub in subjects {
            for iss in issuers {
                for sid in [None, Some("x3L9vC1qZ0m5bQ7sT2kYpA")] {
                    for (exi, iat) in [(600, 1_700_000_000), (0, 0), (u64::MAX, u64::MAX)] {
                        let claims = MintedClaims {
                            exi,
                            exp: iat.saturating_add(exi),
                            iat,
                            iss,
                            jti: "6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a",
                            sub,
                            usefor: "access",
                            sid,
                            extra: None,
                        };
                        let reference = serde_json::to_vec(&Reference {
                            exi,
                            exp: iat.saturating_add(exi),
                            iat,
                            iss,
                            jti: "6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a",
                            sub,
                            usefor: "access",
                            sid,
                        })
                        .unwrap();
                        assert_eq!(claims.to_json(), reference, "{sub:?} {iss:?} {sid:?}");
                        // Extra claims follow as members of the same object.
                        let with_extra = MintedClaims {
                            extra: Some(r#"{"roles":["admin"],"t":"\u0001"}"#),
                            ..claims
                        };
                        let mut expected = reference.clone();
                        expected.pop();
                        expected.extend_from_slice(br#","roles":["admin"],"t":"\u0001"}"#);
                        assert_eq!(with_extra.to_json(), expected);
                        let empty = MintedClaims {
                            extra: Some("{}"),
                            ..claims
                        };
                        assert_eq!(empty.to_json(), reference);
                    }
                }
            }
        }
    }

    #[test]
    fn uuid_v4_shape() {
        let id = uuid_v4(&[0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4(&[0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }
}
