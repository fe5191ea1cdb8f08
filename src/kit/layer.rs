//! [`LoginLayer`] and the service it makes, [`LoginKitService`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use http_body::Body;
use tower_http::cors::{Cors, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

use super::future::{CoreFuture, ResponseFuture};
use super::routes::{Endpoint, Own, Routes, own_request};
use crate::auth::{Access, DefaultRejection, Shared as Guard, is_preflight, policy_path};
use crate::discovery::AboutService;
use crate::error::BoxError;
use crate::jwks::JwksService;
use crate::response::wrong_method;
use crate::session::Sessions;
use crate::token::Jwt;

use super::body::KitBody;
use crate::browser::{
    self as cookies, ACCESS_COOKIE, Browser, CSRF_COOKIE, CSRF_DETAIL, CookiePaths, REFRESH_COOKIE,
};
use crate::login::{Minted, WantMinted};
use crate::response::{ResponseBody, error_response, json_bytes_response};
use crate::token::TokenPair;
use http::{HeaderValue, StatusCode, header::AUTHORIZATION};

/// Everything the assembled service shares between its clones.
pub(crate) struct KitShared {
    pub(crate) jwt: Jwt,
    pub(crate) guard: Guard<DefaultRejection>,
    pub(crate) routes: Routes,
    pub(crate) login: Box<dyn Endpoint>,
    pub(crate) refresh: Box<dyn Endpoint>,
    pub(crate) logout: Option<(Box<dyn Endpoint>, Box<dyn Endpoint>)>,
    pub(crate) about: Option<AboutService>,
    pub(crate) totp: Option<Box<dyn Endpoint>>,
    /// The user's own sessions (with sessions).
    pub(crate) own_sessions: Option<Box<dyn Endpoint>>,
    pub(crate) keys: Option<Box<dyn Endpoint>>,
    pub(crate) password: Option<Box<dyn Endpoint>>,
    pub(crate) jwks: Option<JwksService>,
    pub(crate) sessions: Option<Sessions>,
    pub(crate) browser: Option<Arc<BrowserShared>>,
}

/// The browser mode of an assembly: its settings, where the refresh cookie goes, how long the
/// cookies live.
pub(crate) struct BrowserShared {
    pub(crate) browser: Browser,
    pub(crate) paths: CookiePaths,
    pub(crate) access_ttl: u64,
    pub(crate) refresh_ttl: u64,
    pub(crate) metrics: Option<crate::metrics::Metrics>,
}

impl BrowserShared {
    /// The 403 of a refused CSRF check, logged and counted.
    fn refuse(&self, method: &Method) -> Response<ResponseBody> {
        tracing::debug!("CSRF check failed: request refused");
        crate::metrics::csrf_refused(self.metrics.as_ref());
        error_response(method, StatusCode::FORBIDDEN, CSRF_DETAIL)
    }

    /// Moves the tokens a login or refresh minted into cookies, or clears the cookies after a
    /// logout or a refused refresh.
    fn finish(
        &self,
        own: Own,
        method: &Method,
        by_cookie: bool,
        csrf: Option<String>,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        match own {
            Own::Login | Own::Refresh => {
                let Some(minted) = response.extensions_mut().remove::<Minted>() else {
                    if own == Own::Refresh
                        && by_cookie
                        && response.status() == StatusCode::UNAUTHORIZED
                    {
                        cookies::clear(
                            response.headers_mut(),
                            &self.paths,
                            self.browser.has_access_cookie(),
                        );
                    }
                    return response;
                };
                let mut answer = json_bytes_response(
                    method,
                    TokenPair::access_json_line(
                        &minted.access,
                        minted.device_trust_token.as_deref(),
                    ),
                );
                let headers = answer.headers_mut();
                if let Some(refresh) = &minted.refresh {
                    cookies::set_refresh(headers, &self.paths, refresh, self.refresh_ttl);
                }
                if self.browser.has_access_cookie() {
                    cookies::set_access(headers, &minted.access, self.access_ttl);
                }
                let csrf = csrf.unwrap_or_else(cookies::new_csrf_token);
                cookies::set_csrf(headers, &csrf, self.refresh_ttl);
                answer
            }
            Own::Logout | Own::LogoutAll => {
                let status = response.status();
                if status == StatusCode::NO_CONTENT
                    || (by_cookie && status == StatusCode::UNAUTHORIZED)
                {
                    cookies::clear(
                        response.headers_mut(),
                        &self.paths,
                        self.browser.has_access_cookie(),
                    );
                }
                response
            }
            Own::About | Own::Jwks | Own::Totp | Own::Sessions | Own::Keys | Own::Password => {
                response
            }
        }
    }
}

/// The one layer of a [`LoginKit`](super::LoginKit): wrap the whole app with it. Cheap to clone.
///
/// It serves the crate's own routes itself and guards every other request with the policy
/// before the app sees it. Its answers do not depend on where it sits: around a whole axum
/// `Router` (recommended, [`LoginLayer::wrap`] with the `axum` feature), with `Router::layer`,
/// inside a nested router (paths are matched as the client sent them), around a tonic server
/// (`Server::builder().layer(…)`) or a plain hyper service.
#[derive(Clone)]
pub struct LoginLayer {
    pub(crate) shared: Arc<KitShared>,
    pub(crate) cors: Option<CorsLayer>,
}

impl LoginLayer {
    /// The key ring the assembly mints and verifies with.
    pub fn jwt(&self) -> &Jwt {
        &self.shared.jwt
    }

    /// The sessions, when they are on: the app's hook for "log this user out everywhere"
    /// ([`Sessions::end_all`]) after a password change or when it disables a user.
    pub fn sessions(&self) -> Option<&Sessions> {
        self.shared.sessions.as_ref()
    }
}

impl std::fmt::Debug for LoginLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLayer")
            .field("routes", &self.shared.routes)
            .field("sessions", &self.shared.sessions.is_some())
            .field("cors", &self.cors.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Layer<S> for LoginLayer {
    type Service = LoginKitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let misplaced = after_routing::<S>();
        if misplaced {
            tracing::error!(
                "LoginLayer was added with axum's Router::layer, which runs it after routing, \
                 where the login routes cannot be served: every request is answered 500. Wrap \
                 the whole app instead: `login.wrap(router)` (or \
                 `Router::new().fallback_service(login.layer(router))`)"
            );
        }
        let core = KitCore {
            inner,
            shared: Arc::clone(&self.shared),
            misplaced,
        };
        LoginKitService {
            stack: match &self.cors {
                Some(cors) => Stack::Cors(cors.layer(core)),
                None => Stack::Plain(core),
            },
        }
    }
}

/// The service a [`LoginLayer`] makes around the app `S`.
#[derive(Clone)]
pub struct LoginKitService<S> {
    stack: Stack<S>,
}

// Not boxed: the service is cloned for every request (axum, hyper), and a box would allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Stack<S> {
    Plain(KitCore<S>),
    Cors(Cors<KitCore<S>>),
}

