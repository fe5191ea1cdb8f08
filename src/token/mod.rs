//! The crate's own tokens (docs/protocol.md §4): one place mints them ([`Jwt::issue_pair`],
//! [`Jwt::issue_access`]), one place verifies them ([`Jwt::verify`]).
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};
//!
//! let jwt = JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "secretsecret"))
//!     .access_ttl(Duration::from_secs(600))
//!     .build()
//!     .unwrap();
//! let pair = jwt.issue_pair("admin");
//! let claims = jwt.verify(&pair.access_token, TokenUse::Access).unwrap();
//! assert_eq!(claims.subject(), "admin");
//! assert_eq!(claims.issuer(), "datarhei-core");
//! assert_eq!(claims.lifetime(), Some(600));
//! // A refresh token is not an access token.
//! assert!(jwt.verify(&pair.refresh_token, TokenUse::Access).is_err());
//! ```

#[cfg(feature = "asymmetric")]
mod asym;
pub(crate) mod jwk;
mod key;
mod keyring;
mod mac;
mod mint;
mod principal;
mod verify;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use key::{JwtKey, KeyError, KeyProblem};
pub(crate) use key::{fill_random, random_alphanumeric};
pub use keyring::{MAX_PREVIOUS_SECRETS, SigningKey, VerificationKey};
pub(crate) use principal::members_of;
pub use principal::{
    DEFAULT_MAX_EXTRA_LEN, Lookup, Principal, PrincipalBuilder, PrincipalError, RESERVED_CLAIMS,
};

use crate::error::TokenError;
use keyring::Ring;

/// A signing algorithm of the crate's tokens. Each key of the ring accepts exactly its own.
///
/// The asymmetric ones (EdDSA, ES256, RS256) need the cargo feature `asymmetric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (Core's algorithm, the default).
    #[default]
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (keys of 2048 bits or more).
    RS256,
}

impl Algorithm {
    /// Every supported algorithm, HMAC first. The asymmetric ones sign and verify with the cargo
    /// feature `asymmetric`.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
    ];

    /// The JOSE name, as in the token header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
        }
    }

    /// The algorithm of a JOSE name (exact, case-sensitive), if supported.
    ///
    /// ```
    /// use tower_jwt_login::Algorithm;
    ///
    /// assert_eq!(Algorithm::from_name("EdDSA"), Some(Algorithm::EdDSA));
    /// assert_eq!(Algorithm::from_name("none"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether this is an HMAC algorithm (a shared secret signs and verifies).
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

/// What a token is for: the `usefor` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// An access token (`"usefor":"access"`), accepted on protected routes.
    Access,
    /// A refresh token (`"usefor":"refresh"`), accepted only by the refresh route.
    Refresh,
}

impl TokenUse {
    /// The claim value: `access` or `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Refresh => "refresh",
        }
    }
}

/// The verified claims of a token. The layer puts them into the request extensions.
#[derive(Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, `jti`, `sid` and the extra claims (the members after Core's and `sid`, as a
    /// compact JSON object; none without, so that Core's tokens verify without an allocation).
    text: ClaimText,
    issuer: Arc<str>,
    expires_at: u64,
    issued_at: Option<u64>,
    not_before: Option<u64>,
    lifetime: Option<u64>,
    token_use: TokenUse,
}

impl Claims {
    /// The extra claims of the token (those of the [`Principal`] it was minted for) as one
    /// compact JSON object (`{"roles":["admin"]}`), members in token order; `None` without.
    /// Reserved names (`aud`, `nbf`, …) are never among them.
    pub fn extra_json(&self) -> Option<&str> {
        self.text.extra()
    }

