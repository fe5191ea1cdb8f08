//! [`RefreshService`]: `GET /api/login/refresh` trades a refresh token for a new access token
//! (and, with rotation, for a new refresh token too).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;

use super::{Minted, WantMinted};
use crate::apikey::{self, ApiKeyStore, DynApiKeys};
use crate::audit::{AUDIT, AuditClient, token_error_type};
use crate::bearer::bearer_token;
use crate::client_addr::ClientAddrResolver;
use crate::error::{AuthError, TokenError};
use crate::metrics::Metrics;
use crate::response::{
    ResponseBody, ResponseFuture, error_response, json_bytes_response, json_response,
    unauthorized_response, unavailable_response, wrong_method,
};
use crate::session::{RefreshVerdict, Rotation, SessionError, Sessions};
use crate::store::{CredentialStore, Lookup};
use crate::token::{Claims, Grant, Jwt, Principal, TokenPair, TokenUse, now_secs};

/// The refresh route: `GET` with `Authorization: Bearer <refresh token>` answers
/// `{"access_token":"…"}`; anything else 401 `Missing or invalid JWT token` (any method other
/// than `GET` gets 404 in the §2 shape). Each outcome writes one audit event (see the
/// [module docs](crate::login#audit-log)).
///
/// With [sessions](RefreshService::sessions) the refresh token must belong to a live session
/// (one round trip to the store), and with [rotation](RefreshService::rotation) the answer is
/// `{"access_token":"…","refresh_token":"…"}`: the presented refresh token is spent, and
/// presenting it again ends the whole session.
#[derive(Debug, Clone)]
pub struct RefreshService {
    jwt: Jwt,
    metrics: Option<Metrics>,
    client_addr: ClientAddrResolver,
    sessions: Option<Sessions>,
    rotation: Option<Duration>,
    principals: Option<Principals>,
    api_keys: Option<ApiKeys>,
}

/// The API-key store a refresh of a key's tokens checks.
#[derive(Clone)]
struct ApiKeys(Arc<dyn DynApiKeys>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeys(..)")
    }
}

use crate::error::BoxError;

/// The credential store a refresh asks for the subject's current principal.
#[derive(Clone)]
struct Principals(Arc<dyn DynPrincipals>);

impl std::fmt::Debug for Principals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Principals(..)")
    }
}

/// [`CredentialStore::principal`] behind a trait object (the service is not generic).
trait DynPrincipals: Send + Sync + 'static {
    fn lookup<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Lookup, BoxError>> + Send + 'a>>;
}

impl<S: CredentialStore> DynPrincipals for Arc<S> {
    fn lookup<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Lookup, BoxError>> + Send + 'a>> {
        Box::pin(async move {
            self.principal(subject)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }
}

#[derive(Serialize)]
struct AccessOnly<'a> {
    access_token: &'a str,
}

/// Why a refresh with sessions was not answered with tokens.
enum Refused {
    Token(AuthError),
    Unavailable(u64),
    Store(SessionError),
    /// The credential store failed to look the principal up.
    Lookup(BoxError),
}

impl RefreshService {
    /// The refresh route for tokens of `jwt`.
    pub fn new(jwt: Jwt) -> Self {
        RefreshService {
            jwt,
            metrics: None,
            client_addr: ClientAddrResolver::new(),
            sessions: None,
            rotation: None,
            principals: None,
            api_keys: None,
        }
    }

    /// Checks the API key of tokens exchanged for one ([`crate::apikey`]) at every refresh:
    /// the key must still exist, belong to the subject and not have expired (else the refresh
    /// route's 401: a revoked key's tokens stop at their next refresh, with or without
    /// sessions), and the new access token keeps the key's restriction of the owner's roles.
    /// Give it the store the login exchanges keys with. Without it, a refresh of a key's tokens
    /// is refused: it could neither see a revocation nor keep the restriction.
    #[must_use]
    pub fn api_keys<K: ApiKeyStore>(mut self, store: K) -> Self {
        self.api_keys = Some(ApiKeys(Arc::new(store)));
        self
    }

    /// [`api_keys`](Self::api_keys) with a store already shared (the assembly's).
    pub(crate) fn api_keys_shared(mut self, store: Arc<dyn DynApiKeys>) -> Self {
        self.api_keys = Some(ApiKeys(store));
        self
    }

