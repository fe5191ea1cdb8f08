//! One assembly: [`LoginKit`] takes the key ring, the credential store and the options, and
//! gives back **one** [`LoginLayer`] to wrap the whole app.
//!
//! The layer serves the crate's own routes itself — `POST {prefix}/login`,
//! `GET {prefix}/login/refresh`, and with sessions `POST {prefix}/logout`,
//! `POST {prefix}/logout/all`, `GET {prefix}/v3/auth/sessions` and
//! `DELETE {prefix}/v3/auth/sessions/{id}` (the user's own sessions, [`SessionsService`]);
//! `GET {prefix}` (Core's about document) when one is given; the JWKS at
//! `/.well-known/jwks.json` when the ring has public keys — and guards every other request with
//! the [policy](crate::auth::PathPolicy) before the app sees it. Nothing can be mounted half:
//! with sessions, the layer always refuses revoked tokens, the logout and session routes are
//! always there, and a Redis session store makes the login throttle count for the whole fleet.
//!
//! It is built from the crate's parts ([`LoginService`], [`RefreshService`], [`LogoutService`],
//! [`JwtAuthLayer`]'s guard), which stay public for apps that want to mount them by hand: one
//! place mints, one verifies, as everywhere in the crate.
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use tower::Layer;
//! use tower_jwt_login::auth::Requirement;
//! use tower_jwt_login::kit::LoginKit;
//! use tower_jwt_login::session::MemorySessionStore;
//! use tower_jwt_login::store::Argon2Store;
//! use tower_jwt_login::{Claims, JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let users = Argon2Store::new().with_password("alice", "correct horse").unwrap();
//! let auth = LoginKit::new(jwt.clone(), users)
//!     .sessions(MemorySessionStore::new(&jwt))
//!     .require("/api/admin/*", Requirement::role("admin"))
//!     .build()
//!     .unwrap();
//! let app = Router::new().route(
//!     "/api/notes",
//!     get(|Extension(claims): Extension<Claims>| async move { format!("notes of {}", claims.subject()) }),
//! );
//! // One layer around the whole app (`auth.wrap(app)` with the `axum` feature); serve it with
//! // `axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())`.
//! let app = Router::new().fallback_service(auth.layer(app));
//! # use tower::ServiceExt;
//! # let res = app.oneshot(http::Request::get("/api/notes").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! # assert_eq!(res.status(), 401);
//! # });
//! ```

mod body;
mod future;
mod layer;
mod routes;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use body::KitBody;
pub use future::ResponseFuture;
pub use layer::{LoginKitService, LoginLayer};

use crate::apikey::{ApiKeyService, ApiKeyStore, DynApiKeys};
use crate::auth::{JwtAuthLayer, PathPolicy, Requirement};
use crate::auth0::{Auth0Provider, NoAuth0};
use crate::browser::Browser;
use crate::client_addr::ClientAddrResolver;
use crate::discovery::About;
use crate::factor::{SecondFactor, TotpService};
use crate::jwks::JwksService;
use crate::login::{LoginService, LogoutService, PasswordChangeService, RefreshService};
use crate::metrics::Metrics;
use crate::session::{Sessions, SessionsService};
use crate::store::{CredentialStore, SetPassword};
use crate::throttle::LoginThrottle;
use crate::token::Jwt;
use layer::KitShared;
use routes::Routes;

/// The builder of the assembly: see the [module docs](self).
///
/// Defaults: routes under `/api` (Core's paths), Core's 5 s failure delay, the standard login
/// throttle, the client address from the TCP peer (no trusted proxy), no sessions (stateless
/// tokens, exactly as Core), no about document, no CORS, every path but the crate's own
/// protected.
#[must_use = "a LoginKit does nothing until `build` gives its layer"]
pub struct LoginKit<S, A = NoAuth0> {
    jwt: Jwt,
    store: S,
    auth0: A,
    prefix: String,
    sessions: Option<Sessions>,
    rotation: Option<Duration>,
    throttle: Option<LoginThrottle>,
    fleet_key: Vec<u8>,
    client_addr: ClientAddrResolver,
    failure_delay: Duration,
    body_limit: Option<usize>,
    layer: JwtAuthLayer,
    policy: PathPolicy,
    about: Option<About>,
    publish_jwks: bool,
    metrics: Option<Metrics>,
    cors: Option<Cors>,
    browser: Option<Browser>,
    second_factor: Option<SecondFactor>,
    api_keys: Option<KitKeys>,
    password_change: Option<PasswordChangeService>,
}