    /// The extra claims deserialized into `T` (a struct of the app's: unknown members are
    /// ignored unless `T` denies them). Without extra claims, `T` is read from `{}`. This parses
    /// on every call; to parse once per request, let the layer do it
    /// ([`JwtAuthLayer::claims_type`](crate::auth::JwtAuthLayer::claims_type)) and read the
    /// [`ExtraClaims`] it attaches.
    ///
    /// ```
    /// use tower_jwt_login::{JwtConfig, JwtKey, Principal, TokenUse};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct App { roles: Vec<String>, tenant: String }
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let alice = Principal::builder("alice").claim("roles", ["admin"]).claim("tenant", "acme").build().unwrap();
    /// let pair = jwt.issue_pair_for(&alice);
    /// let claims = jwt.verify(&pair.access_token, TokenUse::Access).unwrap();
    /// let app: App = claims.extra().unwrap();
    /// assert_eq!((app.roles[0].as_str(), app.tenant.as_str()), ("admin", "acme"));
    /// assert!(claims.has_role("admin"));
    /// assert_eq!(claims.extra_value("tenant"), Some("\"acme\""));
    /// ```
    pub fn extra<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        principal::parse_extra(self.extra_json())
    }

    /// The raw JSON of the extra claim `name`, if the token has it.
    pub fn extra_value(&self, name: &str) -> Option<&str> {
        principal::member_value(self.extra_json()?, name)
    }

    /// Whether the extra claim `roles` is an array of strings containing `role` (the
    /// convention of [`Requirement::role`](crate::auth::Requirement::role)).
    pub fn has_role(&self, role: &str) -> bool {
        principal::has_role(self.extra_json(), role)
    }

    /// The principal this token was minted for: its subject and extra claims (what a refresh
    /// carries over when the store does not look principals up).
    pub fn principal(&self) -> Principal {
        Principal::from_checked(self.subject(), self.extra_json().map(Arc::from))
    }

    /// `sub`: the user the token was issued to.
    pub fn subject(&self) -> &str {
        self.text.subject()
    }
    /// `jti`: the token's unique id, when present.
    pub fn jti(&self) -> Option<&str> {
        self.text.jti()
    }
    /// `sid`: the session the token belongs to, when sessions are on (see
    /// [`crate::session`]).
    pub fn session_id(&self) -> Option<&str> {
        self.text.sid()
    }
    /// `iss`: always the configured issuer (anything else is refused).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// `exp`, seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
    /// `iat`, seconds since the Unix epoch, when present.
    pub fn issued_at(&self) -> Option<u64> {
        self.issued_at
    }
    /// `nbf`, seconds since the Unix epoch, when present.
    pub fn not_before(&self) -> Option<u64> {
        self.not_before
    }
    /// `exi`: the lifetime in seconds at issue time, when present.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }
    /// `usefor`.
    pub fn token_use(&self) -> TokenUse {
        self.token_use
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.subject())
            .field("jti", &self.jti())
            .field("sid", &self.session_id())
            .field("iss", &&*self.issuer)
            .field("exp", &self.expires_at)
            .field("iat", &self.issued_at)
            .field("usefor", &self.token_use)
            .field("extra", &self.extra_json().unwrap_or_default())
            .finish_non_exhaustive()
    }
}

/// Longest `sub` + `jti` + `sid` + extra claims kept inside [`Claims`] itself: a UUID `jti`
/// (36 bytes) and a subject of up to 20 bytes leave 64 bytes for extra claims such as
/// `{"roles":["admin","editor"],"tenant":"acme","plan":"pro"}` (58); with a session id (22
/// bytes), 42. Longer texts take one allocation, shared by clones.
const INLINE_TEXT: usize = 120;

/// `sub`, `jti`, `sid` and the extra claims of [`Claims`] in one buffer, so that verifying a
/// token allocates nothing for them (inline, the common case) or exactly once (longer texts,
/// in an `Arc` that clones share). The buffer beyond the texts is always zero and the
/// representation depends on the lengths only, yet equality is still defined on the texts,
/// not the bytes.
#[derive(Clone)]
enum ClaimText {
    Inline {
        /// `sub`, then `jti`, `sid` and the extra claims' object, where present.
        buf: [u8; INLINE_TEXT],
        /// Their lengths; `NONE` for an absent one (every inline length is below it).
        lens: [u8; 4],
    },
    Heap {
        /// `sub`, then `jti`, `sid` and the extra claims' object, where present.
        text: Arc<str>,
        /// Their lengths; `None` for an absent one (`sub` is always present).
        lens: [Option<usize>; 4],
    },
}

const NONE: u8 = u8::MAX;

