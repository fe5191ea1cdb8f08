//! The one place that verifies tokens, strictly (docs/protocol.md §4 "better").
//!
//! The path a Core access token takes: length cap → split into three segments → compare the
//! header segment with the one we mint (a byte comparison, no decoding; any other header is
//! decoded and its `kid` picks the ring's key, whose algorithm must be the header's; without
//! `kid`, the signing key, then on failure the previous HMAC secrets) →
//! constant-time HMAC check with the pre-keyed state (or the key's asymmetric check) → one base64 decode of the claims into a stack buffer → one
//! JSON parse borrowing from it → claim checks. Nothing is decoded twice; no lock is taken.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::keyring::{RingKey, Verifier};
use super::mac::MAX_TAG_LEN;
use super::{Algorithm, ClaimText, Claims, JwtInner, TokenUse, now_secs};
use crate::error::TokenError;
use crate::json::parse_object;

/// Claims as they appear in the token. Missing and mistyped claims are told apart: a mistyped
/// one fails the parse (`InvalidClaims`), a missing one is `None` (`MissingClaim`). An explicit
/// `null` is mistyped, not missing (it is no NumericDate nor string). Duplicate keys fail the
/// parse too.
///
/// Strings are [`Text`], not `Cow<str>`: serde's `#[serde(borrow)]` does not reach through
/// `Option`, so an `Option<Cow<str>>` would allocate for every claim.
#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(default, deserialize_with = "non_null")]
    exi: Option<u64>,
    #[serde(default, deserialize_with = "non_null")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "non_null")]
    iat: Option<u64>,
    #[serde(default, deserialize_with = "non_null")]
    nbf: Option<u64>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    iss: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    jti: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    sub: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    usefor: Option<Text<'a>>,
    /// The crate's session id claim (with sessions on); a string when present.
    #[serde(borrow, default, deserialize_with = "non_null")]
    sid: Option<Text<'a>>,
}

/// A present claim: its value must be a `T` (`null` included in "not a `T`").
fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The header fields that matter. `jku`, `x5u`, `jwk`, `x5c` are never consulted: the key is
/// one of the ring's. `kid` picks the ring's key when its keys have `kid`s (without one, the
/// signing key, then the previous HMAC secrets, are tried); a lone HMAC secret ignores it,
/// whatever its value, as before there were rings.
///
/// As in the claims, a present field is present whatever its value: `"crit": null` is a `crit`
/// (refused), `"typ": null` is no string (refused).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default, deserialize_with = "non_null")]
    alg: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    typ: Option<Text<'a>>,
    #[serde(default, deserialize_with = "non_null")]
    crit: Option<IgnoredAny>,
    #[serde(borrow, default, deserialize_with = "non_null")]
    kid: Option<AnyText<'a>>,
}

/// A header member that is a string (`Some`) or anything else (`None`), for `kid`.
struct AnyText<'a>(Option<Text<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for AnyText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = AnyText<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(AnyText(Some(Text(Cow::Borrowed(v)))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(AnyText(Some(Text(Cow::Owned(v.to_owned())))))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AnyText(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AnyText(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AnyText(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AnyText(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(AnyText(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AnyText(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyText(None))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// A JSON string borrowed from the decoded segment when it has no escapes (always, for the
/// crate's own tokens), owned otherwise. Anything but a string is a type error.
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// Checks an asymmetric signature: decoded onto the stack, verified with the key's one algorithm.
#[cfg(feature = "asymmetric")]
fn verify_public(
    public: &super::asym::Verifier,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), TokenError> {
    let mut sig = [0u8; super::asym::MAX_SIG_LEN];
    let len = decode_into(signature, &mut sig).map_err(|e| match e {
        TokenError::TooLong => TokenError::InvalidSignature,
        other => other,
    })?;
    let sig = sig.get(..len).ok_or(TokenError::Malformed)?;
    if public.verify(signing_input, sig) {
        Ok(())
    } else {
        Err(TokenError::InvalidSignature)
    }
}

/// The key(s) a token's header selects.
enum Selected<'a> {
    /// The key its `kid` names (or the signing key of a ring without `kid`s).
    Named(&'a RingKey),
    /// No `kid`, in a ring with `kid`s: the header's `alg`, which the signing key or one of
    /// the previous secrets has.
    Kidless(Algorithm),
}

/// Checks the signature over `signing_input` with `key`, in the key's one algorithm.
fn check_with(key: &RingKey, signing_input: &[u8], signature: &[u8]) -> Result<(), TokenError> {
    match &key.verifier {
        Verifier::Hmac(mac) => {
            // Room for base64's length estimate: 86 characters (an HS512 tag) estimate 66
            // bytes; a 64-byte buffer refused every HS512 token.
            let mut tag = [0u8; MAX_TAG_LEN + 3];
            let tag_len = decode_into(signature, &mut tag).map_err(|e| match e {
                TokenError::TooLong => TokenError::InvalidSignature,
                other => other,
            })?;
            let tag = tag.get(..tag_len).ok_or(TokenError::Malformed)?;
            if tag_len != mac.tag_len() || !mac.verify(signing_input, tag) {
                return Err(TokenError::InvalidSignature);
            }
            Ok(())
        }
        #[cfg(feature = "asymmetric")]
        Verifier::Public(public) => verify_public(public, signing_input, signature),
    }
}

