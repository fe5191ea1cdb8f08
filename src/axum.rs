//! axum integration (feature `axum`): the [`Claims`] extractor and [`RouterExt::login_routes`].
//!
//! - `Claims` as a handler argument: the claims [`JwtAuthLayer`](crate::auth::JwtAuthLayer)
//!   verified for this request; without them the handler is not called and the client gets
//!   docs/protocol.md §2's 401 with `WWW-Authenticate` ([`ClaimsRejection`]).
//! - `Option<Claims>`: for [optional](crate::auth::Access::Optional) paths such as Core's
//!   `GET /api`: `Some` with a valid access token, `None` otherwise; never a rejection.
//! - [`RouterExt::login_routes`] mounts the login and refresh services ([`LoginService`] and
//!   [`RefreshService`], bare or wrapped in any tower layers) under a prefix, the routes that
//!   [`PathPolicy::login_routes`](crate::auth::PathPolicy::login_routes) with the same prefix
//!   makes public.
//!
//! The extractor does not verify tokens itself: the layer is the one place that does.
//!
//! # Where the layer runs
//!
//! axum's `Router::layer` wraps each route (and the fallback) that the router has *at that
//! moment*: the layer runs after routing, in front of the chosen route.
//!
//! - On the **outermost** router, called last, that still guards every request, matched or not
//!   (unknown paths reach the fallback through the layer: 401 without a token, 404 with one, as
//!   Core answers). Routes added after `.layer(…)` are **not** guarded, and `route_layer`
//!   guards only matched routes (an unknown path answers 404 without a token).
//! - On a router **nested** with `nest("/api", inner)`, the layer sees the URI with `/api`
//!   stripped. The policy is still matched against the path the client sent, which axum records
//!   as `OriginalUri` (this feature turns on axum's `original-uri`): write the rules with full
//!   paths (`PathPolicy::new().login_routes("/api")`, not `"/"`), and a `.public("/ping")` rule
//!   inside the router nested at `/admin` does not open `/admin/ping`.
//!
//! To run the layer **before routing**, like Core, wrap the whole router as a service and serve
//! that (the `map_response` turns the layer's body back into axum's):
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, ServiceExt as _, extract::Request, response::IntoResponse, routing::get};
//! use tower::{ServiceBuilder, ServiceExt as _};
//! use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
//! use tower_jwt_login::{Claims, JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
//!     .build()
//!     .unwrap();
//! let router = Router::new().route("/me", get(|c: Claims| async move { c.subject().to_owned() }));
//! let app = ServiceBuilder::new()
//!     .map_response(IntoResponse::into_response)
//!     .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().login_routes("/api")))
//!     .service(router);
//!
//! // Served like a router: `axum::serve(listener, make_service)`.
//! let make_service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(
//!     app.clone(),
//! );
//! # let _ = make_service;
//! let res = app.oneshot(Request::get("/nowhere").body(axum::body::Body::empty()).unwrap()).await;
//! assert_eq!(res.unwrap().status(), 401); // refused before routing found no route
//! # });
//! ```
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower::ServiceExt;
//! use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
//! use tower_jwt_login::axum::RouterExt;
//! use tower_jwt_login::login::{LoginService, RefreshService};
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{Claims, JwtConfig, JwtKey};
//!
//! async fn whoami(claims: Claims) -> String {
//!     format!("hello {}", claims.subject())
//! }
//!
//! async fn about(claims: Option<Claims>) -> &'static str {
//!     if claims.is_some() { "full" } else { "minimal" }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
//!     .build()
//!     .unwrap();
//! let store = PlaintextUser::new("admin", "datarhei");
//! let app: Router = Router::new()
//!     .route("/api", get(about))
//!     .route("/api/whoami", get(whoami))
//!     .login_routes("/api", LoginService::new(jwt.clone(), store), RefreshService::new(jwt.clone()))
//!     .layer(JwtAuthLayer::new(jwt.clone()).policy(
//!         PathPolicy::new().login_routes("/api").optional_for(http::Method::GET, "/api"),
//!     ));
//!
//! let token = jwt.issue_pair("admin").access_token;
//! let req = http::Request::get("/api/whoami")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let res = app.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//!
//! let req = http::Request::get("/api").body(axum::body::Body::empty()).unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200); // "minimal"
//! # });
//! ```

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use ::axum::Router;
use ::axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, Method, header};
use tower_service::Service;

use crate::auth::{grpc_unauthenticated_response, is_grpc_request};
use crate::error::AuthError;
#[cfg(doc)]
use crate::login::{LoginService, RefreshService};
use crate::response::{
    forbidden_response, grpc_permission_denied_response, unauthorized_response,
    unjudged_token_response,
};
use crate::{Claims, ExtraClaims};

/// Extracts the access-token claims the [`JwtAuthLayer`](crate::auth::JwtAuthLayer) attached.
/// Refuses the request with [`ClaimsRejection`] (a §2 401) when there are none.
impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(claims.clone());
        }
        Err(ClaimsRejection::new(parts))
    }
}

/// `Option<Claims>`: `Some` when the layer attached claims (a valid access token), `None`
/// otherwise. Never refuses the request.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}