impl ClaimText {
    /// The texts; `extra_members` is the extra claims' object without its opening brace
    /// (`"roles":["admin"]}`, as the verifier finds it in the token), which is stored with it.
    fn new(
        subject: &str,
        jti: Option<&str>,
        sid: Option<&str>,
        extra_members: Option<&str>,
    ) -> Self {
        let texts = [Some(subject), jti, sid];
        let lens = [
            Some(subject.len()),
            jti.map(str::len),
            sid.map(str::len),
            extra_members.map(|members| members.len() + 1),
        ];
        let total: usize = lens.iter().flatten().sum();
        if total <= INLINE_TEXT {
            let mut buf = [0u8; INLINE_TEXT];
            write_texts(&mut buf, texts, extra_members);
            // Every length is at most INLINE_TEXT < NONE.
            ClaimText::Inline {
                buf,
                lens: lens.map(|len| len.map_or(NONE, |len| u8::try_from(len).unwrap_or(0))),
            }
        } else {
            // Written on the stack and copied into the `Arc` (one allocation; from a `String`,
            // `Arc<str>` takes two). Texts too long for the stack go through a `String`.
            let mut stack = [0u8; HEAP_VIA_STACK];
            let text: Arc<str> = match stack.get_mut(..total) {
                Some(buf) => {
                    write_texts(buf, texts, extra_members);
                    Arc::from(inline_str(buf, 0, total))
                }
                None => {
                    let mut text = String::with_capacity(total);
                    for part in texts.into_iter().flatten() {
                        text.push_str(part);
                    }
                    if let Some(members) = extra_members {
                        text.push('{');
                        text.push_str(members);
                    }
                    Arc::from(text)
                }
            };
            ClaimText::Heap { text, lens }
        }
    }

    /// Text number `index` (0 `sub`, 1 `jti`, 2 `sid`, 3 the extra claims), when present.
    fn part(&self, index: usize) -> Option<&str> {
        let (buf, lens): (&[u8], [Option<usize>; 4]) = match self {
            ClaimText::Inline { buf, lens } => (
                buf,
                lens.map(|len| (len != NONE).then_some(usize::from(len))),
            ),
            ClaimText::Heap { text, lens } => (text.as_bytes(), *lens),
        };
        let start: usize = lens.iter().take(index).flatten().sum();
        let len = (*lens.get(index)?)?;
        Some(inline_str(buf, start, start + len))
    }

    fn subject(&self) -> &str {
        self.part(0).unwrap_or_default()
    }

    fn jti(&self) -> Option<&str> {
        self.part(1)
    }

    fn sid(&self) -> Option<&str> {
        self.part(2)
    }

    fn extra(&self) -> Option<&str> {
        self.part(3)
    }
}

/// Longest [`ClaimText`] assembled on the stack before it is copied into its `Arc`.
const HEAP_VIA_STACK: usize = 1024;

/// Writes `texts` and then the extra claims' object (`{` and `extra_members`) one after the
/// other into `buf`, which has room for exactly all of them.
fn write_texts(buf: &mut [u8], texts: [Option<&str>; 3], extra_members: Option<&str>) {
    let mut at = 0;
    for text in texts.into_iter().flatten() {
        if let Some(dst) = buf.get_mut(at..at + text.len()) {
            dst.copy_from_slice(text.as_bytes());
        }
        at += text.len();
    }
    if let Some(members) = extra_members
        && let Some((open, rest)) = buf
            .get_mut(at..at + 1 + members.len())
            .and_then(|dst| dst.split_first_mut())
    {
        *open = b'{';
        rest.copy_from_slice(members.as_bytes());
    }
}

/// The text at `start..end` of the buffer. It was copied from `&str`s at those very bounds, so
/// it is always valid UTF-8; the check (a few nanoseconds on ASCII) is what keeps
/// this free of `unsafe`.
fn inline_str(buf: &[u8], start: usize, end: usize) -> &str {
    buf.get(start..end)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or_default()
}

impl PartialEq for ClaimText {
    fn eq(&self, other: &Self) -> bool {
        (0..4).all(|index| self.part(index) == other.part(index))
    }
}

impl Eq for ClaimText {}

/// The login answer: `{"access_token":"…","refresh_token":"…"}`.
#[derive(Clone, Serialize, PartialEq, Eq)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