/// Claims of a Core token are about 200 bytes; anything up to this size decodes on the stack.
const STACK_CLAIMS: usize = 768;

impl JwtInner {
    /// Verifies `token`, given as bytes: a token that verifies is ASCII (three base64url
    /// segments), so the bytes of a header value can be verified before (and instead of)
    /// checking that they are text; see [`crate::bearer::bearer_bytes`].
    pub(crate) fn verify(&self, token: &[u8], usefor: TokenUse) -> Result<Claims, TokenError> {
        if token.len() > self.max_token_len {
            return Err(TokenError::TooLong);
        }
        let (signing_input, signature) =
            split_at_byte(token, token.iter().rposition(|&b| b == b'.'))?;
        let (header, claims) =
            split_at_byte(signing_input, signing_input.iter().position(|&b| b == b'.'))?;
        // JWE compact serialization (five segments) and other shapes put a `.` between the first
        // and the last: always `Malformed`. A token whose signature checks out needs no scan for
        // it (the claims' base64url decoding refuses a `.` as `Malformed` anyway), so the middle
        // is scanned only when the header or the signature is refused, to report the shape.
        self.check_signature(header, signing_input, signature)
            .map_err(|e| {
                if claims.contains(&b'.') {
                    TokenError::Malformed
                } else {
                    e
                }
            })?;

        let mut stack = [0u8; STACK_CLAIMS];
        let mut heap;
        let json: &[u8] = match decode_into(claims, &mut stack) {
            Ok(n) => stack.get(..n).ok_or(TokenError::Malformed)?,
            Err(TokenError::TooLong) => {
                heap = vec![0u8; decoded_len(claims.len())?];
                let n = decode_into(claims, &mut heap)?;
                heap.get(..n).ok_or(TokenError::Malformed)?
            }
            Err(e) => return Err(e),
        };
        let (raw, extra) = match fast_claims(json) {
            Some(fast) => fast,
            None => slow_claims(json)?,
        };
        self.check_claims(raw, extra.as_deref(), usefor)
    }

    /// The header names one of the ring's keys (or is the signing key's exact header), and the
    /// signature over `signing_input` is that key's. A header without `kid` in a ring with
    /// `kid`s names no key: such a token is tried against the signing key, then, only if that
    /// fails, against the previous HMAC secrets
    /// ([`Ring::previous_secrets`](super::keyring::Ring::previous_secrets)).
    fn check_signature(
        &self,
        header: &[u8],
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        if header == self.ring.signing.header_b64.as_bytes() {
            return check_with(&self.ring.signing, signing_input, signature);
        }
        match self.select_key(header)? {
            Selected::Named(key) => check_with(key, signing_input, signature),
            Selected::Kidless(alg) => {
                // The signing key first: its valid tokens cost what they cost without previous
                // secrets, which are tried only for a signature it refuses.
                let signing = &self.ring.signing;
                let mut outcome = if signing.alg == alg {
                    check_with(signing, signing_input, signature)
                } else {
                    Err(TokenError::InvalidSignature)
                };
                if matches!(outcome, Err(TokenError::InvalidSignature)) {
                    for key in self.ring.previous_secrets(alg) {
                        outcome = check_with(key, signing_input, signature);
                        if !matches!(outcome, Err(TokenError::InvalidSignature)) {
                            break;
                        }
                    }
                }
                outcome
            }
        }
    }

    /// A header other than the signing key's exact one: the key it names (by `kid`, or the
    /// signing key of a ring without `kid`s), which must be for the header's `alg`; or, without
    /// `kid` in a ring with `kid`s, the header's `alg`, which one of the keys such a token is
    /// tried against must have.
    fn select_key(&self, header: &[u8]) -> Result<Selected<'_>, TokenError> {
        let mut buf = [0u8; 512];
        let n = decode_into(header, &mut buf).map_err(|_| TokenError::Malformed)?;
        let json = buf.get(..n).ok_or(TokenError::Malformed)?;
        let raw: RawHeader<'_> = parse_object(json).ok_or(TokenError::Malformed)?;
        let alg = raw.alg.as_deref().unwrap_or_default();
        // Each key takes its own algorithm only, whatever the header says.
        let selected = match raw.kid {
            _ if !self.ring.by_kid => Selected::Named(&self.ring.signing),
            Some(AnyText(Some(kid))) => {
                Selected::Named(self.ring.find(&kid).ok_or(TokenError::UnknownKey)?)
            }
            Some(AnyText(None)) => return Err(TokenError::UnsupportedHeader),
            None if self.ring.signing.alg.as_str() == alg => {
                Selected::Kidless(self.ring.signing.alg)
            }
            None => Selected::Kidless(
                Algorithm::from_name(alg)
                    .filter(|&alg| self.ring.previous_secrets(alg).next().is_some())
                    .ok_or(TokenError::UnsupportedAlgorithm)?,
            ),
        };
        if let Selected::Named(key) = selected
            && key.alg.as_str() != alg
        {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if raw.crit.is_some() {
            // We understand no extension, so any `crit` must be refused (RFC 7515 §4.1.11).
            return Err(TokenError::UnsupportedHeader);
        }
        if raw.typ.is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::UnsupportedHeader);
        }
        Ok(selected)
    }

    /// Core's checks on `raw`; the [`Claims`] with `extra` (the extra claims' object without
    /// its opening brace) when they pass.
    fn check_claims(
        &self,
        raw: RawClaims<'_>,
        extra: Option<&str>,
        usefor: TokenUse,
    ) -> Result<Claims, TokenError> {
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
        if *token_use != *usefor.as_str() {
            return Err(TokenError::WrongTokenUse);
        }
        let subject = raw.sub.ok_or(TokenError::MissingClaim("sub"))?;
        if subject.is_empty() {
            return Err(TokenError::MissingClaim("sub"));
        }
        Ok(Claims {
            text: ClaimText::new(&subject, raw.jti.as_deref(), raw.sid.as_deref(), extra),
            issuer: Arc::clone(&self.issuer),
            expires_at: exp,
            issued_at: raw.iat,
            not_before: raw.nbf,
            lifetime: raw.exi,
            token_use: usefor,
        })
    }
}

