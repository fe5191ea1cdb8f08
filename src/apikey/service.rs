//! [`ApiKeyService`]: the management routes of a user's own API keys.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use tower_service::Service;

use super::{API_KEY_CLAIM, ApiKey, ApiKeyInfo, ApiKeyStore};
use crate::audit::AUDIT;
use crate::error::AuthError;
use crate::error::BoxError;
use crate::json::parse_object;
use crate::response::{
    ResponseBody, ResponseFuture, error_response, json_response, unauthorized_response,
    wrong_method,
};
use crate::session::Sessions;
use crate::token::Claims;

/// The default path of the collection: `{path}` lists and creates, `{path}/{id}` revokes.
pub const DEFAULT_KEYS_PATH: &str = "/api/v3/auth/keys";

/// The `details` of a create request that is not a JSON object of the expected members.
const BAD_REQUEST_DETAIL: &str = "Invalid API key request: expected a JSON object with a name \
     (1 to 100 characters) and optionally expires_in (seconds) and roles (an array of strings)";

/// The routes of a user's own API keys, as one tower service behind
/// [`JwtAuthLayer`](crate::auth::JwtAuthLayer) (the layer puts the verified [`Claims`] into the
/// request extensions; without them every request is a 401 in the §2 shape):
///
/// - `POST {path}` with `{"name": "…", "expires_in": seconds?, "roles": ["…"]?}` (roles: a
///   subset of the caller's; default all of them, as they are at each exchange) → `201`
///   `{"id","name","key","created_at","expires_at"}` (Unix seconds; `expires_at` null for a
///   key that does not expire) with `Cache-Control: no-store`: the only time the key is shown;
/// - `GET {path}` → `200`, the caller's keys, oldest first, without the key:
///   `[{"id","name","roles","created_at","expires_at","last_used_at"}]`;
/// - `DELETE {path}/{id}` → `204`; `404` for a key that is not the caller's.
///
/// `{path}` is [`DEFAULT_KEYS_PATH`] (`/api/v3/auth/keys`) unless set with [`path`](Self::path).
/// Tokens that were themselves exchanged for an API key get `403`: a key cannot mint keys.
///
/// ```
/// use http::{Request, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use bytes::Bytes;
/// use tower::ServiceExt;
/// use tower_jwt_login::apikey::{ApiKeyService, MemoryApiKeyStore};
/// use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
/// let keys = ApiKeyService::new(MemoryApiKeyStore::new());
/// // What the layer does: verify the access token, put its claims into the extensions.
/// let claims = jwt.verify(&jwt.issue_pair("alice").access_token, TokenUse::Access).unwrap();
/// let mut req = Request::post("/api/v3/auth/keys")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"name":"ci"}"#)))
///     .unwrap();
/// req.extensions_mut().insert(claims);
/// let res = keys.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::CREATED);
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// let created: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert!(created["key"].as_str().unwrap().starts_with("tjl_"));
/// # });
/// ```
pub struct ApiKeyService<K> {
    store: Arc<K>,
    path: Arc<str>,
    body_limit: usize,
    max_keys: usize,
    max_lifetime: u64,
    sessions: Option<Sessions>,
}

impl<K> Clone for ApiKeyService<K> {
    fn clone(&self) -> Self {
        ApiKeyService {
            store: Arc::clone(&self.store),
            path: Arc::clone(&self.path),
            body_limit: self.body_limit,
            max_keys: self.max_keys,
            max_lifetime: self.max_lifetime,
            sessions: self.sessions.clone(),
        }
    }
}

impl<K> fmt::Debug for ApiKeyService<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyService")
            .field("path", &self.path)
            .field("max_keys", &self.max_keys)
            .field("max_lifetime", &self.max_lifetime)
            .field("sessions", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Created<'a> {
    id: &'a str,
    name: &'a str,
    key: &'a str,
    created_at: u64,
    expires_at: Option<u64>,
}

/// Ten years, the longest lifetime by default.
const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;

impl<K: ApiKeyStore> ApiKeyService<K> {
    /// The routes over `store` at [`DEFAULT_KEYS_PATH`], 100 keys per user at most, lifetimes up to
    /// ten years.
    pub fn new(store: K) -> Self {
        ApiKeyService {
            store: Arc::new(store),
            path: Arc::from(DEFAULT_KEYS_PATH),
            body_limit: 16 * 1024,
            max_keys: 100,
            max_lifetime: TEN_YEARS,
            sessions: None,
        }
    }