impl TokenPair {
    /// The login answer's body as serde_json writes it, with the newline Core's encoder adds:
    /// `{"access_token":"…","refresh_token":"…"}` (the test in `json` compares the two).
    pub(crate) fn json_line(&self) -> bytes::Bytes {
        self.json_line_with(None)
    }

    /// The login answer with a remembered device's token (the second factor's
    /// `remember_device`) as a third member:
    /// `{"access_token":"…","refresh_token":"…","device_trust_token":"…"}`; without one,
    /// exactly [`json_line`](Self::json_line).
    pub(crate) fn json_line_with(&self, device_trust_token: Option<&str>) -> bytes::Bytes {
        let mut json = Vec::with_capacity(
            40 + self.access_token.len()
                + self.refresh_token.len()
                + device_trust_token.map_or(0, |t| 24 + t.len()),
        );
        json.extend_from_slice(b"{\"access_token\":");
        crate::json::push_str(&mut json, &self.access_token);
        json.extend_from_slice(b",\"refresh_token\":");
        crate::json::push_str(&mut json, &self.refresh_token);
        if let Some(token) = device_trust_token {
            json.extend_from_slice(b",\"device_trust_token\":");
            crate::json::push_str(&mut json, token);
        }
        json.extend_from_slice(b"}\n");
        bytes::Bytes::from(json)
    }

    /// The refresh answer's body, `{"access_token":"…"}` and a newline; also the browser mode's
    /// login answer, whose refresh token goes into a cookie (with a remembered device's token as
    /// a second member when the login asked for one).
    pub(crate) fn access_json_line(
        access_token: &str,
        device_trust_token: Option<&str>,
    ) -> bytes::Bytes {
        let mut json = Vec::with_capacity(
            20 + access_token.len() + device_trust_token.map_or(0, |t| 24 + t.len()),
        );
        json.extend_from_slice(b"{\"access_token\":");
        crate::json::push_str(&mut json, access_token);
        if let Some(token) = device_trust_token {
            json.extend_from_slice(b",\"device_trust_token\":");
            crate::json::push_str(&mut json, token);
        }
        json.extend_from_slice(b"}\n");
        bytes::Bytes::from(json)
    }
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPair { .. }")
    }
}

/// The extra claims of the request's token as the app's own type `T`, deserialized once by the
/// layer ([`JwtAuthLayer::claims_type`](crate::auth::JwtAuthLayer::claims_type)) and put into
/// the request extensions next to the [`Claims`]. With the `axum` feature it is an extractor
/// too (it parses on the spot when the layer did not).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtraClaims<T>(pub T);

impl<T> std::ops::Deref for ExtraClaims<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a token is minted for: the subject and, with sessions, the session id (`sid`).
///
/// Built with [`Grant::new`] and refined with builder methods; a grant without a session mints
/// Core's exact token bytes. Later additions (extra claims, a key id) come as further builder
/// methods, so code that builds a grant keeps compiling.
///
/// ```
/// use tower_jwt_login::Grant;
///
/// let grant = Grant::new("alice").session("x3L9vC1qZ0m5bQ7sT2kYpA");
/// assert_eq!(grant.subject(), "alice");
/// assert_eq!(grant.session_id(), Some("x3L9vC1qZ0m5bQ7sT2kYpA"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    subject: &'a str,
    session: Option<&'a str>,
    extra: Option<&'a str>,
}

/// A grant for the principal's subject with its extra claims.
impl<'a> From<&'a Principal> for Grant<'a> {
    fn from(principal: &'a Principal) -> Self {
        Grant::new(principal.subject()).extra(principal)
    }
}

impl<'a> Grant<'a> {
    /// A grant for `subject` (the `sub` claim), without a session.
    pub fn new(subject: &'a str) -> Self {
        Grant {
            subject,
            session: None,
            extra: None,
        }
    }

    /// Adds `principal`'s extra claims (minted after Core's claims and `sid`, in the
    /// principal's order). The subject stays the grant's.
    #[must_use]
    pub fn extra(mut self, principal: &'a Principal) -> Self {
        self.extra = principal.extra_json();
        self
    }

