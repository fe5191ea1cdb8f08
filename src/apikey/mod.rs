//! API keys (personal access tokens): a user with a valid access token creates a key, and a
//! program later exchanges the key for a normal token pair at the login route — the layer
//! itself stays stateless.
//!
//! - **Format** ([`ApiKey`]): `tjl_` + 43 random base62 characters (256 bits of randomness) +
//!   a 6-character base62 CRC32 of the random part, 53 characters in all (GitHub's token format
//!   is the model). The prefix lets secret scanners recognise a leaked key; the checksum lets
//!   the server (and a scanner) refuse a mistyped or made-up key without a lookup.
//! - **Stored as a hash only** ([`ApiKeyHash`], SHA-256 of the key) with its name, owner,
//!   optional roles, creation, expiry and last use ([`ApiKeyInfo`]); the key is shown once.
//!   SHA-256, not Argon2: a slow hash protects *guessable* secrets against offline guessing,
//!   and a key has 256 random bits, which no guessing reaches through any hash. A fast,
//!   unsalted hash is also what lets the exchange find the key by one indexed lookup, instead
//!   of one Argon2 run (tens of milliseconds) per key.
//! - **Management** ([`ApiKeyService`]): `POST /api/v3/auth/keys`, `GET /api/v3/auth/keys`,
//!   `DELETE /api/v3/auth/keys/{id}` for the caller's own keys, behind the layer.
//! - **Exchange** ([`LoginService::api_keys`](crate::login::LoginService::api_keys)):
//!   `POST /api/login` with `Authorization: Bearer <key>` and no body answers a token pair for
//!   the key's owner, carrying the owner's current extra claims with `roles` restricted to the
//!   key's, and the claim [`API_KEY_CLAIM`] naming the key.
//! - **In the assembly** ([`LoginKit::api_keys`](crate::kit::LoginKit::api_keys)): one call
//!   wires the exchange, the check at refresh and the management routes over one store, and
//!   with sessions revoking a key ends its sessions.
//! - **Where keys live** ([`ApiKeyStore`]): [`MemoryApiKeyStore`] for one instance, or with the
//!   `sql` feature `SqlStore` (PostgreSQL, SQLite).
//!
//! ```
//! use tower_jwt_login::apikey::{ApiKey, ApiKeyHash};
//!
//! let key = ApiKey::generate();
//! let text = key.expose_secret();
//! assert!(text.starts_with("tjl_"));
//! assert_eq!(text.len(), 53);
//! // The server keeps only the hash; a presented key is parsed (checksum) and hashed again.
//! let stored = key.hash();
//! let presented = ApiKey::parse(text).unwrap();
//! assert_eq!(presented.hash(), stored);
//! assert_eq!(ApiKeyHash::from_hex(&stored.to_hex()), Some(stored));
//! // One changed character fails the checksum: no lookup needed.
//! let mut typo = text.to_owned();
//! typo.replace_range(10..11, if &text[10..11] == "a" { "b" } else { "a" });
//! assert!(ApiKey::parse(&typo).is_none());
//! ```

mod memory;
mod service;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::token::Lookup;
use crate::token::{Claims, Principal, PrincipalError, members_of, random_alphanumeric};

pub use memory::MemoryApiKeyStore;
pub use service::{ApiKeyService, DEFAULT_KEYS_PATH};

/// The prefix of every key: what secret scanners look for.
pub const API_KEY_PREFIX: &str = "tjl_";

/// The extra claim of the tokens an API key was exchanged for: the key's id (a JSON string).
/// A refresh keeps the key's restriction by it, and [`ApiKeyService`] refuses such tokens
/// (a key cannot mint keys).
pub const API_KEY_CLAIM: &str = "api_key";

