//! The published JWKS: `GET /.well-known/jwks.json` with the public keys of the key ring, so
//! that other services verify the crate's tokens with any standard JWKS client and no secret.
//!
//! The document is rendered once, when the service is made: public members only (`kty`,
//! `crv`/`n`/`e`/`x`/`y`, `kid`, `alg`, `use: "sig"`), never a private or symmetric one (HMAC
//! secrets are not listed at all). Answers carry `Content-Type: application/json` and
//! `Cache-Control: public, max-age=300` (configurable); `HEAD` gets the headers without the
//! body, any other method 404 in the error shape of docs/protocol.md §2. Mount it on a public
//! path ([`PathPolicy::public`](crate::auth::PathPolicy::public)).
//!
//! ```
//! use http::{Method, Request};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//! use tower_jwt_login::jwks::JwksService;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // An HMAC-only ring publishes no key.
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let service = JwksService::new(&jwt);
//! let res = service.oneshot(Request::get("/.well-known/jwks.json").body(()).unwrap()).await.unwrap();
//! assert_eq!(res.headers()["cache-control"], "public, max-age=300");
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"{\"keys\":[]}\n");
//! # });
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use tower_service::Service;

use crate::Jwt;
use crate::response::{ResponseBody, json_bytes_response, wrong_method};

/// Where the JWKS is usually served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The default `max-age` of the JWKS answer: 5 minutes, so that a key added to the ring before
/// it signs (docs/protocol.md §4) reaches the other services' caches quickly.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// The key ring's public keys as a tower service (see the [module](self)).
#[derive(Debug, Clone)]
pub struct JwksService {
    body: Bytes,
    cache_control: HeaderValue,
}

impl JwksService {
    /// The JWKS of `jwt`'s ring, with `Cache-Control: public, max-age=300`.
    pub fn new(jwt: &Jwt) -> Self {
        let mut body = jwt.jwks_json().into_bytes();
        body.push(b'\n');
        JwksService {
            body: Bytes::from(body),
            cache_control: cache_control(DEFAULT_MAX_AGE),
        }
    }

    /// Sets the `max-age` of the answers (whole seconds).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.cache_control = cache_control(max_age);
        self
    }

    /// The document served (with its trailing newline).
    pub fn document(&self) -> &[u8] {
        &self.body
    }
}

fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
        .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=300"))
}

impl<B> Service<Request<B>> for JwksService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method();
        if method != Method::GET && method != Method::HEAD {
            return ready(Ok(wrong_method(method)));
        }
        let mut res = json_bytes_response(method, self.body.clone());
        res.headers_mut()
            .insert(header::CACHE_CONTROL, self.cache_control.clone());
        ready(Ok(res))
    }
}