    /// Revoking a key also ends the sessions started with it
    /// ([`Sessions::end_by_key`]): their access tokens are refused by the layer at once, not
    /// only at their next refresh. When the session store fails (or cannot list sessions) after
    /// the key was deleted, the key stays revoked and the answer is still `204`: the refresh of
    /// its tokens is refused anyway (the refresh checks the key,
    /// [`RefreshService::api_keys`](crate::login::RefreshService::api_keys)), so its access
    /// tokens end within one access-token lifetime; the failure is logged.
    #[must_use]
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// The collection's path (the full path of the request, e.g. `/api/v3/auth/keys`).
    #[must_use]
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        let path = path.as_ref().trim_end_matches('/');
        self.path = Arc::from(path);
        self
    }

    /// At most `n` keys per user (default 100): one more is a `409 Conflict`.
    #[must_use]
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// The largest `expires_in` accepted, in seconds (default ten years).
    #[must_use]
    pub fn max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime = seconds.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &K {
        &self.store
    }

    async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = req.method().clone();
        let Some(rest) = request_path(&req)
            .strip_prefix(&*self.path)
            .map(str::to_owned)
        else {
            return error_response(&method, StatusCode::NOT_FOUND, "Not Found");
        };
        let Some(claims) = req.extensions().get::<Claims>().cloned() else {
            return unauthorized_response(&method, &AuthError::MissingToken);
        };
        if claims.extra_value(API_KEY_CLAIM).is_some() {
            return error_response(
                &method,
                StatusCode::FORBIDDEN,
                "API key tokens cannot manage API keys",
            );
        }
        let result = match (rest.as_str(), &method) {
            ("", &Method::POST) => self.create(&claims, req).await,
            ("", &Method::GET | &Method::HEAD) => self.list(&method, &claims).await,
            ("", _) => Ok(wrong_method(&method)),
            (item, &Method::DELETE) => match item.strip_prefix('/') {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    self.revoke(&method, &claims, id).await
                }
                _ => Ok(error_response(&method, StatusCode::NOT_FOUND, "Not Found")),
            },
            (item, _) if item.starts_with('/') => Ok(wrong_method(&method)),
            _ => Ok(error_response(&method, StatusCode::NOT_FOUND, "Not Found")),
        };
        result.unwrap_or_else(|error| {
            tracing::error!(error = %error, "API key store failed");
            error_response(
                &method,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            )
        })
    }

    async fn create<B>(
        &self,
        claims: &Claims,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, K::Error>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = Method::POST;
        let bad = |detail: &str| Ok(error_response(&method, StatusCode::BAD_REQUEST, detail));
        if !is_json(req.headers()) {
            return Ok(error_response(
                &method,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected Content-Type: application/json",
            ));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit as u64) {
            return Ok(too_large(&method));
        }
        let bytes: Bytes = match Limited::new(req.into_body(), self.body_limit)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Ok(too_large(&method));
            }
            Err(_) => return bad(BAD_REQUEST_DETAIL),
        };
        let Some(body) = parse_object::<CreateBody>(&bytes) else {
            return bad(BAD_REQUEST_DETAIL);
        };
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return bad(BAD_REQUEST_DETAIL);
        }
        if body
            .expires_in
            .is_some_and(|s| s == 0 || s > self.max_lifetime)
        {
            return bad(&format!(
                "Invalid API key request: expires_in must be between 1 and {} seconds",
                self.max_lifetime
            ));
        }
        let roles = body.roles.map(|mut roles| {
            roles.sort();
            roles.dedup();
            roles
        });
        if let Some(roles) = &roles
            && roles.iter().any(|r| !claims.has_role(r))
        {
            return bad("Invalid API key request: roles must be a subset of your own roles");
        }
        let subject = claims.subject();
        if self.store.list(subject).await?.len() >= self.max_keys {
            return Ok(error_response(
                &method,
                StatusCode::CONFLICT,
                "API key limit reached: revoke a key first",
            ));
        }
        let key = ApiKey::generate();
        let info = ApiKeyInfo::fresh(subject, name, roles, body.expires_in);
        self.store.create(&info, &key.hash()).await?;
        tracing::info!(
            name: "api_key",
            target: AUDIT,
            action = "create",
            outcome = "success",
            enduser.id = subject,
            api_key.id = info.id.as_str(),
            http.request.method = "POST",
            "api_key"
        );
        let mut res = json_response(
            &method,
            &Created {
                id: &info.id,
                name: &info.name,
                key: key.expose_secret(),
                created_at: info.created_at,
                expires_at: info.expires_at,
            },
        );
        *res.status_mut() = StatusCode::CREATED;
        no_store(&mut res);
        Ok(res)
    }

    async fn list(
        &self,
        method: &Method,
        claims: &Claims,
    ) -> Result<Response<ResponseBody>, K::Error> {
        let keys = self.store.list(claims.subject()).await?;
        let mut res = json_response(method, &keys);
        no_store(&mut res);
        Ok(res)
    }

    async fn revoke(
        &self,
        method: &Method,
        claims: &Claims,
        id: &str,
    ) -> Result<Response<ResponseBody>, K::Error> {
        if !self.store.revoke(claims.subject(), id).await? {
            return Ok(error_response(
                method,
                StatusCode::NOT_FOUND,
                "API key not found",
            ));
        }
        let mut ended = 0;
        if let Some(sessions) = &self.sessions {
            // The key is gone: its tokens cannot be refreshed any more. Ending its sessions
            // also refuses their access tokens now; a failure leaves them to run out.
            match sessions.end_by_key(claims.subject(), id).await {
                Ok(n) => ended = n,
                Err(error) => tracing::warn!(
                    error = %error,
                    key = id,
                    "API key revoked, but its sessions could not be ended: their access \
                     tokens stay valid until they expire (their refresh is refused)"
                ),
            }
        }
        tracing::info!(
            name: "api_key",
            target: AUDIT,
            action = "revoke",
            outcome = "success",
            enduser.id = claims.subject(),
            api_key.id = id,
            http.request.method = "DELETE",
            sessions_ended = ended,
            "api_key"
        );
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        Ok(res)
    }
}

/// The path the client sent: axum's `OriginalUri` inside nested routers, else the URI's.
fn request_path<B>(req: &Request<B>) -> &str {
    #[cfg(feature = "axum")]
    if let Some(original) = req.extensions().get::<::axum::extract::OriginalUri>() {
        return original.0.path();
    }
    req.uri().path()
}

fn too_large(method: &Method) -> Response<ResponseBody> {
    error_response(
        method,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large",
    )
}

fn no_store(res: &mut Response<ResponseBody>) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `Content-Type` starts with `application/json` (parameters allowed).
fn is_json(headers: &http::HeaderMap) -> bool {
    const JSON: &[u8] = b"application/json";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..JSON.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(JSON))
    })
}

impl<K, B> Service<Request<B>> for ApiKeyService<K>
where
    K: ApiKeyStore,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        ResponseFuture::new(async move { this.handle(req).await })
    }
}