/// Why the [`Claims`] extractor refused a request. As a response: docs/protocol.md §2's
/// `401 Missing or invalid JWT token` with the `WWW-Authenticate` challenge of
/// [`AuthError::challenge`] (`Bearer` without a token, `Bearer error="invalid_token",
/// error_description="…"` with the layer's reason; a token the layer never looked at gets
/// `error="invalid_token"` alone) — or, for a gRPC request, the gRPC refusal
/// ([`grpc_unauthenticated_response`]). The [`AuthError`], when there is one, goes into the
/// response extensions, as with the layer's own rejections.
///
/// Used on a request the layer did not authenticate (no layer in front of the handler, or a
/// public path), the extractor logs a WARN once per process.
#[derive(Debug, Clone)]
pub struct ClaimsRejection {
    error: Option<AuthError>,
    token_presented: bool,
    method: Method,
    grpc_headers: Option<HeaderMap>,
}

impl ClaimsRejection {
    fn new(parts: &Parts) -> Self {
        // On optional paths the layer leaves the reason in the extensions.
        let error = parts.extensions.get::<AuthError>().copied();
        if error.is_none() {
            warn_unauthenticated_once(parts.uri.path());
        }
        let grpc_headers = is_grpc_request(&parts.headers).then(|| {
            let mut headers = HeaderMap::new();
            if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, ct.clone());
            }
            headers
        });
        ClaimsRejection {
            token_presented: error.map_or_else(
                || parts.headers.contains_key(header::AUTHORIZATION),
                |e| e.token_presented(),
            ),
            error,
            method: parts.method.clone(),
            grpc_headers,
        }
    }

    /// Why the layer refused the token, when the layer looked at this request (optional paths);
    /// `None` when it did not (no layer, or a public path).
    pub fn auth_error(&self) -> Option<&AuthError> {
        self.error.as_ref()
    }
}

impl fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(error) => write!(f, "no verified claims: {error}"),
            None => f.write_str("no verified claims: request not authenticated by JwtAuthLayer"),
        }
    }
}

impl std::error::Error for ClaimsRejection {}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        // Without the layer's verdict: no token is a missing token; a token nobody looked at
        // gets `invalid_token` with no description (there is no reason to give).
        let error = match self.error {
            Some(error) => Some(error),
            None if !self.token_presented => Some(AuthError::MissingToken),
            None => None,
        };
        let mut response = match (&self.grpc_headers, &error) {
            (Some(headers), _) => grpc_unauthenticated_response(headers),
            (None, Some(error)) => unauthorized_response(&self.method, error),
            (None, None) => unjudged_token_response(&self.method),
        }
        .into_response();
        if let Some(error) = error {
            response.extensions_mut().insert(error);
        }
        response
    }
}

/// Logs once per process, at WARN, that the `Claims` extractor ran on a request that
/// `JwtAuthLayer` did not authenticate; every later time at DEBUG. A missing layer otherwise
/// shows only as 401s for every request.
fn warn_unauthenticated_once(path: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            path,
            "the Claims extractor found no verdict of JwtAuthLayer on this request: the layer \
             is missing in front of this handler (or the path is public in its PathPolicy); \
             answering 401. Logged once."
        );
    } else {
        tracing::debug!(
            path,
            "Claims extractor on a request the JwtAuthLayer did not authenticate \
             (no layer, or a public path)"
        );
    }
}

/// Mounting the login routes on an [`axum::Router`].
pub trait RouterExt: Sized {
    /// Mounts `login` at `{prefix}/login` and `refresh` at `{prefix}/login/refresh` (Core's
    /// paths under `/api`). `prefix` starts with `/` (`"/api"`), or is empty for `/login`;
    /// a trailing `/` is ignored. Pair it with
    /// [`PathPolicy::login_routes`](crate::auth::PathPolicy::login_routes) with the same prefix
    /// (the full prefix as the client sends it, also inside a nested router), so that `POST`
    /// login and `GET` refresh pass the layer and every other method on them stays protected.
    ///
    /// `login` and `refresh` are any services axum can route to: [`LoginService`] and
    /// [`RefreshService`] as they are, or wrapped in tower layers (a timeout, a concurrency
    /// limit, a `map_response`, …).
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::Router;
    /// use tower::ServiceBuilder;
    /// use tower_jwt_login::axum::RouterExt;
    /// use tower_jwt_login::login::{LoginService, RefreshService};
    /// use tower_jwt_login::store::PlaintextUser;
    /// use tower_jwt_login::{JwtConfig, JwtKey};
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let login = ServiceBuilder::new()
    ///     .map_response(|mut res: http::Response<_>| {
    ///         res.headers_mut().insert("cache-control", http::HeaderValue::from_static("no-store"));
    ///         res
    ///     })
    ///     .service(LoginService::new(jwt.clone(), PlaintextUser::new("admin", "datarhei")));
    /// let app: Router = Router::new().login_routes("/api", login, RefreshService::new(jwt));
    /// # let _ = app;
    /// ```
    #[must_use]
    fn login_routes<L, R>(self, prefix: &str, login: L, refresh: R) -> Self
    where
        L: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        L::Response: IntoResponse + 'static,
        L::Future: Send + 'static,
        R: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        R::Response: IntoResponse + 'static,
        R::Future: Send + 'static;
}