/// Random characters of a key: 43 base62 characters carry 43 × log2(62) ≈ 256.03 bits.
const RANDOM_LEN: usize = 43;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
const CHECKSUM_LEN: usize = 6;
/// The length of a key.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An API key in clear: made by [`generate`](Self::generate) (shown to its owner once) or
/// [`parse`](Self::parse)d from a request. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let random = random_alphanumeric::<RANDOM_LEN>();
        let mut text = Zeroizing::new(String::with_capacity(API_KEY_LEN));
        text.push_str(API_KEY_PREFIX);
        // `random_alphanumeric` yields ASCII letters and digits only.
        text.extend(random.iter().map(|&b| char::from(b)));
        text.push_str(&checksum(&random[..]));
        ApiKey(text)
    }

    /// The key, when `text` has the format: the prefix, 43 base62 characters and their
    /// checksum. `None` for anything else (no lookup is needed to refuse it).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != API_KEY_LEN || !text.starts_with(API_KEY_PREFIX) {
            return None;
        }
        let rest = text.get(API_KEY_PREFIX.len()..)?.as_bytes();
        if !rest.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let (random, sum) = rest.split_at(RANDOM_LEN);
        let expected = checksum(random);
        bool::from(expected.as_bytes().ct_eq(sum)).then(|| ApiKey(Zeroizing::new(text.to_owned())))
    }

    /// Whether `text` claims to be a key of this format (starts with [`API_KEY_PREFIX`]):
    /// the login treats it as a key, valid or not.
    pub fn is_prefixed(text: &str) -> bool {
        text.starts_with(API_KEY_PREFIX)
    }

    /// The key itself, to show its owner once.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// What the store keeps: the SHA-256 of the key.
    pub fn hash(&self) -> ApiKeyHash {
        Self::hash_text(&self.0)
    }

    /// The SHA-256 of any text (a presented bearer that is no key).
    pub(crate) fn hash_text(text: &str) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(text.as_bytes()).into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The 6-character base62 CRC32 (IEEE) of the random part.
fn checksum(random: &[u8]) -> String {
    let mut n = crc32(random);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// CRC-32/ISO-HDLC (the zlib, PNG and GitHub-token CRC), bitwise: keys are short.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The SHA-256 of a key: what a store keeps and looks keys up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeyHash {
    /// Lowercase hex (64 characters), as the SQL store keeps it.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in self.0 {
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
            ));
        }
        out
    }

    /// The hash from [`to_hex`](Self::to_hex)'s text.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *slot = (nibble(*hi)? << 4) | nibble(*lo)?;
        }
        Some(ApiKeyHash(out))
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash({})", self.to_hex())
    }
}

/// What is known about a key, without the key: what the owner lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    /// The key's id (in the revoke route's path).
    pub id: String,
    /// The owner: the subject of the tokens the key is exchanged for.
    #[serde(skip)]
    pub subject: String,
    /// The owner's name for it.
    pub name: String,
    /// The roles its tokens may carry (a subset of the owner's, checked again at every
    /// exchange); `None`: all the owner's roles.
    pub roles: Option<Vec<String>>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; `None`: never expires.
    pub expires_at: Option<u64>,
    /// Unix seconds of the last exchange (recorded at most once a minute); `None`: never used.
    pub last_used_at: Option<u64>,
}

impl ApiKeyInfo {
    /// A new key's record: a fresh id, created now, expiring `expires_in` seconds from now
    /// (never with `None`), never used. Store it with the key's hash
    /// ([`ApiKeyStore::create`]); this is what the key routes do.
    ///
    /// ```
    /// use tower_jwt_login::apikey::ApiKeyInfo;
    ///
    /// let info = ApiKeyInfo::fresh("alice", "ci", Some(vec!["viewer".into()]), Some(3600));
    /// assert_eq!(info.id.len(), 16);
    /// assert_eq!(info.expires_at, Some(info.created_at + 3600));
    /// assert!(!info.is_expired(info.created_at));
    /// ```
    pub fn fresh(
        subject: impl Into<String>,
        name: impl Into<String>,
        roles: Option<Vec<String>>,
        expires_in: Option<u64>,
    ) -> Self {
        let now = crate::token::now_secs();
        ApiKeyInfo {
            id: new_key_id(),
            subject: subject.into(),
            name: name.into(),
            roles,
            created_at: now,
            expires_at: expires_in.map(|s| now.saturating_add(s)),
            last_used_at: None,
        }
    }

    /// Whether the key has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// A key found by its hash, and — when the store knows it from the same lookup — its owner's
/// current principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundApiKey {
    /// The key.
    pub key: ApiKeyInfo,
    /// The owner's principal as [`CredentialStore::principal`](crate::store::CredentialStore::principal)
    /// would answer it (a store that keeps users and keys side by side reads both in one
    /// query); `None`: the login asks its credential store.
    pub owner: Option<Lookup>,
}