    /// Looks the subject up in `store` at every refresh ([`CredentialStore::principal`]): the
    /// new access token carries the principal's **current** extra claims (a demoted admin loses
    /// the role at the next refresh), and a subject the store refuses (disabled, removed) gets
    /// the refresh route's 401. A store that answers [`Lookup::NotSupported`] — and every
    /// refresh without this — carries the refresh token's extra claims over.
    ///
    /// Share the store with the login through an `Arc` (`Arc<S>` is a store too):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_jwt_login::login::{LoginService, RefreshService};
    /// use tower_jwt_login::store::Argon2Store;
    /// use tower_jwt_login::{JwtConfig, JwtKey};
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let store = Arc::new(Argon2Store::new());
    /// let users = store.users(); // add, disable, set roles at runtime
    /// let login = LoginService::new(jwt.clone(), Arc::clone(&store));
    /// let refresh = RefreshService::new(jwt).credentials(store);
    /// # let _ = (login, refresh, users);
    /// ```
    #[must_use]
    pub fn credentials<S: CredentialStore>(mut self, store: Arc<S>) -> Self {
        self.principals = Some(Principals(Arc::new(store)));
        self
    }

    /// How the client address of the audit event is found (default
    /// [`ClientAddrResolver::new`]; give it the login's resolver when behind a proxy).
    #[must_use]
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// Counts refreshes and refused refreshes into `metrics` ([`Metrics::record_refresh`],
    /// [`Metrics::record_refresh_failure`]).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Refreshes only tokens of a live [session](crate::session): a token without a `sid`, of
    /// an ended session, or (with rotation) already spent is refused with the usual 401; while
    /// the store cannot be reached the answer is `503` with `Retry-After`.
    #[must_use]
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// Refresh-token rotation with reuse detection (needs [`sessions`](Self::sessions); without
    /// them this does nothing): every refresh answers a new refresh token too and spends the
    /// presented one; presenting a spent one again ends the whole session on every instance
    /// (OAuth 2.0 Security BCP §4.14). Within `grace` after spending, a second presentation
    /// still rotates (a client retrying a refresh whose answer was lost; the successor it lost
    /// stops working) — `Duration::ZERO` for none.
    ///
    /// Core's own clients keep using their first refresh token and ignore a new one: rotation is
    /// for clients that store the refresh token they are given.
    #[must_use]
    pub fn rotation(mut self, grace: Duration) -> Self {
        self.rotation = Some(grace);
        self
    }

    fn record(&self, claims: Option<&Claims>, outcome: &'static str, reason: &'static str) {
        let span = tracing::Span::current();
        if let Some(claims) = claims {
            span.record("subject", claims.subject());
        }
        span.record("outcome", outcome);
        crate::metrics::refreshed(self.metrics.as_ref(), outcome, reason);
    }

    fn verify<B>(&self, req: &Request<B>) -> Result<Claims, AuthError> {
        let token = bearer_token(req.headers())?;
        let claims = self.jwt.verify(token, TokenUse::Refresh)?;
        if let Some(sessions) = &self.sessions {
            if claims.session_id().is_none() {
                return Err(TokenError::NoSession.into());
            }
            if sessions.revocations().is_revoked(&claims) {
                return Err(TokenError::Revoked.into());
            }
        }
        Ok(claims)
    }

    /// The stateless refresh, exactly as before sessions: a new access token for `principal`.
    fn stateless(
        &self,
        method: &Method,
        claims: &Claims,
        principal: &Principal,
        client: &AuditClient,
        minted: bool,
    ) -> Response<ResponseBody> {
        let access_token = self.jwt.issue_access_for(&Grant::from(principal));
        self.success(method, claims, Answer::Access(access_token), client, minted)
    }

    /// The refresh answer, counted and audited; with `minted`, the tokens also ride in the
    /// response's extensions (for the browser mode, which moves them into cookies).
    fn success(
        &self,
        method: &Method,
        claims: &Claims,
        answer: Answer,
        client: &AuditClient,
        minted: bool,
    ) -> Response<ResponseBody> {
        self.record(Some(claims), "success", "");
        audit_success(claims, client);
        let (mut response, tokens) = match answer {
            Answer::Access(access_token) => {
                let response = json_response(
                    method,
                    &AccessOnly {
                        access_token: &access_token,
                    },
                );
                (response, minted.then(|| Minted::access(access_token)))
            }
            Answer::Pair(pair) => {
                let response = json_bytes_response(method, pair.json_line());
                (response, minted.then(|| Minted::pair(pair)))
            }
        };
        if let Some(tokens) = tokens {
            response.extensions_mut().insert(tokens);
        }
        response
    }

