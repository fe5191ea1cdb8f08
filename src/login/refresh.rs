//! [`RefreshService`]: `GET /api/login/refresh` trades a refresh token for a new access token.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tower_service::Service;
use tracing::field::Empty;

use super::{AUDIT, AuditClient};
use crate::bearer::bearer_token;
use crate::client_addr::ClientAddrResolver;
use crate::error::{ResponseBody, error_response, json_response, unauthorized_response};
use crate::metrics::Metrics;
use crate::token::{Jwt, TokenUse};

/// The refresh route: `GET` with `Authorization: Bearer <refresh token>` answers
/// `{"access_token":"…"}`; anything else 401 `Missing or invalid JWT token` (any method other
/// than `GET` gets 404 in the §2 shape). Each outcome writes one audit event (see the
/// [module docs](crate::login#audit-log)).
#[derive(Debug, Clone)]
pub struct RefreshService {
    jwt: Jwt,
    metrics: Option<Metrics>,
    client_addr: ClientAddrResolver,
}

#[derive(Serialize)]
struct AccessOnly<'a> {
    access_token: &'a str,
}

impl RefreshService {
    /// The refresh route for tokens of `jwt`.
    pub fn new(jwt: Jwt) -> Self {
        RefreshService {
            jwt,
            metrics: None,
            client_addr: ClientAddrResolver::new(),
        }
    }

    /// How the client address of the audit event is found (default
    /// [`ClientAddrResolver::new`]; give it the login's resolver when behind a proxy).
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// Counts refreshes and refused refreshes into `metrics` ([`Metrics::record_refresh`],
    /// [`Metrics::record_refresh_failure`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn handle<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        let method = req.method();
        if method != Method::GET {
            return error_response(method, StatusCode::NOT_FOUND, "Not Found");
        }
        let span = tracing::info_span!("refresh", subject = Empty, outcome = Empty).entered();
        let claims = bearer_token(req.headers())
            .and_then(|token| Ok(self.jwt.verify(token, TokenUse::Refresh)?));
        let client = AuditClient(self.client_addr.resolve(req.headers(), req.extensions()));
        match claims {
            Ok(claims) => {
                let access_token = self.jwt.issue_access(claims.subject());
                span.record("subject", claims.subject());
                span.record("outcome", "success");
                if let Some(metrics) = &self.metrics {
                    metrics.record_refresh();
                }
                tracing::info!(
                    target: AUDIT,
                    outcome = "success",
                    subject = claims.subject(),
                    client = %client,
                    "refresh"
                );
                json_response(
                    method,
                    &AccessOnly {
                        access_token: &access_token,
                    },
                )
            }
            Err(error) => {
                span.record("outcome", "refused");
                if let Some(metrics) = &self.metrics {
                    metrics.record_refresh_failure();
                }
                tracing::info!(
                    target: AUDIT,
                    outcome = "failure",
                    client = %client,
                    reason = %error,
                    "refresh"
                );
                unauthorized_response(method, &error)
            }
        }
    }
}

impl<B> Service<Request<B>> for RefreshService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.handle(&req)))
    }
}
