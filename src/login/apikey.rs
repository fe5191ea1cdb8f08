//! The API-key exchange of the login route: `Authorization: Bearer tjl_…` and no body → the
//! key's owner's token pair (see [`crate::apikey`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::{Issue, LoginAnswer, LoginService, Origin};
use crate::apikey::{ApiKey, ApiKeyHash, ApiKeyInfo, ApiKeyStore, DynApiKeys, key_principal};
use crate::error::{BoxError, LoginError};
use crate::session::{KeyTag, Sessions};
use crate::store::{CredentialStore, Lookup};
use crate::token::{Principal, now_secs};

/// Seconds between two recordings of a key's last use.
const TOUCH_EVERY: u64 = 60;

impl<S: CredentialStore, A> LoginService<S, A> {
    /// Accepts API keys from `store` ([`crate::apikey`]): a login without JSON credentials whose
    /// bearer starts with `tjl_` is an API-key exchange. A valid, unexpired key of an owner the
    /// credential store still accepts ([`CredentialStore::principal`]) answers a normal token
    /// pair for the owner, with the owner's current extra claims, `roles` restricted to the
    /// key's, and the claim [`API_KEY_CLAIM`](crate::apikey::API_KEY_CLAIM) naming the key. Any
    /// failure (malformed, unknown, expired, revoked, disabled owner) is the wrong-password 401,
    /// after the same failure delay, and counts against the throttle (per client address, and
    /// per key: the account counted is `api-key:` and the first 16 hex digits of the key's
    /// SHA-256). No Argon2 run: one lookup by the key's hash.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http::Request;
    /// use http_body_util::Full;
    /// use tower::ServiceExt;
    /// use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore, MemoryApiKeyStore};
    /// use tower_jwt_login::login::LoginService;
    /// use tower_jwt_login::store::PlaintextUser;
    /// use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let keys = std::sync::Arc::new(MemoryApiKeyStore::new());
    /// let key = ApiKey::generate();
    /// let info = ApiKeyInfo {
    ///     id: "k1".into(), subject: "admin".into(), name: "ci".into(), roles: None,
    ///     created_at: 0, expires_at: None, last_used_at: None,
    /// };
    /// keys.create(&info, &key.hash()).await.unwrap();
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let login = LoginService::new(jwt.clone(), PlaintextUser::new("admin", "pw"))
    ///     .api_keys(keys)
    ///     .failure_delay(Duration::ZERO);
    /// let req = Request::post("/api/login")
    ///     .header("authorization", format!("Bearer {}", key.expose_secret()))
    ///     .body(Full::new(Bytes::new()))
    ///     .unwrap();
    /// let res = login.oneshot(req).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// # });
    /// ```
    #[must_use]
    pub fn api_keys<K: ApiKeyStore>(mut self, store: K) -> Self {
        self.api_keys = Some(Arc::new(store));
        self
    }

    /// [`api_keys`](Self::api_keys) with a store already shared (the assembly's).
    pub(crate) fn api_keys_shared(mut self, store: Arc<dyn DynApiKeys>) -> Self {
        self.api_keys = Some(store);
        self
    }

    /// The login of an API key: the exchange, then the pair (with sessions, of a new session;
    /// refused because the owner was logged out everywhere meanwhile, the key is checked once
    /// more). The second factor does not apply: the key was made with a token that passed it.
    pub(super) async fn api_key_login(
        &self,
        keys: &dyn DynApiKeys,
        bearer: &str,
        origin: Origin<'_>,
    ) -> Result<(LoginAnswer, String, &'static str), LoginError> {
        let client = origin.client;
        // The owner's "not before" as it is before the key is checked.
        let seen = self.sessions.as_ref().map(Sessions::snapshot);
        let (principal, key) = self.exchange_api_key(keys, bearer, client).await?;
        let seen = seen.and_then(|s| s.not_before(principal.subject()));
        // The session is tagged with the key: revoking the key ends it.
        let tagged = Origin {
            api_key: Some(KeyTag {
                id: &key.id,
                name: &key.name,
            }),
            ..origin
        };
        let pair = match self.issue(&principal, seen, tagged).await? {
            Issue::Pair(pair) => pair,
            Issue::Refused(not_before) => {
                let (again, key) = self.exchange_api_key(keys, bearer, client).await?;
                let tagged = Origin {
                    api_key: Some(KeyTag {
                        id: &key.id,
                        name: &key.name,
                    }),
                    ..origin
                };
                self.issue_again(&again, &principal, not_before, tagged)
                    .await?
            }
        };
        Ok(((pair, None), principal.subject().to_owned(), "api_key"))
    }