/// The API keys of an assembly: the store the login and the refresh look keys up in, and the
/// management routes over the same store (made at `build`, once the prefix and the sessions
/// are known).
struct KitKeys {
    lookup: Arc<dyn DynApiKeys>,
    service: Box<dyn FnOnce(String, Option<Sessions>) -> Box<dyn routes::Endpoint> + Send + Sync>,
}

impl KitKeys {
    fn new<K: ApiKeyStore>(store: K) -> Self {
        let store = Arc::new(store);
        let lookup: Arc<dyn DynApiKeys> = Arc::clone(&store) as Arc<dyn DynApiKeys>;
        KitKeys {
            lookup,
            service: Box::new(move |path, sessions| {
                let mut service = ApiKeyService::new(store).path(path);
                if let Some(sessions) = sessions {
                    service = service.sessions(sessions);
                }
                Box::new(service)
            }),
        }
    }
}

impl<S: CredentialStore> LoginKit<S> {
    /// The assembly for tokens of `jwt` and users of `store`, with the defaults above.
    pub fn new(jwt: Jwt, store: S) -> Self {
        LoginKit {
            layer: JwtAuthLayer::new(jwt.clone()),
            jwt,
            store,
            auth0: NoAuth0,
            prefix: "/api".to_owned(),
            sessions: None,
            rotation: None,
            throttle: Some(LoginThrottle::standard()),
            fleet_key: Vec::new(),
            client_addr: ClientAddrResolver::new(),
            failure_delay: Duration::from_secs(5),
            body_limit: None,
            policy: PathPolicy::new(),
            about: None,
            publish_jwks: true,
            metrics: None,
            cors: None,
            browser: None,
            second_factor: None,
            api_keys: None,
            password_change: None,
        }
    }
}

impl<S: CredentialStore, A: Auth0Provider> LoginKit<S, A> {
    /// The prefix of the crate's routes (default `/api`: `/api/login`, `/api/login/refresh`,
    /// `/api/logout`, `/api/logout/all`, and the about document at `/api`). Empty for `/login`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Turns [sessions](crate::session) on: logins start sessions, refresh checks them, the
    /// logout routes and the user's own session routes ([`SessionsService`]) are served, and
    /// the layer refuses revoked access tokens. A store given with [`Sessions::with_fleet`] (a
    /// Redis one) also makes the login throttle count in Redis, for the whole fleet.
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// Refresh-token rotation with reuse detection (needs sessions): every refresh spends the
    /// presented refresh token and answers its successor; presenting a spent one again (after
    /// `grace`) ends the whole session.
    pub fn rotation(mut self, grace: Duration) -> Self {
        self.rotation = Some(grace);
        self
    }

    /// The login throttle ([`LoginThrottle`]); `None` turns it off. Standard limits by default.
    pub fn throttle(mut self, throttle: impl Into<Option<LoginThrottle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// The key that names accounts in Redis for the fleet-wide throttle (account names are
    /// stored keyed with it, never in clear). Give every instance the same secret; without one
    /// they are hashed unkeyed.
    pub fn fleet_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.fleet_key = key.as_ref().to_vec();
        self
    }