/// Where API keys live. Native `async fn` in traits, like
/// [`CredentialStore`](crate::store::CredentialStore). Keys are kept as their
/// [`ApiKeyHash`] only.
///
/// ```
/// use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore, MemoryApiKeyStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryApiKeyStore::new();
/// let key = ApiKey::generate();
/// let info = ApiKeyInfo {
///     id: "k1".into(),
///     subject: "alice".into(),
///     name: "ci".into(),
///     roles: None,
///     created_at: 1_700_000_000,
///     expires_at: None,
///     last_used_at: None,
/// };
/// store.create(&info, &key.hash()).await.unwrap();
/// let found = store.find_by_hash(&key.hash()).await.unwrap().unwrap();
/// assert_eq!(found.key.subject, "alice");
/// assert!(!store.revoke("bob", "k1").await.unwrap()); // not bob's
/// assert!(store.revoke("alice", "k1").await.unwrap());
/// assert!(store.find_by_hash(&key.hash()).await.unwrap().is_none());
/// # });
/// ```
pub trait ApiKeyStore: Send + Sync + 'static {
    /// A failure of the store (database down, …): answered as a 500 without details.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Keeps a new key (its id and hash are fresh and unique).
    fn create(
        &self,
        key: &ApiKeyInfo,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The subject's keys, oldest first.
    fn list(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyInfo>, Self::Error>> + Send;

    /// Deletes the subject's key `id`; `false` when the subject has no such key (another
    /// user's key included).
    fn revoke(
        &self,
        subject: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The key with this hash (expired ones included: the caller checks).
    fn find_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<FoundApiKey>, Self::Error>> + Send;

    /// The key with this id (a refresh of a key's tokens checks it still exists).
    fn find_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyInfo>, Self::Error>> + Send;

    /// Records that the key was used at `at` (Unix seconds).
    fn touch(&self, id: &str, at: u64) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A shared store is a store: give the same `Arc` to the login and to [`ApiKeyService`].
impl<K: ApiKeyStore> ApiKeyStore for std::sync::Arc<K> {
    type Error = K::Error;

    fn create(
        &self,
        key: &ApiKeyInfo,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).create(key, hash)
    }

    fn list(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyInfo>, Self::Error>> + Send {
        (**self).list(subject)
    }

    fn revoke(
        &self,
        subject: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        (**self).revoke(subject, id)
    }

    fn find_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<FoundApiKey>, Self::Error>> + Send {
        (**self).find_by_hash(hash)
    }

    fn find_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyInfo>, Self::Error>> + Send {
        (**self).find_by_id(id)
    }

    fn touch(&self, id: &str, at: u64) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).touch(id, at)
    }
}

use crate::error::BoxError;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The exchange's and the refresh's view of an [`ApiKeyStore`], behind a trait object (the
/// services are not generic over it).
pub(crate) trait DynApiKeys: Send + Sync + 'static {
    fn find_by_hash<'a>(
        &'a self,
        hash: &'a ApiKeyHash,
    ) -> BoxFuture<'a, Result<Option<FoundApiKey>, BoxError>>;
    fn touch<'a>(&'a self, id: &'a str, at: u64) -> BoxFuture<'a, Result<(), BoxError>>;
    fn find_by_id<'a>(&'a self, id: &'a str)
    -> BoxFuture<'a, Result<Option<ApiKeyInfo>, BoxError>>;
}