/// Extra claims as the verifier hands them to [`Claims`]: their object without its opening
/// brace (`"roles":["admin"]}`), borrowed from the token when it was read as minted.
type Extras<'a> = Option<Cow<'a, str>>;

/// Claims laid out as the crate mints them: Core's (and `sid`) read by [`parse_minted`], the
/// principal's extra claims, if any, by [`minted_extras`]. `None` for any other layout.
fn fast_claims(json: &[u8]) -> Option<(RawClaims<'_>, Extras<'_>)> {
    // UTF-8 is checked once for the whole object (not UTF-8: serde's path gives the verdict).
    let json = std::str::from_utf8(json).ok()?;
    match parse_minted(json)? {
        (raw, "}") => Some((raw, None)),
        (raw, tail) => Some((raw, Some(minted_extras(tail.as_bytes())?))),
    }
}

/// Claims in any other layout: serde reads Core's claims, then the extra ones are collected.
fn slow_claims(json: &[u8]) -> Result<(RawClaims<'_>, Extras<'_>), TokenError> {
    Ok((
        parse_object::<RawClaims<'_>>(json).ok_or(TokenError::InvalidClaims)?,
        extra_members(json, Reserved::Skip)?.map(Cow::Owned),
    ))
}

/// The extra claims after Core's (and `sid`) in a token laid out as the crate mints it: `tail`
/// is `,"name":value,…}`. It is read as the object `{"name":value,…}`, which must be exactly one
/// JSON object with distinct, non-reserved names: by [`plain_extras`] without copying or
/// allocating when written as serde_json writes it, by serde otherwise (copied to the stack, so
/// nothing is allocated but the result). Anything else is `None`, and the whole claims object goes through serde
/// instead, which gives the same verdict for everything this accepts: Core's claims are the
/// ones the fast path read (no reserved name repeats them), and the extras are collected by the
/// same walk.
fn minted_extras(tail: &[u8]) -> Option<Cow<'_, str>> {
    if let Some(members) = plain_extras(tail) {
        return Some(Cow::Borrowed(members));
    }
    let members = tail.strip_prefix(b",")?;
    let mut buf = [0u8; STACK_CLAIMS];
    let object = buf.get_mut(..members.len() + 1)?;
    let (open, rest) = object.split_first_mut()?;
    *open = b'{';
    rest.copy_from_slice(members);
    extra_members(object, Reserved::Refuse)
        .ok()
        .flatten()
        .map(Cow::Owned)
}

/// The extra claims of the fast path read without serde, for tails written exactly as
/// serde_json writes them (the crate's own tokens): `,"name":value,…}` with no whitespace
/// outside strings, names and strings without escapes, at most [`PLAIN_NAMES`] distinct
/// non-reserved names and values nested at most [`PLAIN_DEPTH`] deep. Such a tail *is* the
/// object [`extra_members`] would build from it (that walk re-escapes names the way serde_json
/// does, which changes nothing without escapes, and keeps values verbatim), so it is checked
/// against the JSON grammar and returned as it is, after its comma. Anything else is `None`,
/// and [`minted_extras`] lets the serde walk decide: this never accepts what that walk refuses,
/// and never differs in what it yields (tested below against it, on generated tails).
fn plain_extras(tail: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(tail).ok()?;
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b',') {
        return None;
    }
    let mut names: [&str; PLAIN_NAMES] = [""; PLAIN_NAMES];
    let mut count = 0;
    let mut at = 1;
    loop {
        let end = skip_plain_str(bytes, at)?;
        // Between two quotes of a UTF-8 text: a whole string (`get` checks the boundaries).
        let name = text.get(at + 1..end - 1)?;
        if names.get(..count)?.contains(&name) || super::principal::is_reserved(name) {
            return None;
        }
        *names.get_mut(count)? = name;
        count += 1;
        if bytes.get(end) != Some(&b':') {
            return None;
        }
        at = skip_plain_value(bytes, end + 1, PLAIN_DEPTH)?;
        match bytes.get(at)? {
            b',' => at += 1,
            b'}' if at + 1 == bytes.len() => return text.get(1..),
            _ => return None,
        }
    }
}

/// How many extra claims [`plain_extras`] reads (more are left to serde).
const PLAIN_NAMES: usize = 16;
/// How deep [`plain_extras`] reads nested arrays and objects (deeper is left to serde).
const PLAIN_DEPTH: usize = 16;

/// The end of the string starting at `at` (after its closing quote), for strings without
/// escapes or control characters; `None` for anything else.
fn skip_plain_str(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let body = bytes.get(at + 1..)?;
    match body.iter().position(|&b| crate::json::escaped(b))? {
        len if body.get(len) == Some(&b'"') => Some(at + 1 + len + 1),
        _ => None,
    }
}