    /// How the client address is found for the throttle and the audit log (default: the TCP
    /// peer, no trusted proxy; see [`ClientAddrResolver`]).
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// How long every failed login waits before it is answered (default 5 s, like Core).
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// The largest login body accepted (default 16 KiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = Some(limit);
        self
    }

    /// Accepts Auth0 bearer tokens at login through `provider` (docs/protocol.md §5).
    pub fn auth0<A2: Auth0Provider>(self, provider: A2) -> LoginKit<S, A2> {
        LoginKit {
            jwt: self.jwt,
            store: self.store,
            auth0: provider,
            prefix: self.prefix,
            sessions: self.sessions,
            rotation: self.rotation,
            throttle: self.throttle,
            fleet_key: self.fleet_key,
            client_addr: self.client_addr,
            failure_delay: self.failure_delay,
            body_limit: self.body_limit,
            layer: self.layer,
            policy: self.policy,
            about: self.about,
            publish_jwks: self.publish_jwks,
            metrics: self.metrics,
            cors: self.cors,
            browser: self.browser,
            second_factor: self.second_factor,
            api_keys: self.api_keys,
            password_change: self.password_change,
        }
    }

    /// The app's own access rules and requirements (every path not matched stays protected;
    /// the crate's own routes are answered before the policy is asked).
    pub fn policy(mut self, policy: PathPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `path` (exact, or a `/*` prefix) is public: no token is looked at.
    pub fn public(mut self, path: &str) -> Self {
        self.policy = self.policy.public(path);
        self
    }

    /// Requires `requirement` of the claims on `path` (see [`PathPolicy::require`]).
    pub fn require(mut self, path: &str, requirement: Requirement) -> Self {
        self.policy = self.policy.require(path, requirement);
        self
    }

    /// Serves Core's about document at `GET {prefix}` (docs/protocol.md §6): the full one with
    /// a valid access token, the minimal one without.
    pub fn about(mut self, about: About) -> Self {
        self.about = Some(about);
        self
    }

    /// Whether to publish the ring's public keys at `/.well-known/jwks.json` (default: yes,
    /// when the ring has any).
    pub fn publish_jwks(mut self, publish: bool) -> Self {
        self.publish_jwks = publish;
        self
    }

    /// Counts logins, refreshes and rejections into `metrics`.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Attaches the extra claims of every accepted token as
    /// [`ExtraClaims<T>`](crate::ExtraClaims) (see [`JwtAuthLayer::claims_type`]).
    pub fn claims_type<T>(mut self) -> Self
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.layer = self.layer.claims_type::<T>();
        self
    }

    /// Answers cross-origin requests (see [`Cors`]); the assembly places tower-http's
    /// `CorsLayer` outside everything else, so a preflight is answered before any check.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Browser mode (needs sessions): the refresh token in an `HttpOnly` cookie, CSRF checks
    /// for every request a cookie authenticates; see [`crate::browser`]. The origins of
    /// `browser` (and those of an explicit [`Cors`] list) may use the cookies cross-origin:
    /// CORS allows credentials for them, and only for them.
    pub fn browser(mut self, browser: Browser) -> Self {
        self.browser = Some(browser);
        self
    }

    /// A second factor (TOTP; see [`crate::factor`]): enrolled users log in with a code, a
    /// recovery code or a remembered device; `{prefix}/v3/auth/totp` and its `setup`, `enable`
    /// and `recovery` routes manage it (a valid access token required); logging out everywhere
    /// forgets the user's remembered devices. Wrong codes count against the login throttle.
    pub fn second_factor(mut self, second_factor: SecondFactor) -> Self {
        self.second_factor = Some(second_factor);
        self
    }

    /// API keys ([`crate::apikey`]) from `store`: the login exchanges them
    /// ([`LoginService::api_keys`]), the refresh checks a key's tokens against it
    /// ([`RefreshService::api_keys`]: a revoked key's tokens stop at their next refresh, and
    /// keep the key's roles), and the layer serves the owner's management routes
    /// ([`ApiKeyService`]) at `{prefix}/v3/auth/keys` (`GET` lists, `POST` creates) and
    /// `{prefix}/v3/auth/keys/{id}` (`DELETE` revokes), a valid access token required whatever
    /// the policy says. With sessions, revoking a key also ends the sessions started with it
    /// (see [`ApiKeyService::sessions`]). One store is shared by all three: an in-memory
    /// [`MemoryApiKeyStore`](crate::apikey::MemoryApiKeyStore), or with the `sql` feature a
    /// clone of the `SqlStore` that also holds the users.
    pub fn api_keys<K: ApiKeyStore>(mut self, store: K) -> Self {
        self.api_keys = Some(KitKeys::new(store));
        self
    }

    /// The self-service password change ([`PasswordChangeService`]) at
    /// `POST {prefix}/v3/auth/password` (a valid access token required whatever the policy
    /// says): the current password is checked with `store` — after the assembly's failure delay
    /// when wrong, counted by its throttle — the new one set with
    /// [`SetPassword::set_password`], and with sessions every other session of the user ends.
    /// Give it the store the assembly logs users in with (an `Arc` clone of it, or a clone of
    /// a `SqlStore`): [`Argon2Store`](crate::store::Argon2Store),
    /// [`PasswordStore`](crate::store::PasswordStore) and `SqlStore` can set passwords.
    pub fn password_change<P: SetPassword>(mut self, store: P) -> Self {
        self.password_change = Some(PasswordChangeService::new(store));
        self
    }

    /// The layer, or why this configuration contradicts itself.
    pub fn build(self) -> Result<LoginLayer, KitError> {
        if !self.prefix.is_empty() && !self.prefix.starts_with('/') {
            return Err(KitError::InvalidPrefix(self.prefix));
        }
        if self.rotation.is_some() && self.sessions.is_none() {
            return Err(KitError::RotationWithoutSessions);
        }
        if let Some(path) = self.policy.requirement_on_public_path() {
            return Err(KitError::RequirementOnPublicPath(path));
        }
        let (browser, cors) = browser_and_cors(self.browser, self.cors, self.sessions.is_some())?;
        let cors = cors.map(|cors| cors.to_layer()).transpose()?;
        let jwt = self.jwt;
        let store = Arc::new(self.store);

        let throttle = self.throttle.map(|throttle| match &self.sessions {
            Some(sessions) => sessions.fleet_throttle(throttle, &self.fleet_key),
            None => throttle,
        });
        let totp = self.second_factor.as_ref().map(|factor| {
            TotpService::new(factor.clone())
                .prefix(&self.prefix)
                .throttle(throttle.clone())
                .client_addr(self.client_addr.clone())
        });
        let password = self.password_change.map(|change| {
            let change = change
                .failure_delay(self.failure_delay)
                .client_addr(self.client_addr.clone())
                .throttle(throttle.clone());
            match &self.sessions {
                Some(sessions) => change.sessions(sessions.clone()),
                None => change,
            }
        });
        let mut login = LoginService::new(jwt.clone(), Arc::clone(&store))
            .failure_delay(self.failure_delay)
            .client_addr(self.client_addr.clone())
            .throttle(throttle)
            .auth0(self.auth0);
        if let Some(factor) = &self.second_factor {
            login = login.second_factor(factor.clone());
        }
        let mut refresh = RefreshService::new(jwt.clone())
            .client_addr(self.client_addr.clone())
            .credentials(Arc::clone(&store));
        let mut keys = None;
        if let Some(kit_keys) = self.api_keys {
            login = login.api_keys_shared(Arc::clone(&kit_keys.lookup));
            refresh = refresh.api_keys_shared(kit_keys.lookup);
            keys = Some(kit_keys.service);
        }
        let mut layer = self.layer;
        if let Some(limit) = self.body_limit {
            login = login.body_limit(limit);
        }
        let metrics = self.metrics;
        if let Some(metrics) = metrics.clone() {
            login = login.metrics(metrics.clone());
            refresh = refresh.metrics(metrics.clone());
            layer = layer.metrics(metrics);
        }
        let mut logout = None;
        if let Some(sessions) = &self.sessions {
            login = login.sessions(sessions.clone());
            refresh = refresh.sessions(sessions.clone());
            if let Some(grace) = self.rotation {
                refresh = refresh.rotation(grace);
            }
            layer = layer.revocations(sessions.revocations());
            let mut all = LogoutService::all(jwt.clone(), sessions.clone())
                .client_addr(self.client_addr.clone());
            if let Some(factor) = &self.second_factor {
                all = all.second_factor(factor.clone());
            }
            logout = Some((
                Box::new(
                    LogoutService::new(jwt.clone(), sessions.clone())
                        .client_addr(self.client_addr.clone()),
                ) as Box<dyn routes::Endpoint>,
                Box::new(all) as Box<dyn routes::Endpoint>,
            ));
        }
        let jwks = (self.publish_jwks && jwt.has_public_keys()).then(|| {
            for kid in jwt.kids() {
                tracing::info!(kid, path = crate::jwks::JWKS_PATH, "publishing JWT key");
            }
            JwksService::new(&jwt)
        });
        let mut routes = Routes::new(
            &self.prefix,
            self.sessions.is_some(),
            self.about.is_some(),
            jwks.is_some(),
        );
        routes.totp = totp.as_ref().map(TotpService::paths);
        let keys = keys.map(|service| {
            let path = format!("{}/v3/auth/keys", routes.prefix);
            routes.keys = Some(path.clone());
            service(path, self.sessions.clone())
        });
        if password.is_some() {
            routes.password = Some(format!("{}/v3/auth/password", routes.prefix));
        }
        let browser = browser.map(|browser| {
            Arc::new(layer::BrowserShared {
                browser,
                paths: crate::browser::CookiePaths {
                    refresh: routes.refresh.clone(),
                    logout: format!("{}/logout", routes.prefix),
                },
                access_ttl: jwt.access_ttl(),
                refresh_ttl: jwt.refresh_ttl(),
                metrics: metrics.clone(),
            })
        });
        let guard = layer.policy(self.policy).guard();
        Ok(LoginLayer {
            shared: Arc::new(KitShared {
                jwt,
                guard,
                routes,
                login: Box::new(login),
                refresh: Box::new(refresh),
                logout,
                about: self.about.map(About::into_service),
                totp: totp.map(|t| Box::new(t) as Box<dyn routes::Endpoint>),
                own_sessions: self.sessions.as_ref().map(|sessions| {
                    Box::new(SessionsService::new(sessions.clone()).prefix(&self.prefix))
                        as Box<dyn routes::Endpoint>
                }),
                keys,
                password: password.map(|p| Box::new(p) as Box<dyn routes::Endpoint>),
                jwks,
                sessions: self.sessions,
                browser,
            }),
            cors,
        })
    }
}

