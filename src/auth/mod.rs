//! [`JwtAuthLayer`]: guards any `Service<http::Request<B>>` with Bearer access tokens.
//!
//! request → [`Access`] of the path → extract the bearer → verify an *access* token → put the
//! [`Claims`] into the request extensions → inner service. A refused request never reaches the
//! inner service; it gets the [`OnRejection`] response (by default docs/protocol.md §2's 401,
//! whose `WWW-Authenticate` says why: [`AuthError::challenge`](crate::error::AuthError::challenge)).
//!
//! The [`PathPolicy`] is matched against the path the client sent: with the `axum` feature, the
//! `OriginalUri` that axum records before a nested router strips its prefix, otherwise the
//! request's own path. In axum, `Router::layer` runs the layer after routing, on the routes the
//! router has when it is called; to run it before routing, wrap the whole router as a service
//! (see the `axum` module, "Where the layer runs").
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
//! use tower_jwt_login::{Claims, JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().public("/ping")))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let who = req.extensions().get::<Claims>().map(|c| c.subject().to_owned());
//!         Ok::<_, Infallible>(Response::new(who.unwrap_or_default()))
//!     }));
//!
//! let token = jwt.issue_pair("admin").access_token;
//! let req = Request::get("/api/v3/process")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(String::new())
//!     .unwrap();
//! let res = service.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! let req = Request::get("/api/v3/process").body(String::new()).unwrap();
//! let res = service.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer");
//! # });
//! ```

mod future;
mod policy;
mod rejection;
mod require;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

pub use crate::response::{
    forbidden_response, grpc_permission_denied_response, grpc_unauthenticated_response,
    is_grpc_request,
};
pub use future::ResponseFuture;
pub use policy::{Access, PathPolicy, Requirement};
pub use rejection::{DefaultRejection, OnRejection};
pub use require::{Require, RequireLayer};

use crate::bearer::{bearer_bytes, token_refusal};
use crate::error::{AuthError, TokenError};
use crate::metrics::Metrics;
use crate::response::ResponseBody;
use crate::session::Revocations;
use crate::token::{Claims, ExtraClaims, Jwt, TokenUse};

/// Guards routes with Bearer access tokens. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct JwtAuthLayer<R = DefaultRejection> {
    jwt: Jwt,
    policy: Arc<PathPolicy>,
    rejection: R,
    metrics: Option<Metrics>,
    revocations: Option<Revocations>,
    typed: Option<TypedClaims>,
}

/// Deserializes a request's extra claims into the app's type and attaches them; `false` when
/// they do not fit.
type TypedClaims = fn(&Claims, &mut http::Extensions) -> bool;

fn attach_typed<T>(claims: &Claims, extensions: &mut http::Extensions) -> bool
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    match claims.extra::<T>() {
        Ok(value) => {
            extensions.insert(ExtraClaims(value));
            true
        }
        Err(_) => false,
    }
}

impl JwtAuthLayer {
    /// Every path protected, default rejection.
    pub fn new(jwt: Jwt) -> Self {
        JwtAuthLayer {
            jwt,
            policy: Arc::new(PathPolicy::new()),
            rejection: DefaultRejection,
            metrics: None,
            revocations: None,
            typed: None,
        }
    }
}