    /// The extra claims as a compact JSON object, if any.
    pub fn extra_json(&self) -> Option<&'a str> {
        self.extra
    }

    /// Ties the tokens to the session `sid` (the `sid` claim, after Core's claims).
    #[must_use]
    pub fn session(mut self, sid: &'a str) -> Self {
        self.session = Some(sid);
        self
    }

    /// The subject.
    pub fn subject(&self) -> &'a str {
        self.subject
    }

    /// The session id, if any.
    pub fn session_id(&self) -> Option<&'a str> {
        self.session
    }
}

/// What [`Jwt::issue`] minted: the token pair, and the refresh token's `jti`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedPair {
    /// The login answer.
    pub tokens: TokenPair,
    /// The `jti` of `tokens.refresh_token`.
    pub refresh_jti: String,
    /// The `exp` of `tokens.refresh_token` (Unix seconds).
    pub refresh_expires_at: u64,
}

impl fmt::Debug for IssuedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedPair")
            .field("refresh_jti", &self.refresh_jti)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// Settings of the crate's tokens; [`JwtConfig::build`] turns them into a [`Jwt`].
///
/// Defaults are Core's: HS256, issuer `datarhei-core`, 600 s access and 86 400 s refresh
/// lifetimes, no leeway. The key ring is the signing key given to [`new`](Self::new) plus the
/// [verification keys](Self::verification_key) (see [`SigningKey`] and [`VerificationKey`]).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    key: SigningKey,
    verification: Vec<VerificationKey>,
    algorithm: Option<Algorithm>,
    issuer: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    leeway: Duration,
    max_token_len: usize,
}

impl JwtConfig {
    /// Core's defaults with the given signing key: a [`JwtKey`] (HMAC) or a [`SigningKey`].
    pub fn new(key: impl Into<SigningKey>) -> Self {
        JwtConfig {
            key: key.into(),
            verification: Vec::new(),
            algorithm: None,
            issuer: "datarhei-core".to_owned(),
            access_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(86_400),
            leeway: Duration::ZERO,
            max_token_len: 8 * 1024,
        }
    }
    /// The signing algorithm: HS256 by default for an HMAC secret, the key's own for a private
    /// key (a different one here makes [`build`](Self::build) fail). Each key accepts exactly its
    /// own algorithm.
    #[must_use]
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }
    /// Adds a verification-only key: a previous signing key kept after a rotation (its tokens
    /// verify until they expire), or another issuer's public key. With more than one key in
    /// the ring every token carries a `kid`.
    #[must_use]
    pub fn verification_key(mut self, key: impl Into<VerificationKey>) -> Self {
        self.verification.push(key.into());
        self
    }
    /// Adds several verification-only keys ([`verification_key`](Self::verification_key)).
    #[must_use]
    pub fn verification_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<VerificationKey>,
    {
        self.verification.extend(keys.into_iter().map(Into::into));
        self
    }
    /// The `iss` claim minted and required (default `datarhei-core`).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }
    /// Access token lifetime (default 600 s). Sub-second parts are dropped.
    #[must_use]
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }
    /// Refresh token lifetime (default 86 400 s). Sub-second parts are dropped.
    #[must_use]
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 0, like Core).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
    /// Longest token accepted, in bytes (default 8 KiB); longer ones are refused unread.
    #[must_use]
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Builds the key ring (each key checked and keyed once, `kid`s settled) and freezes the
    /// settings.
    pub fn build(self) -> Result<Jwt, KeyError> {
        let ring = Ring::build(self.key, self.verification, self.algorithm)?;
        Ok(Jwt {
            inner: Arc::new(JwtInner {
                ring,
                issuer: Arc::from(self.issuer),
                access_ttl: self.access_ttl.as_secs(),
                refresh_ttl: self.refresh_ttl.as_secs(),
                leeway: self.leeway.as_secs(),
                max_token_len: self.max_token_len,
            }),
        })
    }
}

/// Mints and verifies the crate's tokens. Cheap to clone (one `Arc`); share it between the
/// layer and the login and refresh services.
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<JwtInner>,
}

pub(crate) struct JwtInner {
    /// The keys. The signing key's `header_b64` (`{"alg":"…","typ":"JWT"}` for a lone HMAC
    /// secret) is what we mint, and the verifier's fast path.
    ring: Ring,
    issuer: Arc<str>,
    access_ttl: u64,
    refresh_ttl: u64,
    leeway: u64,
    max_token_len: usize,
}