impl<S, A> fmt::Debug for LoginKit<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginKit")
            .field("prefix", &self.prefix)
            .field("sessions", &self.sessions.is_some())
            .field("rotation", &self.rotation)
            .field("throttle", &self.throttle)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Cross-origin answers of the assembly, made by tower-http's `CorsLayer`.
///
/// [`Cors::core`] answers as datarhei Core does by default: `Access-Control-Allow-Origin: *`,
/// `Vary: Origin`, `Access-Control-Expose-Headers: Content-Length`, and a preflight with `204`,
/// `Access-Control-Allow-Methods: GET,HEAD,PUT,POST,DELETE,PATCH`,
/// `Access-Control-Allow-Headers: origin,content-length,content-type,authorization`,
/// `Access-Control-Max-Age: 86400`. [`Cors::origins`] allows only the listed origins (the
/// header then names the request's origin). Bearer tokens need no credentials mode, so neither
/// allows credentials.
///
/// ```
/// use tower_jwt_login::kit::Cors;
///
/// let any = Cors::core();
/// let listed = Cors::origins(["https://ui.example.com", "http://localhost:3000"]);
/// assert!(Cors::origins(["not an origin"]).check().is_err());
/// # let _ = (any, listed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origins: Option<Vec<String>>,
    credentials: bool,
}