    /// A refused refresh token: the 401, counted and audited.
    fn failure(
        &self,
        method: &Method,
        error: &AuthError,
        client: &AuditClient,
    ) -> Response<ResponseBody> {
        let reason = token_error_type(error);
        self.record(None, "failure", reason);
        tracing::info!(
            name: "refresh",
            target: AUDIT,
            outcome = "failure",
            client.address = %client,
            http.request.method = "GET",
            error.type = reason,
            "refresh"
        );
        unauthorized_response(method, error)
    }

    /// A refresh checked in the session store: one round trip.
    async fn with_session(
        &self,
        sessions: &Sessions,
        claims: &Claims,
        principal: &Principal,
    ) -> Result<Answer, Refused> {
        let sid = claims.session_id().unwrap_or_default();
        let subject = claims.subject();
        let jti = claims.jti().unwrap_or_default();
        let grant = Grant::from(principal).session(sid);
        let (verdict, answer) = match self.rotation {
            Some(grace) => {
                let issued = self.jwt.issue(&grant);
                let rotation = Rotation::new(&issued.refresh_jti, issued.refresh_expires_at, grace);
                let verdict = sessions.refresh(sid, subject, jti, Some(rotation)).await;
                (verdict, Answer::Pair(issued.tokens))
            }
            None => {
                let verdict = sessions.refresh(sid, subject, jti, None).await;
                (verdict, Answer::Access(self.jwt.issue_access_for(&grant)))
            }
        };
        match verdict {
            Ok(RefreshVerdict::Live | RefreshVerdict::Rotated) => Ok(answer),
            Ok(RefreshVerdict::Reused) => {
                tracing::warn!(
                    subject,
                    "a spent refresh token was presented again: session ended"
                );
                Err(Refused::Token(TokenError::Revoked.into()))
            }
            Ok(RefreshVerdict::Ended) => Err(Refused::Token(TokenError::Revoked.into())),
            Err(SessionError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "session store unavailable: refresh refused");
                Err(Refused::Unavailable(sessions.retry_after_secs()))
            }
            Err(error) => Err(Refused::Store(error)),
        }
    }

    /// The principal the new tokens are for: the owner's now ([`Self::owner_principal`]),
    /// restricted to its API key's roles when the tokens were exchanged for a key.
    async fn current_principal(&self, claims: &Claims) -> Result<Principal, Refused> {
        let Some(id) = apikey::key_of(claims) else {
            return self.owner_principal(claims).await;
        };
        let refused = || Refused::Token(AuthError::InvalidToken(TokenError::Revoked));
        let Some(ApiKeys(keys)) = &self.api_keys else {
            warn_keyless_refresh();
            return Err(refused());
        };
        let key = keys.find_by_id(&id).await.map_err(Refused::Lookup)?;
        let current = self.owner_principal(claims).await?;
        match apikey::restrict_at_refresh(claims, current, key.as_ref(), now_secs()) {
            Some(principal) => Ok(principal),
            None => {
                tracing::debug!("the API key of the refresh token is gone or expired: refused");
                Err(refused())
            }
        }
    }

    /// The subject's principal now: the store's with [`credentials`](Self::credentials), else
    /// the refresh token's own.
    async fn owner_principal(&self, claims: &Claims) -> Result<Principal, Refused> {
        let Some(Principals(source)) = &self.principals else {
            return Ok(claims.principal());
        };
        let refused = || Refused::Token(AuthError::InvalidToken(TokenError::Revoked));
        match source.lookup(claims.subject()).await {
            Ok(Lookup::Found(principal)) if principal.subject() == claims.subject() => {
                Ok(principal)
            }
            Ok(Lookup::Found(_)) => {
                tracing::error!(
                    "credential store returned a principal for another subject: refresh refused"
                );
                Err(refused())
            }
            Ok(Lookup::Refused) => {
                tracing::debug!("the credential store refuses the subject: refresh refused");
                Err(refused())
            }
            Ok(Lookup::NotSupported) => Ok(claims.principal()),
            Err(error) => Err(Refused::Lookup(error)),
        }
    }

    async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody> {
        let method = req.method().clone();
        let minted = req.extensions().get::<WantMinted>().is_some();
        let claims = self.verify(&req);
        let client = AuditClient(self.client_addr.resolve(req.headers(), req.extensions()));
        let claims = match claims {
            Ok(claims) => claims,
            Err(error) => return self.failure(&method, &error, &client),
        };
        let principal = match self.current_principal(&claims).await {
            Ok(principal) => principal,
            Err(refused) => return self.refused(&method, &claims, refused, &client),
        };
        let Some(sessions) = &self.sessions else {
            return self.stateless(&method, &claims, &principal, &client, minted);
        };
        match self.with_session(sessions, &claims, &principal).await {
            Ok(answer) => self.success(&method, &claims, answer, &client, minted),
            Err(refused) => self.refused(&method, &claims, refused, &client),
        }
    }

    /// The answer to a refresh refused after verification.
    fn refused(
        &self,
        method: &Method,
        claims: &Claims,
        refused: Refused,
        client: &AuditClient,
    ) -> Response<ResponseBody> {
        match refused {
            Refused::Token(error) => self.failure(method, &error, client),
            Refused::Unavailable(retry_after) => {
                self.record(Some(claims), "unavailable", "session_store_unavailable");
                tracing::info!(
                    name: "refresh",
                    target: AUDIT,
                    outcome = "unavailable",
                    client.address = %client,
                    http.request.method = "GET",
                    error.type = "session_store_unavailable",
                    retry_after,
                    "refresh"
                );
                unavailable_response(method, retry_after)
            }
            Refused::Store(error) => {
                tracing::error!(%error, "session store failed");
                self.store_error(method, claims, client)
            }
            Refused::Lookup(error) => {
                tracing::error!(%error, "credential store failed");
                self.store_error(method, claims, client)
            }
        }
    }

    fn store_error(
        &self,
        method: &Method,
        claims: &Claims,
        client: &AuditClient,
    ) -> Response<ResponseBody> {
        self.record(Some(claims), "error", "store_error");
        tracing::info!(
            name: "refresh",
            target: AUDIT,
            outcome = "error",
            client.address = %client,
            http.request.method = "GET",
            error.type = "store_error",
            "refresh"
        );
        error_response(
            method,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        )
    }
}