impl Jwt {
    /// Mints the login answer: an access and a refresh token for `subject`, sharing `iat`
    /// (Core's exact token layout; the same as `issue(&Grant::new(subject)).tokens`).
    pub fn issue_pair(&self, subject: &str) -> TokenPair {
        self.inner.issue(&Grant::new(subject)).tokens
    }

    /// Mints the refresh answer: a new access token for `subject`.
    pub fn issue_access(&self, subject: &str) -> String {
        self.issue_access_for(&Grant::new(subject))
    }

    /// Mints the login answer for `principal`: its subject and extra claims, in both tokens.
    /// Without extra claims, the same as [`issue_pair`](Self::issue_pair).
    pub fn issue_pair_for(&self, principal: &Principal) -> TokenPair {
        self.inner.issue(&Grant::from(principal)).tokens
    }

    /// Mints an access and a refresh token for `grant` (sharing `iat`), and tells the refresh
    /// token's `jti`, which a [session store](crate::session::SessionStore) tracks.
    ///
    /// ```
    /// use tower_jwt_login::{Grant, JwtConfig, JwtKey, TokenUse};
    ///
    /// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
    ///     .build()
    ///     .unwrap();
    /// let issued = jwt.issue(&Grant::new("alice").session("x3L9vC1qZ0m5bQ7sT2kYpA"));
    /// let refresh = jwt.verify(&issued.tokens.refresh_token, TokenUse::Refresh).unwrap();
    /// assert_eq!(refresh.session_id(), Some("x3L9vC1qZ0m5bQ7sT2kYpA"));
    /// assert_eq!(refresh.jti(), Some(issued.refresh_jti.as_str()));
    /// ```
    pub fn issue(&self, grant: &Grant<'_>) -> IssuedPair {
        self.inner.issue(grant)
    }

    /// Mints an access token for `grant` (the refresh answer with a session).
    pub fn issue_access_for(&self, grant: &Grant<'_>) -> String {
        self.inner.issue_access(grant)
    }

    /// Verifies `token` strictly for `usefor` (docs/protocol.md §4 "better").
    pub fn verify(&self, token: &str, usefor: TokenUse) -> Result<Claims, TokenError> {
        self.inner.verify(token.as_bytes(), usefor)
    }

    /// [`verify`](Self::verify) of a token given as bytes (a header value's, not checked to be
    /// text: one that verifies is ASCII).
    pub(crate) fn verify_bytes(
        &self,
        token: &[u8],
        usefor: TokenUse,
    ) -> Result<Claims, TokenError> {
        self.inner.verify(token, usefor)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The signing key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.ring.signing.alg
    }

    /// The signing key's `kid`: `None` for a lone HMAC secret (Core's header).
    pub fn kid(&self) -> Option<&str> {
        self.inner.ring.signing.kid.as_deref()
    }

    /// The `kid`s of the ring, signing key first (empty for a lone HMAC secret).
    pub fn kids(&self) -> Vec<&str> {
        let ring = &self.inner.ring;
        std::iter::once(&ring.signing)
            .chain(&ring.others)
            .filter_map(|k| k.kid.as_deref())
            .collect()
    }

    /// Whether the ring holds a public key, so that a [JWKS](crate::jwks) has something to
    /// publish.
    pub fn has_public_keys(&self) -> bool {
        let ring = &self.inner.ring;
        std::iter::once(&ring.signing)
            .chain(&ring.others)
            .any(|k| k.public.is_some())
    }