impl<K: ApiKeyStore> DynApiKeys for K {
    fn find_by_hash<'a>(
        &'a self,
        hash: &'a ApiKeyHash,
    ) -> BoxFuture<'a, Result<Option<FoundApiKey>, BoxError>> {
        Box::pin(async move {
            ApiKeyStore::find_by_hash(self, hash)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }

    fn touch<'a>(&'a self, id: &'a str, at: u64) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            ApiKeyStore::touch(self, id, at)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }

    fn find_by_id<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyInfo>, BoxError>> {
        Box::pin(async move {
            ApiKeyStore::find_by_id(self, id)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// The principal of a key's tokens: the owner's current one, its `roles` restricted to the
/// key's (in the owner's order; roles the owner lost since are gone), other extra claims kept,
/// and [`API_KEY_CLAIM`] naming the key.
///
/// ```
/// use tower_jwt_login::Principal;
/// use tower_jwt_login::apikey::{ApiKeyInfo, key_principal};
///
/// let owner = Principal::builder("alice")
///     .claim("roles", ["admin", "editor", "viewer"])
///     .claim("tenant", "acme")
///     .build()
///     .unwrap();
/// let key = ApiKeyInfo {
///     id: "k1".into(),
///     subject: "alice".into(),
///     name: "ci".into(),
///     roles: Some(vec!["viewer".into(), "editor".into(), "root".into()]),
///     created_at: 0,
///     expires_at: None,
///     last_used_at: None,
/// };
/// let p = key_principal(&owner, &key).unwrap();
/// assert_eq!(
///     p.extra_json(),
///     Some(r#"{"roles":["editor","viewer"],"tenant":"acme","api_key":"k1"}"#)
/// );
/// ```
pub fn key_principal(owner: &Principal, key: &ApiKeyInfo) -> Result<Principal, PrincipalError> {
    let mut builder = Principal::builder(owner.subject());
    let members = owner.extra_json().and_then(members_of).unwrap_or_default();
    let mut had_roles = false;
    for (name, value) in &members {
        if name == API_KEY_CLAIM {
            continue;
        }
        if name == "roles" {
            had_roles = true;
            if let Some(allowed) = &key.roles {
                let held: Vec<String> = serde_json::from_str(value.get()).unwrap_or_default();
                let kept: Vec<&String> = held.iter().filter(|r| allowed.contains(r)).collect();
                builder = builder.claim("roles", kept);
                continue;
            }
        }
        builder = builder.claim(name, value as &RawValue);
    }
    if !had_roles && key.roles.is_some() {
        builder = builder.claim("roles", [(); 0]);
    }
    builder.claim(API_KEY_CLAIM, &key.id).build()
}

/// The id of the key a token was exchanged for ([`API_KEY_CLAIM`]), if it was.
pub fn key_of(claims: &Claims) -> Option<String> {
    serde_json::from_str(claims.extra_value(API_KEY_CLAIM)?).ok()
}

/// The principal of the access token a refresh mints, when the refresh token may have been
/// exchanged for an API key: for such a token ([`key_of`]) the key must still exist, belong to
/// the subject and not have expired at `now` (else `Ok(None)`: refuse the refresh — a revoked
/// key's tokens stop at their next refresh even without sessions), and the key's restriction
/// is applied to `current` (the owner's principal now, from the credential store). A token of
/// no key gets `current` unchanged.
///
/// Without it, a refresh that asks the credential store for the current principal would give a
/// key's tokens all of the owner's roles.
pub async fn principal_at_refresh<K: ApiKeyStore + ?Sized>(
    keys: &K,
    claims: &Claims,
    current: Principal,
    now: u64,
) -> Result<Option<Principal>, K::Error> {
    let Some(id) = key_of(claims) else {
        return Ok(Some(current));
    };
    let key = keys.find_by_id(&id).await?;
    Ok(restrict_at_refresh(claims, current, key.as_ref(), now))
}

/// [`principal_at_refresh`] once the key is looked up: `None` (refuse) for a missing,
/// expired or foreign key.
pub(crate) fn restrict_at_refresh(
    claims: &Claims,
    current: Principal,
    key: Option<&ApiKeyInfo>,
    now: u64,
) -> Option<Principal> {
    let key = key?;
    if key.subject != claims.subject() || key.is_expired(now) {
        return None;
    }
    key_principal(&current, key).ok()
}

/// A fresh key id: 16 base62 characters (95 random bits).
pub(crate) fn new_key_id() -> String {
    random_alphanumeric::<16>()
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert_ne!(a.expose_secret(), b.expose_secret());
        for key in [&a, &b] {
            let text = key.expose_secret();
            assert_eq!(text.len(), API_KEY_LEN);
            assert!(text.starts_with("tjl_"));
            assert!(text[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(ApiKey::parse(text).unwrap().hash(), key.hash());
        }
        assert_eq!(format!("{a:?}"), "ApiKey(<redacted>)");
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let key = ApiKey::generate();
        let text = key.expose_secret();
        for bad in [
            "",
            "tjl_",
            &text[..52],
            &format!("{text}0"),
            &text.replacen("tjl_", "tjx_", 1),
            &format!("tjl_!{}", &text[5..]),
            &format!("TJL_{}", &text[4..]),
        ] {
            assert!(ApiKey::parse(bad).is_none(), "{bad}");
        }
        // Every single-character change of the random part fails the checksum.
        for i in 4..4 + RANDOM_LEN {
            let mut changed = text.as_bytes().to_vec();
            changed[i] = if changed[i] == b'a' { b'b' } else { b'a' };
            assert!(
                ApiKey::parse(std::str::from_utf8(&changed).unwrap()).is_none(),
                "position {i}"
            );
        }
        // The checksum alone changed, too.
        let mut changed = text.as_bytes().to_vec();
        changed[52] = if changed[52] == b'a' { b'b' } else { b'a' };
        assert!(ApiKey::parse(std::str::from_utf8(&changed).unwrap()).is_none());
    }

    #[test]
    fn the_checksum_is_the_base62_crc32_of_the_random_part() {
        // CRC32("123456789") = 0xCBF43926 = 3421780262, in base62 (0-9, A-Z, a-z) "3jZRME".
        assert_eq!(checksum(b"123456789"), "3jZRME");
        // Small values are zero-padded to six characters.
        assert_eq!(checksum(b""), "000000");
    }

    #[test]
    fn hash_hex_round_trips() {
        let hash = ApiKey::generate().hash();
        let hex = hash.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(ApiKeyHash::from_hex(&hex), Some(hash));
        assert_eq!(ApiKeyHash::from_hex(&hex.to_uppercase()), None);
        assert_eq!(ApiKeyHash::from_hex(&hex[1..]), None);
        // SHA-256 of the whole key text.
        let key = ApiKey::generate();
        let expected: [u8; 32] = Sha256::digest(key.expose_secret().as_bytes()).into();
        assert_eq!(key.hash().0, expected);
    }

    fn info(roles: Option<&[&str]>) -> ApiKeyInfo {
        ApiKeyInfo {
            id: "k1".into(),
            subject: "alice".into(),
            name: "ci".into(),
            roles: roles.map(|r| r.iter().map(|s| s.to_string()).collect()),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn key_principal_restricts_roles_and_names_the_key() {
        let plain = Principal::new("alice");
        assert_eq!(
            key_principal(&plain, &info(None)).unwrap().extra_json(),
            Some(r#"{"api_key":"k1"}"#)
        );
        assert_eq!(
            key_principal(&plain, &info(Some(&["admin"])))
                .unwrap()
                .extra_json(),
            Some(r#"{"roles":[],"api_key":"k1"}"#),
            "roles the owner does not hold are never granted"
        );
        let owner = Principal::builder("alice")
            .claim("roles", ["admin", "viewer"])
            .build()
            .unwrap();
        assert_eq!(
            key_principal(&owner, &info(None)).unwrap().extra_json(),
            Some(r#"{"roles":["admin","viewer"],"api_key":"k1"}"#)
        );
        assert_eq!(
            key_principal(&owner, &info(Some(&[])))
                .unwrap()
                .extra_json(),
            Some(r#"{"roles":[],"api_key":"k1"}"#)
        );
        // A principal that already names a key (a refresh) is re-stamped, not duplicated.
        let stamped = key_principal(&owner, &info(Some(&["viewer"]))).unwrap();
        let again = key_principal(&stamped, &info(Some(&["viewer"]))).unwrap();
        assert_eq!(
            again.extra_json(),
            Some(r#"{"roles":["viewer"],"api_key":"k1"}"#)
        );
    }

    /// A refresh of a key's tokens keeps the key's restriction on the owner's current
    /// principal, and stops once the key is revoked or expired; other tokens pass unchanged.
    #[tokio::test]
    async fn principal_at_refresh_follows_the_key() {
        use crate::{JwtConfig, JwtKey, TokenUse};
        let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
        let keys = MemoryApiKeyStore::new();
        let key = ApiKey::generate();
        let mut k1 = info(Some(&["viewer"]));
        k1.expires_at = Some(1_000);
        keys.create(&k1, &key.hash()).await.unwrap();
        let owner = Principal::builder("alice")
            .claim("roles", ["admin", "viewer"])
            .build()
            .unwrap();
        let minted = key_principal(&owner, &k1).unwrap();
        let refresh = jwt.issue_pair_for(&minted).refresh_token;
        let claims = jwt.verify(&refresh, TokenUse::Refresh).unwrap();
        assert_eq!(key_of(&claims).as_deref(), Some("k1"));

        let again = principal_at_refresh(&keys, &claims, owner.clone(), 999)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            again.extra_json(),
            Some(r#"{"roles":["viewer"],"api_key":"k1"}"#)
        );
        assert_eq!(
            principal_at_refresh(&keys, &claims, owner.clone(), 1_000)
                .await
                .unwrap(),
            None,
            "expired"
        );
        assert!(keys.revoke("alice", "k1").await.unwrap());
        assert_eq!(
            principal_at_refresh(&keys, &claims, owner.clone(), 999)
                .await
                .unwrap(),
            None,
            "revoked"
        );
        // A password login's token: the current principal as it is.
        let plain = jwt.issue_pair_for(&owner).refresh_token;
        let claims = jwt.verify(&plain, TokenUse::Refresh).unwrap();
        assert_eq!(key_of(&claims), None);
        assert_eq!(
            principal_at_refresh(&keys, &claims, owner.clone(), 999)
                .await
                .unwrap(),
            Some(owner)
        );
    }
}