/// The end of the JSON value starting at `at`, written compactly (no whitespace outside
/// strings) with plain strings and at most `depth` levels of arrays and objects; `None` for
/// anything else, valid JSON in another form included.
fn skip_plain_value(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => skip_plain_str(bytes, at),
        b't' => bytes.get(at..)?.starts_with(b"true").then_some(at + 4),
        b'f' => bytes.get(at..)?.starts_with(b"false").then_some(at + 5),
        b'n' => bytes.get(at..)?.starts_with(b"null").then_some(at + 4),
        b'-' | b'0'..=b'9' => skip_number(bytes, at),
        open @ (b'[' | b'{') => {
            let depth = depth.checked_sub(1)?;
            let close = if open == b'[' { b']' } else { b'}' };
            let mut at = at + 1;
            if bytes.get(at) == Some(&close) {
                return Some(at + 1);
            }
            loop {
                if open == b'{' {
                    at = skip_plain_str(bytes, at)?;
                    if bytes.get(at) != Some(&b':') {
                        return None;
                    }
                    at += 1;
                }
                at = skip_plain_value(bytes, at, depth)?;
                match *bytes.get(at)? {
                    b',' => at += 1,
                    b if b == close => return Some(at + 1),
                    _ => return None,
                }
            }
        }
        _ => None,
    }
}

/// The end of the JSON number starting at `at` (RFC 8259 §6: `-? int frac? exp?`).
fn skip_number(bytes: &[u8], at: usize) -> Option<usize> {
    let digits = |from: usize| {
        bytes.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut at = at;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match bytes.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at += digits(at),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        let n = digits(at + 1);
        if n == 0 {
            return None;
        }
        at += 1 + n;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(at);
        if n == 0 {
            return None;
        }
        at += n;
    }
    Some(at)
}

/// What [`extra_members`] does with a reserved name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reserved {
    /// Skip it: the claims were parsed whole already, reserved names included.
    Skip,
    /// Refuse the object: a reserved name among the extras of the fast path.
    Refuse,
}

/// The members of the claims object whose names are not [reserved](super::RESERVED_CLAIMS), as
/// one compact JSON object without its opening brace (in token order, names re-escaped the way
/// serde_json writes them, values as they were; `"roles":["admin"]}`); `None` when there are
/// none. The object was parsed (and its UTF-8
/// checked) already: this only walks it again, borrowing names and skipping reserved values,
/// and allocates only when an extra claim is found. Duplicate extra names are refused like
/// duplicate Core claims.
fn extra_members(json: &[u8], reserved: Reserved) -> Result<Option<String>, TokenError> {
    /// How reserved names are treated, and the capacity of the result (the input's length).
    struct Extras(Reserved, usize);
    impl<'de> serde::de::Visitor<'de> for Extras {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out: Option<String> = None;
            // The names seen so far, for the duplicate check: the first few on the stack.
            let mut first: [Option<Text<'de>>; 8] = [const { None }; 8];
            let mut more: Vec<Text<'de>> = Vec::new();
            while let Some(name) = map.next_key::<Text<'de>>()? {
                if super::principal::is_reserved(&name) {
                    if self.0 == Reserved::Refuse {
                        return Err(serde::de::Error::custom("reserved claim"));
                    }
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let value: &'de serde_json::value::RawValue = map.next_value()?;
                let seen = first.iter().flatten().chain(&more);
                if seen.into_iter().any(|n| **n == *name) {
                    return Err(serde::de::Error::custom("duplicate claim"));
                }
                let out = out.get_or_insert_with(|| String::with_capacity(self.1));
                if !out.is_empty() {
                    out.push(',');
                }
                super::principal::push_name_value(out, &name, value.get());
                match first.iter_mut().find(|slot| slot.is_none()) {
                    Some(slot) => *slot = Some(name),
                    None => more.push(name),
                }
            }
            Ok(out.map(|mut object| {
                object.push('}');
                object
            }))
        }
    }
    let text = std::str::from_utf8(json).map_err(|_| TokenError::InvalidClaims)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let extra = serde::Deserializer::deserialize_map(&mut de, Extras(reserved, json.len()))
        .map_err(|_| TokenError::InvalidClaims)?;
    // Nothing may follow the object (the slow path checked the whole text already; the fast
    // path's tail is checked here).
    de.end().map_err(|_| TokenError::InvalidClaims)?;
    Ok(extra)
}