    /// The JWKS document of the ring's public keys, `{"keys":[…]}` (compact, no newline):
    /// `kty`, `crv`/`n`/`e`/`x`/`y`, `kid`, `alg`, `use: "sig"` — never a private or symmetric
    /// member. Served by [`crate::jwks::JwksService`].
    pub fn jwks_json(&self) -> String {
        #[derive(Serialize)]
        struct Doc<'a> {
            keys: Vec<jwk::JwkJson<'a>>,
        }
        serde_json::to_string(&Doc {
            keys: self.inner.ring.public_jwks(),
        })
        .unwrap_or_else(|_| "{\"keys\":[]}".to_owned())
    }

    /// The access token lifetime in seconds.
    pub fn access_ttl(&self) -> u64 {
        self.inner.access_ttl
    }

    /// The refresh token lifetime in seconds.
    pub fn refresh_ttl(&self) -> u64 {
        self.inner.refresh_ttl
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithm", &self.algorithm())
            .field("kids", &self.kids())
            .field("issuer", &&*self.inner.issuer)
            .field("access_ttl", &self.inner.access_ttl)
            .field("refresh_ttl", &self.inner.refresh_ttl)
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{Algorithm, ClaimText, HEAP_VIA_STACK, INLINE_TEXT, JwtConfig, JwtKey, TokenUse};

    /// Every HMAC size verifies its own tokens (HS512's 86-character signature once overflowed
    /// the tag buffer's base64 estimate and every HS512 token was refused).
    #[test]
    fn every_hmac_size_round_trips() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let jwt = JwtConfig::new(
                JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap(),
            )
            .algorithm(alg)
            .build()
            .unwrap();
            let pair = jwt.issue_pair("alice");
            assert_eq!(
                jwt.verify(&pair.access_token, TokenUse::Access)
                    .unwrap()
                    .subject(),
                "alice",
                "{alg:?}"
            );
            assert!(
                jwt.verify(&pair.refresh_token, TokenUse::Refresh).is_ok(),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn claim_text_inline_and_heap_keep_the_texts() {
        let uuid = "6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a";
        let sid = "x3L9vC1qZ0m5bQ7sT2kYpA";
        let roles = r#""roles":["admin","editor"],"tenant":"acme","plan":"pro"}"#;
        let long = "s".repeat(INLINE_TEXT);
        let huge = "h".repeat(HEAP_VIA_STACK);
        /// `sub`, `jti`, `sid` and the extra claims' members.
        type Texts<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: [Texts<'_>; 18] = [
            ("admin", Some(uuid), None, None),
            ("admin", Some(uuid), Some(sid), None),
            ("admin", None, Some(sid), None),
            ("admin", None, None, None),
            ("admin", Some(""), Some(""), None),
            ("", None, None, None),
            ("auth0|ünïcödé-subject", Some(uuid), Some(sid), None),
            (&long, Some(uuid), None, None),
            (&long, Some(uuid), Some(sid), None),
            (&long, None, Some(sid), None),
            (&long, None, None, None),
            ("admin", Some(uuid), None, Some(roles)),
            ("admin", Some(uuid), Some(sid), Some(roles)),
            ("admin", None, None, Some(r#""ü":"€"}"#)),
            ("admin", Some(uuid), Some(sid), Some("}")),
            (&long, Some(uuid), None, Some(roles)),
            (&huge, Some(uuid), Some(sid), Some(roles)),
            (&huge, None, None, None),
        ];
        for (sub, jti, sid, members) in cases {
            let text = ClaimText::new(sub, jti, sid, members);
            assert_eq!(text.subject(), sub);
            assert_eq!(text.jti(), jti);
            assert_eq!(text.sid(), sid);
            assert_eq!(text.extra(), members.map(|m| format!("{{{m}")).as_deref());
            let inline = matches!(text, ClaimText::Inline { .. });
            let total = sub.len()
                + jti.map_or(0, str::len)
                + sid.map_or(0, str::len)
                + members.map_or(0, |m| m.len() + 1);
            assert_eq!(inline, total <= INLINE_TEXT);
            assert!(text == text.clone());
        }
        let new = |sub, jti, sid| ClaimText::new(sub, jti, sid, None);
        assert!(new("ab", Some("c"), None) != new("a", Some("bc"), None));
        assert!(new("a", Some("b"), None) != new("a", None, Some("b")));
        assert!(new("a", None, None) != new("a", Some(""), None));
        assert!(new("a", None, None) != new("a", None, Some("")));
        assert!(new("a", None, None) != ClaimText::new("a", None, None, Some("}")));
        assert!(
            ClaimText::new("a", None, None, Some(r#""b":1}"#))
                != ClaimText::new("a", None, None, Some(r#""b":2}"#))
        );
        let exact = "x".repeat(INLINE_TEXT - uuid.len() - roles.len() - 1);
        assert!(matches!(
            ClaimText::new(&exact, Some(uuid), None, Some(roles)),
            ClaimText::Inline { .. }
        ));
    }
}