impl<S> LoginKitService<S> {
    /// The wrapped app.
    pub fn get_ref(&self) -> &S {
        match &self.stack {
            Stack::Plain(core) => &core.inner,
            Stack::Cors(cors) => &cors.get_ref().inner,
        }
    }

    /// The wrapped app, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        match &mut self.stack {
            Stack::Plain(core) => &mut core.inner,
            Stack::Cors(cors) => &mut cors.get_mut().inner,
        }
    }

    /// The wrapped app, unwrapped.
    pub fn into_inner(self) -> S {
        match self.stack {
            Stack::Plain(core) => core.inner,
            Stack::Cors(cors) => cors.into_inner().inner,
        }
    }
}

impl<S> std::fmt::Debug for LoginKitService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginKitService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LoginKitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<KitBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.stack {
            Stack::Plain(core) => core.poll_ready(cx),
            Stack::Cors(cors) => cors.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match &mut self.stack {
            Stack::Plain(core) => ResponseFuture::plain(core.call(req)),
            Stack::Cors(cors) => {
                let preflight = is_preflight(&req);
                ResponseFuture::cors(cors.call(req), preflight)
            }
        }
    }
}

/// The assembly without CORS: the crate's routes, then the guard, then the app.
#[derive(Clone)]
pub(crate) struct KitCore<S> {
    inner: S,
    shared: Arc<KitShared>,
    /// Added after routing (axum's `Router::layer`): refuses every request, loudly.
    misplaced: bool,
}

/// Whether the layer wraps one route of an axum router rather than the app: axum's
/// `Router::layer` and `MethodRouter::layer` hand each route to the layer as a `Route`.
#[cfg_attr(not(feature = "axum"), allow(clippy::extra_unused_type_parameters))]
fn after_routing<S: 'static>() -> bool {
    #[cfg(feature = "axum")]
    {
        use std::any::TypeId;
        TypeId::of::<S>() == TypeId::of::<::axum::routing::Route>()
    }
    #[cfg(not(feature = "axum"))]
    {
        false
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for KitCore<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<KitBody<ResBody>>;
    type Error = S::Error;
    type Future = CoreFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        if self.misplaced {
            return CoreFuture::ready(error_response(
                req.method(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ));
        }
        let own = shared.routes.find(policy_path(&req));
        if let Some(browser) = &shared.browser
            && browser.browser.has_access_cookie()
            && own.is_none_or(Own::takes_access_token)
            && let Err(response) = access_from_cookie(browser, &mut req)
        {
            return CoreFuture::ready(response);
        }
        let req = match own {
            // A preflight is the CORS layer's (outside this one) or the app's business.
            Some(own) if !is_preflight(&req) => return self.own(own, req),
            _ => match shared.guard.check(req) {
                Ok(req) => req,
                Err(response) => return CoreFuture::ready(response),
            },
        };
        // The app is called here, synchronously, on the very instance `poll_ready` was called
        // on (no clone needed; tower's clone-and-swap is for calls made later, from a future).
        CoreFuture::app(self.inner.call(req))
    }
}