    /// The exchange: the principal of the key's tokens and the key (for tagging the session),
    /// or the wrong-credentials error.
    pub(super) async fn exchange_api_key(
        &self,
        keys: &dyn DynApiKeys,
        bearer: &str,
        client: Option<IpAddr>,
    ) -> Result<(Principal, ApiKeyInfo), LoginError> {
        let presented = ApiKey::parse(bearer);
        let hash = match &presented {
            Some(key) => key.hash(),
            // Not a key at all: hashed for the throttle's account only, never looked up.
            None => ApiKey::hash_text(bearer),
        };
        let account = throttle_account(&hash);
        let throttle = self.throttle.as_ref();
        if let Some(throttle) = throttle {
            throttle
                .begin_shared(&account, client)
                .await
                .map_err(LoginError::Throttled)?;
        }
        let outcome = match presented {
            Some(_) => self.find_key(keys, &hash).await,
            None => Ok(None),
        };
        if let Some(throttle) = throttle {
            match &outcome {
                Ok(Some(_)) => throttle.settle_shared(&account, client, true).await,
                Ok(None) => {}
                Err(_) => throttle.settle_shared(&account, client, false).await,
            }
        }
        match outcome {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(LoginError::InvalidCredentials),
            Err(e) => Err(LoginError::Store(e)),
        }
    }

    async fn find_key(
        &self,
        keys: &dyn DynApiKeys,
        hash: &ApiKeyHash,
    ) -> Result<Option<(Principal, ApiKeyInfo)>, BoxError> {
        let Some(found) = keys.find_by_hash(hash).await? else {
            tracing::debug!("unknown API key");
            return Ok(None);
        };
        let key = found.key;
        let now = now_secs();
        if key.is_expired(now) {
            tracing::debug!("expired API key");
            return Ok(None);
        }
        let owner = match found.owner {
            Some(owner) => owner,
            None => self
                .store
                .principal(&key.subject)
                .await
                .map_err(|e| Box::new(e) as BoxError)?,
        };
        let owner = match owner {
            Lookup::Found(principal) if principal.subject() == key.subject => principal,
            Lookup::Found(_) => {
                tracing::error!(
                    "credential store returned a principal for another subject: API key refused"
                );
                return Ok(None);
            }
            Lookup::Refused => {
                tracing::debug!("API key of a refused owner");
                return Ok(None);
            }
            Lookup::NotSupported => Principal::new(key.subject.as_str()),
        };
        let principal = match key_principal(&owner, &key) {
            Ok(principal) => principal,
            Err(e) => {
                tracing::error!(error = %e, "API key principal cannot be minted: refused");
                return Ok(None);
            }
        };
        if key
            .last_used_at
            .is_none_or(|at| now >= at.saturating_add(TOUCH_EVERY))
            && let Err(e) = keys.touch(&key.id, now).await
        {
            // The exchange stands: the last-use time is for the owner's list only.
            tracing::warn!(error = %e, "could not record an API key's last use");
        }
        tracing::debug!("API key accepted");
        Ok(Some((principal, key)))
    }
}

/// The throttle's account for a presented key: `api-key:` and 16 hex digits of its hash.
fn throttle_account(hash: &ApiKeyHash) -> String {
    let hex = hash.to_hex();
    format!("api-key:{}", hex.get(..16).unwrap_or_default())
}