/// The fast path for claims laid out exactly as the crate and Core mint them:
/// `{"exi":N,"exp":N,"iat":N,"iss":"…","jti":"…","sub":"…","usefor":"…"`, optionally followed
/// by the crate's `,"sid":"…"` — no whitespace, plain integers, strings without escapes — and
/// then either the closing `}` or the principal's extra claims `,"name":…}`. Returns Core's
/// claims and that tail (`}` or the extras, which [`minted_extras`] reads). Whatever deviates in
/// the least (another order, a missing claim, an escape, whitespace, a number serde would read
/// differently) is `None`, and the claims go through the general serde parse instead. For every
/// input this accepts, serde yields the same `RawClaims` provided the tail repeats none of
/// these names (which `minted_extras` checks): seven (or eight) distinct known keys, integers
/// within `u64` without sign, fraction, exponent or leading zero, and UTF-8 strings with no
/// escape and no control character. The differential test (tests/differential.rs) compares
/// both paths' verdicts with `jsonwebtoken`'s.
fn parse_minted(json: &str) -> Option<(RawClaims<'_>, &str)> {
    let rest = json.strip_prefix("{\"exi\":")?;
    let (exi, rest) = plain_u64(rest)?;
    let (exp, rest) = plain_u64(rest.strip_prefix(",\"exp\":")?)?;
    let (iat, rest) = plain_u64(rest.strip_prefix(",\"iat\":")?)?;
    let (iss, rest) = plain_str(rest.strip_prefix(",\"iss\":")?)?;
    let (jti, rest) = plain_str(rest.strip_prefix(",\"jti\":")?)?;
    let (sub, rest) = plain_str(rest.strip_prefix(",\"sub\":")?)?;
    let (usefor, rest) = plain_str(rest.strip_prefix(",\"usefor\":")?)?;
    let (sid, rest) = match rest.strip_prefix(",\"sid\":") {
        Some(rest) => {
            let (sid, rest) = plain_str(rest)?;
            (Some(sid), rest)
        }
        None => (None, rest),
    };
    if rest != "}" && !(rest.starts_with(",\"") && rest.ends_with('}')) {
        return None;
    }
    let raw = RawClaims {
        exi: Some(exi),
        exp: Some(exp),
        iat: Some(iat),
        nbf: None,
        iss: Some(iss),
        jti: Some(jti),
        sub: Some(sub),
        usefor: Some(usefor),
        sid,
    };
    Some((raw, rest))
}

/// A JSON integer in `0..=u64::MAX` written plainly (`0`, or digits without a leading zero),
/// and what follows it.
fn plain_u64(input: &str) -> Option<(u64, &str)> {
    let digits = input.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = input.split_at_checked(digits)?;
    let number = number.as_bytes();
    if number.is_empty() || (number.len() > 1 && number.first() == Some(&b'0')) {
        return None;
    }
    let value = number.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some((value, rest))
}

/// A JSON string without escapes or control characters, borrowed, and what follows it.
fn plain_str(input: &str) -> Option<(Text<'_>, &str)> {
    let end = skip_plain_str(input.as_bytes(), 0)?;
    // Quotes delimit it: character boundaries, so `get` only checks the bounds.
    let text = input.get(1..end - 1)?;
    Some((Text(Cow::Borrowed(text)), input.get(end..)?))
}

/// `input` split around the byte at `at` (a `.`), which belongs to neither part; `Malformed`
/// without one.
fn split_at_byte(input: &[u8], at: Option<usize>) -> Result<(&[u8], &[u8]), TokenError> {
    let at = at.ok_or(TokenError::Malformed)?;
    let (before, after) = input.split_at_checked(at).ok_or(TokenError::Malformed)?;
    Ok((before, after.get(1..).ok_or(TokenError::Malformed)?))
}

/// The exact length of the bytes that `len` symbols of unpadded base64 decode to: `3 * (len /
/// 4)` plus 0, 1 or 2 bytes for a final group of 0, 2 or 3 symbols. `Malformed` for a final
/// group of one symbol (6 bits: no byte, never valid).
fn decoded_len(len: usize) -> Result<usize, TokenError> {
    let tail = match len % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return Err(TokenError::Malformed),
    };
    Ok((len / 4) * 3 + tail)
}

/// Strict base64url (no padding, canonical trailing bits) into `out`, four symbols at a time
/// through one table (tested against the `base64` crate's `URL_SAFE_NO_PAD` below). `TooLong`
/// when the segment decodes to more bytes than `out` holds, `Malformed` when it is no base64url.
///
/// The size check uses the exact decoded length ([`decoded_len`]), not
/// `base64::decoded_len_estimate`, which rounds up to whole groups of three: an HS512 tag (64
/// bytes, 86 symbols) is "estimated" at 66 bytes and would never fit a 64-byte buffer.
fn decode_into(segment: &[u8], out: &mut [u8]) -> Result<usize, TokenError> {
    let len = decoded_len(segment.len())?;
    let out = out.get_mut(..len).ok_or(TokenError::TooLong)?;
    let mut groups = segment.chunks_exact(4);
    let mut triples = out.chunks_exact_mut(3);
    for (group, triple) in (&mut groups).zip(&mut triples) {
        let (a, b, c, d) = match group {
            &[a, b, c, d] => (sextet(a), sextet(b), sextet(c), sextet(d)),
            _ => return Err(TokenError::Malformed),
        };
        // Every symbol outside the alphabet maps to `INVALID`, whose high bit no sextet has.
        if (a | b | c | d) & INVALID != 0 {
            return Err(TokenError::Malformed);
        }
        let bits = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        let [_, x, y, z] = bits.to_be_bytes();
        triple.copy_from_slice(&[x, y, z]);
    }
    let tail = triples.into_remainder();
    match *groups.remainder() {
        [] => {}
        // Canonical only: the bits below the last whole byte must be zero.
        [a, b] => {
            let (a, b) = (sextet(a), sextet(b));
            if (a | b) & INVALID != 0 || b & 0x0F != 0 {
                return Err(TokenError::Malformed);
            }
            let byte = tail.first_mut().ok_or(TokenError::Malformed)?;
            *byte = a << 2 | b >> 4;
        }
        [a, b, c] => {
            let (a, b, c) = (sextet(a), sextet(b), sextet(c));
            if (a | b | c) & INVALID != 0 || c & 0x03 != 0 {
                return Err(TokenError::Malformed);
            }
            let [x, y] = tail else {
                return Err(TokenError::Malformed);
            };
            *x = a << 2 | b >> 4;
            *y = b << 4 | c >> 2;
        }
        _ => return Err(TokenError::Malformed),
    }
    Ok(len)
}