impl<S> KitCore<S> {
    /// One of the crate's own routes: its service for its method; any other method is treated
    /// as a protected request (401 without a valid access token, like Core) and then `404`.
    fn own<F, ReqBody>(&self, own: Own, req: Request<ReqBody>) -> CoreFuture<F>
    where
        ReqBody: Body + Send + 'static,
        ReqBody::Error: Into<BoxError>,
    {
        let shared = &*self.shared;
        let method = req.method();
        let get = method == Method::GET || method == Method::HEAD;
        let endpoint: Option<&dyn Endpoint> = match own {
            Own::Login if method == Method::POST => Some(&*shared.login),
            Own::Refresh if method == Method::GET => Some(&*shared.refresh),
            Own::Logout if method == Method::POST => shared.logout.as_ref().map(|l| &*l.0),
            Own::LogoutAll if method == Method::POST => shared.logout.as_ref().map(|l| &*l.1),
            Own::Jwks if get => shared.jwks.as_ref().map(|j| j as &dyn Endpoint),
            Own::About if get => {
                let Some(about) = &shared.about else {
                    return CoreFuture::ready(wrong_method(method));
                };
                // Optional: the full document with a valid access token, the minimal without.
                return match shared.guard.check_as(req, Access::Optional) {
                    Ok(req) => CoreFuture::own(Endpoint::call(about, own_request(req))),
                    Err(response) => CoreFuture::ready(response),
                };
            }
            Own::Jwks => return CoreFuture::ready(wrong_method(method)),
            Own::Totp | Own::Sessions | Own::Keys | Own::Password => {
                let service = match own {
                    Own::Totp => &shared.totp,
                    Own::Sessions => &shared.own_sessions,
                    Own::Keys => &shared.keys,
                    _ => &shared.password,
                };
                let Some(service) = service else {
                    return CoreFuture::ready(wrong_method(method));
                };
                // The user's own second factor, sessions, keys and password: a valid access
                // token, whatever the policy says.
                return match shared.guard.check_as(req, Access::Protected) {
                    Ok(req) => CoreFuture::own(service.call(own_request(req))),
                    Err(response) => CoreFuture::ready(response),
                };
            }
            _ => None,
        };
        if let Some(endpoint) = endpoint {
            if let Some(browser) = &shared.browser
                && own != Own::Jwks
            {
                return browser_call(browser, own, endpoint, req);
            }
            return CoreFuture::own(endpoint.call(own_request(req)));
        }
        let method = method.clone();
        match shared.guard.check_as(req, Access::Protected) {
            Ok(_) => CoreFuture::ready(wrong_method(&method)),
            Err(response) => CoreFuture::ready(response),
        }
    }
}

/// A login, refresh or logout in browser mode: the refresh token from its cookie when no
/// `Authorization` header is sent (after the CSRF check), the answer's tokens into cookies.
fn browser_call<F, ReqBody>(
    browser: &Arc<BrowserShared>,
    own: Own,
    endpoint: &dyn Endpoint,
    mut req: Request<ReqBody>,
) -> CoreFuture<F>
where
    ReqBody: Body + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    let method = req.method().clone();
    let mut by_cookie = false;
    if own != Own::Login && !req.headers().contains_key(AUTHORIZATION) {
        let bearer = cookies::cookie(req.headers(), REFRESH_COOKIE)
            .and_then(|token| HeaderValue::try_from(format!("Bearer {token}")).ok());
        if let Some(bearer) = bearer {
            if !browser.browser.csrf_passes(req.headers()) {
                return CoreFuture::ready(browser.refuse(&method));
            }
            req.headers_mut().insert(AUTHORIZATION, bearer);
            by_cookie = true;
        }
    }
    let csrf = cookies::cookie(req.headers(), CSRF_COOKIE).map(str::to_owned);
    // A login gets cookies only from a page that can use them; every other client, Core's JSON.
    let cookie_login = own == Own::Login && browser.browser.uses_cookies(req.headers());
    if cookie_login || by_cookie {
        req.extensions_mut().insert(WantMinted);
    }
    let future = endpoint.call(own_request(req));
    let browser = Arc::clone(browser);
    CoreFuture::own(Box::pin(async move {
        let response = future.await;
        browser.finish(own, &method, by_cookie, csrf, response)
    }))
}

/// The access token from its cookie when no `Authorization` header is sent; an unsafe method
/// must pass the CSRF check.
#[allow(clippy::result_large_err)]
fn access_from_cookie<B>(
    browser: &BrowserShared,
    req: &mut Request<B>,
) -> Result<(), Response<ResponseBody>> {
    if req.headers().contains_key(AUTHORIZATION) {
        return Ok(());
    }
    let Some(bearer) = cookies::cookie(req.headers(), ACCESS_COOKIE)
        .and_then(|token| HeaderValue::try_from(format!("Bearer {token}")).ok())
    else {
        return Ok(());
    };
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe && !browser.browser.csrf_passes(req.headers()) {
        return Err(browser.refuse(req.method()));
    }
    req.headers_mut().insert(AUTHORIZATION, bearer);
    Ok(())
}
