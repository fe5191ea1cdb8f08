//! [`TotpService`]: the routes a logged-in user manages the second factor with.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use tower_service::Service;
use zeroize::Zeroizing;

use super::{FactorError, FactorStoreError, SecondFactor};
use crate::audit::{AUDIT, AuditClient};
use crate::client_addr::ClientAddrResolver;
use crate::error::{AuthError, LoginError};
use crate::json::parse_object;
use crate::response::{
    ResponseBody, ResponseFuture, error_response, json_response, unauthorized_response,
    unavailable_response_with, wrong_method,
};
use crate::throttle::LoginThrottle;
use crate::token::Claims;

use crate::error::BoxError;

/// The largest body a management call reads (`{"code":"…"}`).
const BODY_LIMIT: usize = 4 * 1024;

/// The management routes of the second factor, as one tower service, for the user of the
/// request's verified access token ([`Claims`] in the request extensions, which
/// [`JwtAuthLayer`](crate::auth::JwtAuthLayer) puts there; without them every route answers
/// `401` in the §2 shape). Under the base path (default `/api/v3/auth/totp`, see
/// [`prefix`](Self::prefix)):
///
/// | request | answer |
/// |---|---|
/// | `GET <base>` | `200 {"enabled":false,"pending":false,"recovery_codes_left":0}` |
/// | `POST <base>/setup` | `200 {"secret":"<base32>","uri":"otpauth://totp/…"}` (pending until enabled) |
/// | `POST <base>/enable` `{"code":"123456"}` | `200 {"recovery_codes":["xxxx-xxxx-xxxx-xxxx",…]}` (ten) |
/// | `POST <base>/recovery` `{"code":"…"}` | `200 {"recovery_codes":[…]}`: a new set replaces the old |
/// | `DELETE <base>` `{"code":"…"}` | `204`: off, remembered devices forgotten |
///
/// `…/recovery` and `DELETE` take a current code or a recovery code. Refusals are the §2 error
/// shape: `400` `TOTP code required` / `Invalid TOTP code`, `409` `TOTP not enabled` /
/// `TOTP already enabled` / `No TOTP setup pending`, `429` over the throttle (wrong codes count
/// like wrong passwords, per user and client address), `503` while the store is unreachable;
/// other methods and paths get `404`. Answers carrying a secret or codes say
/// `Cache-Control: no-store`.
///
/// It matches the request path against the base, or, when a router stripped the base
/// (`nest_service`), the remaining path; mount it on each of [`paths`](Self::paths) with
/// `route_service`, or once with `nest_service(base, …)`.
///
/// ```
/// use axum::Router;
/// use tower_jwt_login::factor::{FactorKey, MemoryFactorStore, SecondFactor, TotpService};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let factor = SecondFactor::new(MemoryFactorStore::new(), FactorKey::random()).await.unwrap();
/// let totp = TotpService::new(factor).prefix("/api");
/// let mut router: Router = Router::new();
/// for path in totp.paths() {
///     router = router.route_service(&path, totp.clone());
/// }
/// assert_eq!(totp.paths()[0], "/api/v3/auth/totp");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct TotpService {
    factor: SecondFactor,
    base: Arc<str>,
    throttle: Option<LoginThrottle>,
    client_addr: ClientAddrResolver,
}

#[derive(Deserialize)]
struct CodeBody {
    code: Option<String>,
}

impl TotpService {
    /// The routes under `/api/v3/auth/totp`, throttled with the standard limits (give it the
    /// login's throttle with [`throttle`](Self::throttle) so wrong codes and wrong passwords
    /// share one budget).
    pub fn new(factor: SecondFactor) -> Self {
        TotpService {
            factor,
            base: Arc::from("/api/v3/auth/totp"),
            throttle: Some(LoginThrottle::standard()),
            client_addr: ClientAddrResolver::new(),
        }
    }