impl<R> JwtAuthLayer<R> {
    /// Sets the per-path policy.
    #[must_use]
    pub fn policy(mut self, policy: PathPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Replaces the rejection response.
    pub fn on_rejection<R2: OnRejection>(self, rejection: R2) -> JwtAuthLayer<R2> {
        JwtAuthLayer {
            jwt: self.jwt,
            policy: self.policy,
            rejection,
            metrics: self.metrics,
            revocations: self.revocations,
            typed: self.typed,
        }
    }

    /// Counts refused requests by reason into `metrics` ([`Metrics::record_rejection`]).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// With [sessions](crate::session): refuses (with the usual 401) an access token whose
    /// session was ended, or that was issued before its subject's "not before", as `revocations`
    /// says — the set a [`SessionStore`](crate::session::SessionStore) keeps current. The check
    /// is local: no I/O, no lock; with an empty set it costs one atomic load.
    #[must_use]
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Deserializes the extra claims of every accepted token into `T` once, at verification,
    /// and attaches them as [`ExtraClaims<T>`](ExtraClaims) next to the [`Claims`] (handlers
    /// read `T` without parsing again). A token whose extra claims are no `T` is refused like
    /// an invalid one (401, `invalid claims`): declare optional fields with `#[serde(default)]`
    /// when tokens without them (Core's) must pass. Tokens without extra claims are read as
    /// `{}`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use tower_jwt_login::auth::JwtAuthLayer;
    /// use tower_jwt_login::{ExtraClaims, JwtConfig, JwtKey, Principal};
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct App {
    ///     #[serde(default)]
    ///     tenant: String,
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let service = ServiceBuilder::new()
    ///     .layer(JwtAuthLayer::new(jwt.clone()).claims_type::<App>())
    ///     .service(service_fn(|req: Request<()>| async move {
    ///         let app = req.extensions().get::<ExtraClaims<App>>().unwrap();
    ///         Ok::<_, Infallible>(Response::new(app.tenant.clone()))
    ///     }));
    /// let alice = Principal::builder("alice").claim("tenant", "acme").build().unwrap();
    /// let token = jwt.issue_pair_for(&alice).access_token;
    /// let req = Request::get("/").header("authorization", format!("Bearer {token}")).body(()).unwrap();
    /// let body = service.oneshot(req).await.unwrap().into_body();
    /// assert!(matches!(body, http_body_util::Either::Left(ref tenant) if tenant == "acme"));
    /// # });
    /// ```
    #[must_use]
    pub fn claims_type<T>(mut self) -> Self
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.typed = Some(attach_typed::<T>);
        self
    }
}

impl<R: Clone> JwtAuthLayer<R> {
    /// The guard this layer puts in front of a service (shared with the assembly in
    /// [`crate::kit`]).
    pub(crate) fn guard(&self) -> Shared<R> {
        Shared {
            jwt: self.jwt.clone(),
            policy: Arc::clone(&self.policy),
            rejection: self.rejection.clone(),
            metrics: self.metrics.clone(),
            revocations: self.revocations.clone(),
            typed: self.typed,
        }
    }
}

impl<S, R: Clone> Layer<S> for JwtAuthLayer<R> {
    type Service = JwtAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            shared: Arc::new(self.guard()),
        }
    }
}