impl Cors {
    /// Every origin (`*`), as Core.
    pub fn core() -> Self {
        Cors {
            origins: None,
            credentials: false,
        }
    }

    /// Only these origins (`scheme://host[:port]`, as browsers send them in `Origin`).
    pub fn origins<I, O>(origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        Cors {
            origins: Some(origins.into_iter().map(Into::into).collect()),
            credentials: false,
        }
    }

    /// From a comma-separated list (`CORE_API_AUTH_CORS_ORIGINS`): `*` for every origin.
    pub fn parse(list: &str) -> Self {
        let origins: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() || origins == ["*"] {
            Cors::core()
        } else {
            Cors::origins(origins)
        }
    }

    /// The listed origins (`None`: every origin).
    pub fn allowed_origins(&self) -> Option<&[String]> {
        self.origins.as_deref()
    }

    /// Checks every listed origin: a scheme (`http` or `https`) and a host, no path.
    pub fn check(&self) -> Result<(), KitError> {
        for origin in self.origins.iter().flatten() {
            if !is_origin(origin) {
                return Err(KitError::InvalidOrigin(origin.clone()));
            }
        }
        if self.credentials && self.origins.is_none() {
            return Err(KitError::WildcardOriginWithCredentials);
        }
        Ok(())
    }

    /// Whether `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o.eq_ignore_ascii_case(origin)))
    }

    pub(crate) fn with_credentials(mut self) -> Self {
        self.credentials = true;
        self
    }

    /// tower-http's `CorsLayer` for these answers (for an app that serves routes without the
    /// assembly; the assembly places its own).
    pub fn to_layer(&self) -> Result<CorsLayer, KitError> {
        self.check()?;
        let mut headers = vec![
            header::ORIGIN,
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
        ];
        if self.credentials {
            headers.push(HeaderName::from_static(crate::browser::CSRF_HEADER));
        }
        let layer = CorsLayer::new()
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::POST,
                Method::DELETE,
                Method::PATCH,
            ])
            .allow_headers(headers)
            .expose_headers([header::CONTENT_LENGTH])
            .max_age(Duration::from_secs(86_400))
            .vary([header::ORIGIN]);
        Ok(match &self.origins {
            None => layer.allow_origin(AllowOrigin::any()),
            Some(origins) => {
                let values: Vec<HeaderValue> = origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok())
                    .collect();
                layer
                    .allow_origin(AllowOrigin::list(values))
                    .allow_credentials(self.credentials)
            }
        })
    }
}