impl<S> RouterExt for Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn login_routes<L, R>(self, prefix: &str, login: L, refresh: R) -> Self
    where
        L: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        L::Response: IntoResponse + 'static,
        L::Future: Send + 'static,
        R: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        R::Response: IntoResponse + 'static,
        R::Future: Send + 'static,
    {
        let prefix = prefix.trim_end_matches('/');
        self.route_service(&format!("{prefix}/login"), login)
            .route_service(&format!("{prefix}/login/refresh"), refresh)
    }
}

/// Extracts the app's own claims type `T` from the token's extra claims: the
/// [`ExtraClaims<T>`](crate::ExtraClaims) the layer attached with
/// [`JwtAuthLayer::claims_type`](crate::auth::JwtAuthLayer::claims_type) (parsed once, at
/// verification), else parsed from the [`Claims`] now. No claims → [`ClaimsRejection`] (401);
/// extra claims that are no `T` → 403 `Insufficient permissions` (the token is valid, it just
/// does not carry what this handler needs).
///
/// ```
/// use axum::{Router, routing::get};
/// use tower::ServiceExt;
/// use tower_jwt_login::auth::JwtAuthLayer;
/// use tower_jwt_login::{ExtraClaims, JwtConfig, JwtKey, Principal};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct Tenant { tenant: String }
///
/// async fn tenant(ExtraClaims(t): ExtraClaims<Tenant>) -> String { t.tenant }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
/// let app: Router = Router::new().route("/tenant", get(tenant)).layer(JwtAuthLayer::new(jwt.clone()));
/// let p = Principal::builder("alice").claim("tenant", "acme").build().unwrap();
/// let req = |token: String| http::Request::get("/tenant")
///     .header("authorization", format!("Bearer {token}")).body(axum::body::Body::empty()).unwrap();
/// let res = app.clone().oneshot(req(jwt.issue_pair_for(&p).access_token)).await.unwrap();
/// assert_eq!(res.status(), 200);
/// let res = app.oneshot(req(jwt.issue_pair("bob").access_token)).await.unwrap();
/// assert_eq!(res.status(), 403); // no tenant claim
/// # });
/// ```
impl<S, T> FromRequestParts<S> for ExtraClaims<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(typed) = parts.extensions.get::<ExtraClaims<T>>() {
            return Ok(typed.clone());
        }
        let Some(claims) = parts.extensions.get::<Claims>() else {
            return Err(ClaimsRejection::new(parts).into_response());
        };
        claims
            .extra::<T>()
            .map(ExtraClaims)
            .map_err(|_| forbidden(parts))
    }
}

/// The 403 of a request whose claims fall short (gRPC: `grpc-status: 7`).
fn forbidden(parts: &Parts) -> Response {
    let mut response = if is_grpc_request(&parts.headers) {
        grpc_permission_denied_response(&parts.headers)
    } else {
        forbidden_response(&parts.method)
    }
    .into_response();
    response.extensions_mut().insert(AuthError::Forbidden);
    response
}

/// A guard for one handler: the request's claims must carry the role `R::ROLE` (in their
/// `roles` extra claim), else 403 `Insufficient permissions` (no claims: 401). Name a role
/// with a type implementing [`RoleName`]; for anything but a role, use
/// [`RequireLayer`](crate::auth::RequireLayer) with `route_layer`.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_jwt_login::axum::{RequireRole, RoleName};
///
/// struct Admin;
/// impl RoleName for Admin {
///     const ROLE: &'static str = "admin";
/// }
///
/// async fn purge(_: RequireRole<Admin>) -> &'static str { "purged" }
/// let app: Router = Router::new().route("/purge", get(purge));
/// # let _ = app;
/// ```
pub struct RequireRole<R: RoleName>(pub Claims, std::marker::PhantomData<R>);

impl<R: RoleName> RequireRole<R> {
    /// The claims that carried the role.
    pub fn claims(&self) -> &Claims {
        &self.0
    }
}

impl<R: RoleName> fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequireRole")
            .field(&R::ROLE)
            .field(&self.0)
            .finish()
    }
}

/// Names the role a [`RequireRole`] checks.
pub trait RoleName: Send + Sync + 'static {
    /// The role (an entry of the `roles` extra claim).
    const ROLE: &'static str;
}

impl<S: Send + Sync, R: RoleName> FromRequestParts<S> for RequireRole<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(claims) = parts.extensions.get::<Claims>() else {
            return Err(ClaimsRejection::new(parts).into_response());
        };
        if claims.has_role(R::ROLE) {
            Ok(RequireRole(claims.clone(), std::marker::PhantomData))
        } else {
            Err(forbidden(parts))
        }
    }
}

/// Lets a handler read the reason next to the claims: `Option<AuthError>` is `Some` when the
/// layer looked at an optional path's token and refused it.
impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthError {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthError>().copied())
    }
}