    /// The API prefix the routes live under (default `/api`): the base path is
    /// `<prefix>/v3/auth/totp`.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.base = Arc::from(format!("{}/v3/auth/totp", prefix.trim_end_matches('/')));
        self
    }

    /// Counts wrong codes (per subject and client address) and refuses calls over the limits
    /// with `429`; `None` turns it off.
    #[must_use]
    pub fn throttle(mut self, throttle: impl Into<Option<LoginThrottle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// How the client address is found for the throttle and the audit log.
    #[must_use]
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// The paths to mount the service on: the base, then `…/setup`, `…/enable` and
    /// `…/recovery`.
    pub fn paths(&self) -> [String; 4] {
        let base = &*self.base;
        [
            base.to_owned(),
            format!("{base}/setup"),
            format!("{base}/enable"),
            format!("{base}/recovery"),
        ]
    }

    async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = req.method().clone();
        let Some(subject) = req
            .extensions()
            .get::<Claims>()
            .map(|claims| claims.subject().to_owned())
        else {
            return unauthorized_response(&method, &AuthError::MissingToken);
        };
        let path = req.uri().path();
        let tail = path.strip_prefix(&*self.base).unwrap_or(path);
        let action = match (&method, tail) {
            (&Method::GET | &Method::HEAD, "" | "/") => Action::Status,
            (&Method::POST, "/setup") => Action::Setup,
            (&Method::POST, "/enable") => Action::Enable,
            (&Method::POST, "/recovery") => Action::Recovery,
            (&Method::DELETE, "" | "/") => Action::Disable,
            _ => return wrong_method(&method),
        };
        let client = self.client_addr.resolve(req.headers(), req.extensions());
        let code = match action {
            Action::Status | Action::Setup => None,
            _ => Some(read_code(req.into_body()).await),
        };
        if let Some(throttle) = self.throttle.as_ref().filter(|_| code.is_some())
            && let Err(refused) = throttle.begin_shared(&subject, client).await
        {
            crate::metrics::second_factor(action.name(), "throttled", Some("throttled"));
            tracing::info!(
                name: "second_factor",
                target: AUDIT,
                action = action.name(),
                outcome = "throttled",
                enduser.id = subject,
                client.address = %AuditClient(client),
                http.request.method = method.as_str(),
                error.type = "throttled",
                limit = refused.scope().as_str(),
                retry_after = refused.retry_after_secs(),
                "second_factor"
            );
            return LoginError::Throttled(refused).into_response(&method);
        }
        let code = code.as_ref().map_or("", |c| c.as_str());
        let factor = &self.factor;
        let outcome = match action {
            Action::Status => factor
                .status(&subject)
                .await
                .map(|s| json_response(&method, &s)),
            Action::Setup => factor
                .setup(&subject)
                .await
                .map(|s| no_store(json_response(&method, &s))),
            Action::Enable => factor
                .enable(&subject, code)
                .await
                .map(|c| no_store(json_response(&method, &c))),
            Action::Recovery => factor
                .regenerate_recovery_codes(&subject, code)
                .await
                .map(|c| no_store(json_response(&method, &c))),
            Action::Disable => factor.disable(&subject, code).await.map(|()| {
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }),
        };
        if let Some(throttle) = self.throttle.as_ref().filter(|_| action.takes_code()) {
            match &outcome {
                Ok(_) => throttle.settle_shared(&subject, client, true).await,
                // A wrong code keeps its charge, like a wrong password.
                Err(FactorError::InvalidCode) => {}
                Err(_) => throttle.settle_shared(&subject, client, false).await,
            }
        }
        let client = AuditClient(client);
        match outcome {
            Ok(response) => {
                if action != Action::Status {
                    crate::metrics::second_factor(action.name(), "success", None);
                    tracing::info!(
                        name: "second_factor",
                        target: AUDIT,
                        action = action.name(),
                        outcome = "success",
                        enduser.id = subject,
                        client.address = %client,
                        http.request.method = method.as_str(),
                        "second_factor"
                    );
                }
                response
            }
            Err(error) => {
                if let FactorError::Store(source) = &error {
                    tracing::error!(error = %source, "second-factor store failed");
                }
                let outcome = match &error {
                    FactorError::Store(FactorStoreError::Unavailable(_)) => "unavailable",
                    FactorError::Store(_) => "error",
                    _ => "failure",
                };
                crate::metrics::second_factor(action.name(), outcome, Some(error.reason()));
                tracing::info!(
                    name: "second_factor",
                    target: AUDIT,
                    action = action.name(),
                    outcome,
                    enduser.id = subject,
                    client.address = %client,
                    http.request.method = method.as_str(),
                    error.type = error.reason(),
                    "second_factor"
                );
                if error.status() == StatusCode::SERVICE_UNAVAILABLE {
                    return unavailable_response_with(&method, 5, error.detail());
                }
                error_response(&method, error.status(), error.detail())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Status,
    Setup,
    Enable,
    Recovery,
    Disable,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Status => "totp_status",
            Action::Setup => "totp_setup",
            Action::Enable => "totp_enable",
            Action::Recovery => "totp_recovery_codes",
            Action::Disable => "totp_disable",
        }
    }

    fn takes_code(self) -> bool {
        !matches!(self, Action::Status | Action::Setup)
    }
}

/// `{"code":"…"}`'s code, or an empty string for anything else (answered as "code required").
async fn read_code<B>(body: B) -> Zeroizing<String>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Ok(collected) = Limited::new(body, BODY_LIMIT).collect().await else {
        return Zeroizing::new(String::new());
    };
    let bytes = collected.to_bytes();
    let code = Zeroizing::new(
        parse_object::<CodeBody>(&bytes)
            .and_then(|b| b.code)
            .unwrap_or_default(),
    );
    if let Ok(mut owned) = bytes.try_into_mut() {
        zeroize::Zeroize::zeroize(owned.as_mut());
    }
    code
}

/// Marks an answer that carries a secret or codes as not to be cached.
fn no_store(mut res: Response<ResponseBody>) -> Response<ResponseBody> {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl<B> Service<Request<B>> for TotpService
where
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