/// The value of a base64url symbol, or [`INVALID`].
fn sextet(symbol: u8) -> u8 {
    BASE64URL
        .get(usize::from(symbol))
        .copied()
        .unwrap_or(INVALID)
}

/// Marks a byte that is no base64url symbol in [`BASE64URL`] (the high bit: no sextet has it).
const INVALID: u8 = 0x80;

/// Each byte's value as a base64url symbol (RFC 4648 §5), [`INVALID`] for every other byte.
// Built at compile time: an index out of range would fail the build, never a request.
#[allow(clippy::indexing_slicing)]
static BASE64URL: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        table[b'A' as usize + i] = i as u8;
        table[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = 52 + i as u8;
        i += 1;
    }
    table[b'-' as usize] = 62;
    table[b'_' as usize] = 63;
    table
};

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use proptest::prelude::*;

    use super::{RawClaims, Reserved, decode_into, extra_members, fast_claims, plain_extras};
    use crate::error::TokenError;
    use crate::json::parse_object;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]
        /// `decode_into` (with its exact-length check) accepts exactly what the `base64`
        /// crate's strict `URL_SAFE_NO_PAD` accepts, with the same bytes: on random base64url
        /// text (valid and with a final group of any length), on text with one symbol replaced
        /// by any byte, and on the encodings of random bytes with their final symbol changed
        /// (non-canonical bits).
        #[test]
        fn decoder_agrees_with_the_base64_crate(
            text in "[A-Za-z0-9_-]{0,40}",
            at in any::<usize>(),
            byte in any::<u8>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            last in 0usize..64,
        ) {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut changed = text.clone().into_bytes();
            if !changed.is_empty() {
                let at = at % changed.len();
                changed[at] = byte;
            }
            let mut reencoded = URL_SAFE_NO_PAD.encode(&bytes).into_bytes();
            if let Some(symbol) = reencoded.last_mut() {
                *symbol = alphabet[last];
            }
            for input in [text.as_bytes(), &changed, &reencoded] {
                let mut ours = [0u8; 64];
                let expected = URL_SAFE_NO_PAD.decode(input).ok();
                let got = decode_into(input, &mut ours).ok().map(|n| ours[..n].to_vec());
                prop_assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(input));
            }
        }
    }

    /// A `.` between the first and the last one is `Malformed`, whatever else is wrong with the
    /// token: its signature, its header, or nothing (validly signed); the scan for it runs only
    /// when the signature check fails, and the claims' decoding catches the rest.
    #[test]
    fn a_dot_inside_is_malformed_whatever_else_fails() {
        use hmac::{Hmac, Mac};

        use crate::{JwtConfig, JwtKey, TokenUse};
        let jwt = JwtConfig::new(JwtKey::core_compatible("admin", "pw", "secret"))
            .build()
            .unwrap();
        let sign = |input: &str| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"adminpwsecret").unwrap();
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        let token = jwt.issue_pair("admin").access_token;
        assert!(jwt.verify(&token, TokenUse::Access).is_ok());
        assert_eq!(sign(token.rsplit_once('.').unwrap().0), token);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (h, c) = input.split_once('.').unwrap();
        let rsa_oaep = URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
        for (token, expected) in [
            (format!("{h}.{c}.{sig}.{sig}.{sig}"), TokenError::Malformed),
            (
                format!("{rsa_oaep}.{c}.{c}.{c}.{sig}"),
                TokenError::Malformed,
            ),
            (sign(&format!("{h}.{c}.{c}")), TokenError::Malformed),
            (sign(&format!("{h}.{c}.")), TokenError::Malformed),
            // Without a `.` inside, the failures are what they are.
            (
                format!("{rsa_oaep}.{c}.{sig}"),
                TokenError::UnsupportedAlgorithm,
            ),
            (
                format!("{h}.{c}.{flipped}{}", &sig[1..]),
                TokenError::InvalidSignature,
            ),
        ] {
            assert_eq!(
                jwt.verify(&token, TokenUse::Access).err(),
                Some(expected),
                "{token}"
            );
        }
    }

    /// Every input length fits a buffer of exactly its decoded size, and is `TooLong` for one
    /// byte less (the HS512 tag, 64 bytes in 86 symbols, was refused by the old estimate).
    #[test]
    fn decode_into_fits_exact_buffers() {
        for n in 0..=130usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            let mut exact = vec![0u8; n];
            assert_eq!(decode_into(text.as_bytes(), &mut exact), Ok(n), "{n} bytes");
            assert_eq!(exact, bytes);
            if n > 0 {
                let mut short = vec![0u8; n - 1];
                assert_eq!(
                    decode_into(text.as_bytes(), &mut short),
                    Err(TokenError::TooLong),
                    "{n}"
                );
            }
        }
        let mut buf = [0u8; 64];
        assert_eq!(decode_into(b"A", &mut buf), Err(TokenError::Malformed));
        assert_eq!(decode_into(b"AAAAA", &mut buf), Err(TokenError::Malformed));
        // Non-canonical trailing bits and padding stay refused.
        assert_eq!(decode_into(b"AB", &mut buf), Err(TokenError::Malformed));
        assert_eq!(decode_into(b"AA==", &mut buf), Err(TokenError::Malformed));
    }

    fn summary(raw: &RawClaims<'_>) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            raw.exi,
            raw.exp,
            raw.iat,
            raw.nbf,
            raw.iss.as_deref(),
            raw.jti.as_deref(),
            raw.sub.as_deref(),
            raw.usefor.as_deref(),
            raw.sid.as_deref()
        )
    }

    /// Whatever the fast path accepts, serde accepts with the same values; what it declines is
    /// left to serde.
    #[test]
    fn fast_path_agrees_with_serde() {
        let minted = r#"{"exi":600,"exp":1700000600,"iat":1700000000,"iss":"datarhei-core","jti":"6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a","sub":"admin","usefor":"access"}"#;
        let taken = [
            minted.to_owned(),
            minted.replace("600,", "0,"),
            minted.replace("1700000600", "18446744073709551615"),
            minted.replace("admin", "ünïcödé"),
            minted.replace("\"admin\"", "\"\""),
            minted.replace("}", ",\"sid\":\"x3L9vC1qZ0m5bQ7sT2kYpA\"}"),
            minted.replace("}", ",\"sid\":\"\"}"),
        ];
        let extras = [
            minted.replace("}", ",\"roles\":[\"admin\"],\"tenant\":\"acme\"}"),
            minted.replace(
                "}",
                ",\"sid\":\"x3L9\",\"n\":{\"a\":[1,2.5,null]},\"ü\":true}",
            ),
            minted.replace("}", ",\"esc\\u0061ped\":\"v\\n\"}"),
        ];
        for json in taken.iter().chain(&extras) {
            let (fast, fast_extra) = fast_claims(json.as_bytes()).expect(json);
            let slow: RawClaims<'_> = parse_object(json.as_bytes()).expect(json);
            assert_eq!(summary(&fast), summary(&slow), "{json}");
            let slow_extra = extra_members(json.as_bytes(), Reserved::Skip).unwrap();
            assert_eq!(fast_extra.as_deref(), slow_extra.as_deref(), "{json}");
        }
        let declined = [
            minted.replace("600,", "0600,"),
            minted.replace("600,", "600.0,"),
            minted.replace("600,", "6e2,"),
            minted.replace("600,", "-600,"),
            minted.replace("1700000600", "18446744073709551616"),
            minted.replace("admin", "ad\\\"min"),
            minted.replace("admin", "ad\\u006din"),
            minted.replace("admin", "ad\tmin"),
            minted.replace(":600", ": 600"),
            minted.replace("\"exi\"", "\"\\u0065xi\""),
            format!("{minted} "),
            format!(" {minted}"),
            minted.replace("}", ",\"nbf\":1}"),
            minted.replace("\"exi\":600,", ""),
            minted.replace("\"exi\":600,", "\"exi\":600,\"exi\":600,"),
            minted.replace("\"admin\"", "null"),
            minted.replace("\"admin\"", "1"),
            minted.replace("}", ",\"sid\":1}"),
            minted.replace("}", ",\"sid\":null}"),
            minted.replace("}", ",\"sid\":\"a\",\"sid\":\"b\"}"),
            minted.replace("}", ",\"sid\":\"a\\u0062\"}"),
            minted.replace(",\"usefor\"", ",\"sid\":\"a\",\"usefor\""),
        ];
        let declined_extras = [
            minted.replace("}", ",\"a\":1}}"),
            minted.replace("}", ",\"a\":1,\"a\":2}"),
            minted.replace("}", ",\"exp\":1}"),
            minted.replace("}", ",\"aud\":\"x\"}"),
            minted.replace("}", ",\"a\":}"),
            minted.replace("}", ",\"a\":1,}"),
            minted.replace("}", ", \"a\":1}"),
        ];
        for json in declined.iter().chain(&declined_extras) {
            assert!(fast_claims(json.as_bytes()).is_none(), "{json}");
        }
        let mut bad_utf8 = minted.as_bytes().to_vec();
        let at = minted.find("admin").unwrap();
        bad_utf8[at] = 0xff;
        assert!(fast_claims(&bad_utf8).is_none());
        assert!(parse_object::<RawClaims<'_>>(&bad_utf8).is_none());
    }

    /// The serde walk over a fast-path tail, as [`super::minted_extras`] falls back to it.
    fn serde_extras(tail: &[u8]) -> Option<String> {
        let mut object = b"{".to_vec();
        object.extend_from_slice(tail.strip_prefix(b",")?);
        extra_members(&object, Reserved::Refuse).ok().flatten()
    }

    /// JSON-ish text: mostly valid compact values, sometimes spaced or escaped (valid, but not
    /// the serde-free reader's to read) or near misses (bad numbers, unclosed containers, bare
    /// words, control characters, invalid UTF-8).
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            3 => Just(b"true".to_vec()),
            3 => Just(b"false".to_vec()),
            3 => Just(b"null".to_vec()),
            1 => Just(b"nul".to_vec()),
            1 => Just(b"truex".to_vec()),
            6 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,2})?([eE][-+]?[0-9]{1,2})?"
                .prop_map(String::into_bytes),
            1 => "-?(01|0|1)(\\.[0-9]?)?([eE][-+]?[0-9]?)?".prop_map(String::into_bytes),
            6 => "\"[a-z\u{e9}\u{1F600} ]{0,4}\"".prop_map(String::into_bytes),
            1 => "\"([a-z]|\\\\[n\"u]|\t){0,4}\"?".prop_map(String::into_bytes),
            1 => Just(vec![b'"', 0xff, b'"']),
        ];
        leaf.prop_recursive(6, 48, 4, |inner| {
            let sep =
                || prop_oneof![8 => Just(&b","[..]), 1 => Just(&b", "[..]), 1 => Just(&b",,"[..])];
            let closed = || prop_oneof![9 => Just(true), 1 => Just(false)];
            prop_oneof![
                (
                    proptest::collection::vec(inner.clone(), 0..4),
                    sep(),
                    closed()
                )
                    .prop_map(|(items, sep, closed)| {
                        let mut out = b"[".to_vec();
                        out.extend(items.join(sep));
                        if closed {
                            out.push(b']');
                        }
                        out
                    }),
                (
                    proptest::collection::vec(("[a-c]{1,2}", inner), 0..4),
                    sep(),
                    prop_oneof![8 => Just(":"), 1 => Just(" :"), 1 => Just("")],
                    closed(),
                )
                    .prop_map(|(members, sep, colon, closed)| {
                        let members: Vec<Vec<u8>> = members
                            .into_iter()
                            .map(|(k, v)| [format!("\"{k}\"{colon}").into_bytes(), v].concat())
                            .collect();
                        let mut out = b"{".to_vec();
                        out.extend(members.join(sep));
                        if closed {
                            out.push(b'}');
                        }
                        out
                    }),
            ]
        })
    }

    /// A fast-path tail: `,"name":value` members (names mostly plain, sometimes escaped,
    /// reserved or repeated) and the closing brace, sometimes spaced or truncated.
    fn tail() -> impl Strategy<Value = Vec<u8>> {
        let name = prop_oneof![
            12 => "[a-d]{1,2}",
            1 => Just("r\\u0061".to_owned()),
            1 => Just("exp".to_owned()),
            1 => Just("sid".to_owned()),
            1 => Just("\u{fc}".to_owned()),
        ];
        let space = prop_oneof![12 => Just(""), 1 => Just(" ")];
        let end = prop_oneof![
            12 => Just(&b"}"[..]),
            1 => Just(&b" }"[..]),
            1 => Just(&b""[..]),
            1 => Just(&b"}}"[..]),
        ];
        (proptest::collection::vec((name, value(), space), 0..5), end).prop_map(|(members, end)| {
            let mut out = Vec::new();
            for (name, value, space) in members {
                out.extend(format!(",\"{name}\":{space}").into_bytes());
                out.extend(value);
            }
            out.extend_from_slice(end);
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// What the serde-free reader accepts, the serde walk accepts with the same result.
        #[test]
        fn plain_extras_agree_with_serde(tail in tail()) {
            if let Some(plain) = plain_extras(&tail) {
                let serde = serde_extras(&tail);
                prop_assert_eq!(Some(plain), serde.as_deref(), "{}", String::from_utf8_lossy(&tail));
            }
        }
    }

    /// The serde-free reader takes the crate's own tails, and declines (for serde to judge)
    /// what it does not read itself.
    #[test]
    fn plain_extras_take_minted_tails() {
        let taken: [&[u8]; 5] = [
            br#","roles":["admin","editor"],"tenant":"acme","plan":"pro"}"#,
            b",\"n\":{\"a\":[1,-2.5e+3,null,true,false,{}],\"b\":[]},\"\xc3\xbc\":\"\xe2\x82\xac\"}",
            br#","a":0}"#,
            br#","a":-0.0E-0}"#,
            br#","a":"","b":{"a":1,"a":2}}"#,
        ];
        let nested = |depth: usize| format!(",\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        let deepest = nested(super::PLAIN_DEPTH).into_bytes();
        for tail in taken.into_iter().chain([deepest.as_slice()]) {
            let plain = plain_extras(tail);
            assert!(plain.is_some(), "{}", String::from_utf8_lossy(tail));
            assert_eq!(
                plain,
                serde_extras(tail).as_deref(),
                "{}",
                String::from_utf8_lossy(tail)
            );
        }
        let declined: [&[u8]; 15] = [
            b"}",
            br#","a":1"#,
            br#","a":1}}"#,
            br#","a":1,"a":2}"#,
            br#","exp":1}"#,
            br#","a" :1}"#,
            br#","a":[1, 2]}"#,
            br#","a\u0062":1}"#,
            br#","a":"\n"}"#,
            br#","a":01}"#,
            br#","a":1.}"#,
            br#","a":1e}"#,
            br#","a":[1,]}"#,
            br#","a":{"b"}}"#,
            b",\"a\":\"\xff\"}",
        ];
        let too_deep = nested(super::PLAIN_DEPTH + 1).into_bytes();
        for tail in declined.into_iter().chain([too_deep.as_slice()]) {
            assert_eq!(
                plain_extras(tail),
                None,
                "{}",
                String::from_utf8_lossy(tail)
            );
        }
        // Escapes and deeper nesting are serde's to read: the fast path still takes them.
        assert!(serde_extras(br#","a\u0062":"\n"}"#).is_some());
        assert!(serde_extras(&too_deep).is_some());
    }
}