/// The browser mode with every origin that may use its cookies, and the CORS answers that go
/// with it: credentials for those origins only.
fn browser_and_cors(
    browser: Option<Browser>,
    cors: Option<Cors>,
    sessions: bool,
) -> Result<(Option<Browser>, Option<Cors>), KitError> {
    let Some(browser) = browser else {
        return Ok((None, cors));
    };
    if !sessions {
        return Err(KitError::BrowserWithoutSessions);
    }
    let mut origins: Vec<String> = browser.allowed_origins().to_vec();
    match cors.as_ref().map(|c| c.allowed_origins()) {
        Some(None) if !origins.is_empty() => return Err(KitError::WildcardOriginWithCredentials),
        Some(Some(listed)) => {
            for origin in listed {
                if !origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                    origins.push(origin.clone());
                }
            }
        }
        _ => {}
    }
    for origin in &origins {
        if !is_origin(origin) {
            return Err(KitError::InvalidOrigin(origin.clone()));
        }
        if !crate::browser::origin_is_secure(origin) {
            return Err(KitError::InsecureOrigin(origin.clone()));
        }
        if crate::browser::is_loopback_http(origin) {
            tracing::warn!(
                origin = origin.as_str(),
                "browser mode: plain-HTTP origin allowed; Secure cookies work over http:// only \
                 on localhost, for development: serve the app over HTTPS in production"
            );
        }
    }
    let cors = match cors {
        Some(cors) if origins.is_empty() => Some(cors),
        _ if origins.is_empty() => None,
        _ => Some(Cors::origins(origins.clone()).with_credentials()),
    };
    Ok((Some(browser.origins(origins)), cors))
}

/// `scheme://host[:port]` with scheme `http` or `https` and nothing after the authority.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Why a [`LoginKit`] configuration was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KitError {
    /// The prefix does not start with `/`.
    InvalidPrefix(String),
    /// Rotation was asked for without sessions: a spent refresh token could not be told from a
    /// live one.
    RotationWithoutSessions,
    /// A requirement is set on a path the policy makes public (the path, as given): the rule
    /// and the requirement contradict each other.
    RequirementOnPublicPath(String),
    /// A CORS origin is not `scheme://host[:port]`.
    InvalidOrigin(String),
    /// Credentials (cookies) with every origin allowed (`*`): browsers refuse it, and it would
    /// let any site use the cookies.
    WildcardOriginWithCredentials,
    /// Browser mode without sessions: logout could not end the refresh token in the cookie.
    BrowserWithoutSessions,
    /// Browser mode with a plain-HTTP origin that is not a loopback host: `Secure` cookies
    /// never reach it.
    InsecureOrigin(String),
}

impl fmt::Display for KitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KitError::InvalidPrefix(prefix) => {
                write!(
                    f,
                    "route prefix {prefix:?} must start with '/' (or be empty)"
                )
            }
            KitError::RotationWithoutSessions => f.write_str(
                "refresh-token rotation needs sessions: add `.sessions(…)` (a memory or Redis \
                 session store)",
            ),
            KitError::RequirementOnPublicPath(path) => write!(
                f,
                "a requirement is set on {path:?}, which the policy makes public: drop the \
                 public rule or the requirement"
            ),
            KitError::InvalidOrigin(origin) => write!(
                f,
                "CORS origin {origin:?} is not scheme://host[:port] (http or https, no path)"
            ),
            KitError::WildcardOriginWithCredentials => {
                f.write_str("cookies need an explicit list of allowed origins, never `*`")
            }
            KitError::BrowserWithoutSessions => f.write_str(
                "browser mode needs sessions: add `.sessions(…)` so that logout ends the refresh \
                 token kept in the cookie",
            ),
            KitError::InsecureOrigin(origin) => write!(
                f,
                "browser mode: origin {origin:?} is plain HTTP and not a loopback host; Secure \
                 cookies never reach it (use https://, or http://localhost for development)"
            ),
        }
    }
}

impl std::error::Error for KitError {}

#[cfg(feature = "axum")]
impl LoginLayer {
    /// `router` wrapped in this layer, as an axum [`Router`](::axum::Router) ready for
    /// `axum::serve` (with `into_make_service_with_connect_info::<SocketAddr>()`, so the login
    /// throttle sees the client address). Every request reaches the layer before the router
    /// routes it.
    pub fn wrap(&self, router: ::axum::Router) -> ::axum::Router {
        use tower_layer::Layer as _;
        ::axum::Router::new().fallback_service(self.layer(router))
    }
}
