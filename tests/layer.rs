//! The layer as a tower citizen: ready-service hygiene, custom rejections, the typed error in
//! the response extensions, claims in the request extensions, optional paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode, request::Parts};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};
use tower_jwt_login::auth::{Access, JwtAuthLayer, PathPolicy};
use tower_jwt_login::error::{AuthError, TokenError};
use tower_jwt_login::response::{ResponseBody, error_response};
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey};

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
        .build()
        .unwrap()
}

/// An inner service that refuses to be called unless *this instance* was polled ready; clones
/// start unready (like a service holding a semaphore permit acquired in `poll_ready`).
#[derive(Default)]
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        MustBeReady { ready: false }
    }
}

impl<B> Service<Request<B>> for MustBeReady {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = Ready<Result<Response<String>, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            return ready(Err("called without poll_ready"));
        }
        let who = req
            .extensions()
            .get::<Claims>()
            .map(|c| c.subject().to_owned());
        ready(Ok(Response::new(who.unwrap_or_else(|| "-".to_owned()))))
    }
}

fn get(path: &str, token: Option<&str>) -> Request<()> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(()).unwrap()
}

#[tokio::test]
async fn calls_the_instance_that_was_polled_ready() {
    let jwt = jwt();
    let token = jwt.issue_pair("admin").access_token;
    let mut svc = JwtAuthLayer::new(jwt).layer(MustBeReady::default());
    for _ in 0..3 {
        let res = ServiceExt::<Request<()>>::ready(&mut svc)
            .await
            .unwrap()
            .call(get("/x", Some(&token)))
            .await
            .unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"admin");
    }
}

#[tokio::test]
async fn rejection_carries_the_typed_error() {
    let jwt = jwt();
    let refresh = jwt.issue_pair("admin").refresh_token;
    let svc = JwtAuthLayer::new(jwt).layer(MustBeReady::default());

    let res = svc.clone().oneshot(get("/x", None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.extensions().get::<AuthError>(),
        Some(&AuthError::MissingToken)
    );

    let res = svc
        .clone()
        .oneshot(get("/x", Some(&refresh)))
        .await
        .unwrap();
    assert_eq!(
        res.extensions().get::<AuthError>(),
        Some(&AuthError::InvalidToken(TokenError::WrongTokenUse))
    );
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"wrong token use\""
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT token\"]}\n"
    );
}

#[tokio::test]
async fn custom_rejection_closure() {
    let svc = JwtAuthLayer::new(jwt())
        .on_rejection(|e: &AuthError, parts: &Parts| -> Response<ResponseBody> {
            let detail = if e.token_presented() {
                "bad token"
            } else {
                "no token"
            };
            error_response(&parts.method, StatusCode::FORBIDDEN, detail)
        })
        .layer(MustBeReady::default());
    let res = svc.clone().oneshot(get("/x", Some("a.b.c"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.extensions().get::<AuthError>().is_some());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"bad token\"]}\n"
    );
}

#[tokio::test]
async fn public_and_optional_paths() {
    let jwt = jwt();
    let token = jwt.issue_pair("admin").access_token;
    let policy = PathPolicy::new().public("/static/*").optional("/about");
    assert_eq!(
        policy.access(&http::Method::GET, "/static"),
        Access::Protected
    );
    assert_eq!(
        policy.access(&http::Method::GET, "/staticx"),
        Access::Protected
    );
    let svc = JwtAuthLayer::new(jwt)
        .policy(policy)
        .layer(MustBeReady::default());

    let text = |res: Response<_>| async move {
        let status = res.status();
        let body = BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    };
    // Public: goes through, and a token is not even looked at.
    let res = svc
        .clone()
        .oneshot(get("/static/app.js", Some(&token)))
        .await
        .unwrap();
    assert_eq!(text(res).await, (StatusCode::OK, "-".to_owned()));
    // Optional: claims only with a valid token; an invalid one is ignored, not refused.
    let res = svc
        .clone()
        .oneshot(get("/about", Some(&token)))
        .await
        .unwrap();
    assert_eq!(text(res).await, (StatusCode::OK, "admin".to_owned()));
    let res = svc
        .clone()
        .oneshot(get("/about", Some("x.y.z")))
        .await
        .unwrap();
    assert_eq!(text(res).await, (StatusCode::OK, "-".to_owned()));
    let res = svc.clone().oneshot(get("/about", None)).await.unwrap();
    assert_eq!(text(res).await, (StatusCode::OK, "-".to_owned()));
    // Everything else: protected.
    let res = svc.clone().oneshot(get("/static", None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn inner_errors_pass_through_untouched() {
    #[derive(Clone)]
    struct Broken;
    impl Service<Request<()>> for Broken {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = Ready<Result<Response<String>, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            let mut res = Response::new("teapot".to_owned());
            *res.status_mut() = StatusCode::IM_A_TEAPOT;
            ready(Ok(res))
        }
    }
    let jwt = jwt();
    let token = jwt.issue_pair("admin").access_token;
    let res = JwtAuthLayer::new(jwt)
        .layer(Broken)
        .oneshot(get("/x", Some(&token)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
}

/// The middleware services give their inner service back, as tower-http's do.
#[test]
fn the_services_give_their_inner_service_back() {
    use tower_jwt_login::auth::{RequireLayer, Requirement};
    let mut auth = JwtAuthLayer::new(jwt()).layer(MustBeReady::default());
    assert!(!auth.get_ref().ready);
    auth.get_mut().ready = true;
    assert!(auth.get_ref().ready);
    assert!(auth.into_inner().ready);

    let mut require = RequireLayer::new(Requirement::role("admin")).layer(MustBeReady::default());
    require.get_mut().ready = true;
    assert!(require.get_ref().ready);
    assert!(require.into_inner().ready);
}