/// The service [`JwtAuthLayer`] produces.
///
/// Cloning it clones the inner service and one `Arc`: axum clones a layered route for every
/// request, so the settings sit behind a single reference count rather than one per field (each
/// a shared atomic that every core would increment and decrement per request).
#[derive(Debug)]
pub struct JwtAuth<S, R = DefaultRejection> {
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S, R> JwtAuth<S, R> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[derive(Debug)]
pub(crate) struct Shared<R> {
    jwt: Jwt,
    policy: Arc<PathPolicy>,
    rejection: R,
    metrics: Option<Metrics>,
    revocations: Option<Revocations>,
    typed: Option<TypedClaims>,
}

impl<S: Clone, R> Clone for JwtAuth<S, R> {
    fn clone(&self) -> Self {
        JwtAuth {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: OnRejection> Shared<R> {
    /// The whole guard of one request: the path's [`Access`], then verification, requirements
    /// and the claims attached; the request back to pass on, or the rejection response. A CORS
    /// preflight (`OPTIONS` with `Access-Control-Request-Method`) carries no token by design and
    /// always passes.
    // The refusal is as large as the request it replaces; boxing it would allocate per refusal.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check<B>(&self, req: Request<B>) -> Result<Request<B>, Response<ResponseBody>> {
        let access = self.policy.access(req.method(), policy_path(&req));
        self.check_as(req, access)
    }

    /// [`check`](Self::check) with the access decided by the caller.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check_as<B>(
        &self,
        mut req: Request<B>,
        access: Access,
    ) -> Result<Request<B>, Response<ResponseBody>> {
        match access {
            Access::Public => {}
            Access::Optional => {
                if let Err(error) = self.admit(&mut req) {
                    // Kept for handlers (and the axum `Claims` extractor) that want to know why.
                    req.extensions_mut().insert(error);
                }
            }
            Access::Protected if is_preflight(&req) => {}
            Access::Protected => {
                if let Err(error) = self.admit(&mut req) {
                    return Err(self.reject(req, error));
                }
            }
        }
        Ok(req)
    }

    /// The rejection response for `error` (logged at DEBUG, counted, the error attached).
    fn reject<B>(&self, req: Request<B>, error: AuthError) -> Response<ResponseBody> {
        let _span = tracing::debug_span!(
            "jwt_auth.reject",
            path = policy_path(&req),
            reason = %error,
            outcome = "rejected"
        )
        .entered();
        tracing::debug!("request refused");
        crate::metrics::rejected(self.metrics.as_ref(), &error);
        let (parts, _body) = req.into_parts();
        let mut response = self.rejection.on_rejection(&error, &parts);
        response.extensions_mut().insert(error);
        response
    }
}

/// A CORS preflight: `OPTIONS` with `Access-Control-Request-Method` (the Fetch standard's
/// definition). Browsers never attach credentials to one.
pub(crate) fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::OPTIONS
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl<R> Shared<R> {
    /// The verified access-token claims of `req`, or why there are none.
    fn authenticate<B>(&self, req: &Request<B>) -> Result<Claims, AuthError> {
        // The token's syntax (RFC 6750 `b64token`) is checked only when it fails verification:
        // one that verifies is three base64url segments, and the check would cost a pass over
        // every valid token's bytes (and another for UTF-8).
        let token = bearer_bytes(req.headers())?;
        let claims = self
            .jwt
            .verify_bytes(token, TokenUse::Access)
            .map_err(|error| token_refusal(token, error))?;
        if let Some(revocations) = &self.revocations
            && revocations.is_revoked(&claims)
        {
            return Err(AuthError::InvalidToken(TokenError::Revoked));
        }
        Ok(claims)
    }

    /// Verifies, checks the policy's requirements and attaches the claims (and the typed extra
    /// claims) to `req`; or why not.
    fn admit<B>(&self, req: &mut Request<B>) -> Result<(), AuthError> {
        let claims = self.authenticate(req)?;
        // Only policies with requirements pay for the check (and only matching paths parse).
        if self.policy.has_requirements()
            && !self.policy.permits(req.method(), policy_path(req), &claims)
        {
            return Err(AuthError::Forbidden);
        }
        if let Some(attach) = self.typed
            && !attach(&claims, req.extensions_mut())
        {
            return Err(AuthError::InvalidToken(TokenError::InvalidClaims));
        }
        req.extensions_mut().insert(claims);
        Ok(())
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: OnRejection,
{
    type Response = Response<Either<ResBody, ResponseBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let req = match self.shared.check(req) {
            Ok(req) => req,
            Err(response) => return ResponseFuture::rejected(response),
        };
        // The inner service is called here, synchronously, on the very instance `poll_ready`
        // was called on: no clone is needed (tower's clone-and-swap is for services that call
        // the inner one later, from their future). In an axum router this saves cloning the
        // boxed route on every request.
        ResponseFuture::authorized(self.inner.call(req))
    }
}

/// The path the policy is matched against: the one the client sent. Inside a router nested with
/// axum's `nest`, the request's URI has the prefix stripped, but axum records the original as
/// [`OriginalUri`](::axum::extract::OriginalUri) (feature `axum`); without it (no axum, or the
/// layer running before the router), the request's own path.
#[inline]
pub(crate) fn policy_path<B>(req: &Request<B>) -> &str {
    #[cfg(feature = "axum")]
    if let Some(original) = req.extensions().get::<::axum::extract::OriginalUri>() {
        return original.0.path();
    }
    req.uri().path()
}