fn audit_success(claims: &Claims, client: &AuditClient) {
    tracing::info!(
        name: "refresh",
        target: AUDIT,
        outcome = "success",
        enduser.id = claims.subject(),
        client.address = %client,
        http.request.method = "GET",
        "refresh"
    );
}

/// A key's tokens refreshed without the key store: refused (see [`RefreshService::api_keys`]).
fn warn_keyless_refresh() {
    tracing::warn!(
        "refresh of an API key's tokens without an API-key store (RefreshService::api_keys): \
         refused"
    );
}

enum Answer {
    Access(String),
    Pair(TokenPair),
}

impl<B> Service<Request<B>> for RefreshService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method();
        if method != Method::GET {
            let response = wrong_method(method);
            return ResponseFuture::ready(response);
        }
        let span = tracing::debug_span!("refresh", subject = Empty, outcome = Empty);
        let started = Instant::now();
        // Nothing to ask a store: answered at once, without an allocation.
        if self.sessions.is_none() && self.principals.is_none() && self.api_keys.is_none() {
            let _entered = span.enter();
            let method = method.clone();
            let client = AuditClient(self.client_addr.resolve(req.headers(), req.extensions()));
            let response = match self.verify(&req) {
                // An API key's tokens need the key store (see `api_keys`): refused without.
                Ok(claims) if apikey::key_of(&claims).is_some() => {
                    warn_keyless_refresh();
                    self.failure(&method, &TokenError::Revoked.into(), &client)
                }
                Ok(claims) => {
                    let minted = req.extensions().get::<WantMinted>().is_some();
                    self.stateless(&method, &claims, &claims.principal(), &client, minted)
                }
                Err(error) => self.failure(&method, &error, &client),
            };
            crate::metrics::refresh_timed(response.status(), started);
            return ResponseFuture::ready(response);
        }
        // The request itself is not needed past verification: drop its body now.
        let (parts, _body) = req.into_parts();
        let req = Request::from_parts(parts, ());
        let this = self.clone();
        ResponseFuture::new(
            async move {
                let response = this.handle(req).await;
                crate::metrics::refresh_timed(response.status(), started);
                response
            }
            .instrument(span),
        )
    }
}
