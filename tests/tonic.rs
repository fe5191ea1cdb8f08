//! A real tonic server on 127.0.0.1 behind `JwtAuthLayer` (the `grpc_server` example) and a real
//! tonic client: no token, a refresh token, a valid access token; an admin-only method denied
//! (`PERMISSION_DENIED`) to everyone else, with a role granted at runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/grpc_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod grpc_server;

use std::convert::Infallible;
use std::net::SocketAddr;

use grpc_server::proto::WhoamiRequest;
use grpc_server::{WhoamiClient, authorized, http_login};
use http_body_util::BodyExt;
use tonic::Code;
use tonic::transport::Channel;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::metrics::Metrics;
use tower_jwt_login::store::{Argon2Store, Argon2Users, CredentialStore, PlaintextUser};
use tower_jwt_login::{JwtConfig, JwtKey};

const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

async fn server() -> (SocketAddr, Metrics) {
    let metrics = Metrics::new();
    let addr = serve(PlaintextUser::new(USER, PASSWORD), metrics.clone()).await;
    (addr, metrics)
}

/// The example's gRPC server with `store` on 127.0.0.1:0, no failure delay.
async fn serve<S: CredentialStore>(store: S, metrics: Metrics) -> SocketAddr {
    let jwt = JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grpc_server::serve(
        listener,
        jwt,
        store,
        metrics,
        std::time::Duration::ZERO,
    ));
    addr
}

async fn client(addr: SocketAddr) -> WhoamiClient {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    WhoamiClient::new(channel)
}

fn hello() -> WhoamiRequest {
    WhoamiRequest {
        greeting: "hello".into(),
    }
}

#[tokio::test]
async fn no_token_is_unauthenticated() {
    let (addr, metrics) = server().await;
    let status = client(addr)
        .await
        .get(tonic::Request::new(hello()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "Missing or invalid JWT token");
    assert_eq!(metrics.snapshot().rejections.missing_token, 1);
}

#[tokio::test]
async fn refresh_token_is_unauthenticated() {
    let (addr, metrics) = server().await;
    let tokens = http_login(addr, USER, PASSWORD).await.unwrap();
    let request = authorized(hello(), &tokens.refresh_token).unwrap();
    let status = client(addr).await.get(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(metrics.snapshot().rejections.wrong_token_use, 1);
}

#[tokio::test]
async fn garbage_token_is_unauthenticated() {
    let (addr, _) = server().await;
    let request = authorized(hello(), "not.a.token").unwrap();
    let status = client(addr).await.get(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn access_token_succeeds_and_the_handler_sees_the_subject() {
    let (addr, metrics) = server().await;
    let tokens = http_login(addr, USER, PASSWORD).await.unwrap();
    let mut client = client(addr).await;
    let request = authorized(hello(), &tokens.access_token).unwrap();
    let reply = client.get(request).await.unwrap().into_inner();
    assert_eq!(reply.subject, USER);
    assert_eq!(reply.message, "hello, alice");
    // The same connection goes on working for a second call.
    let request = authorized(hello(), &tokens.access_token).unwrap();
    assert_eq!(
        client.get(request).await.unwrap().into_inner().subject,
        USER
    );
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.login_successes, 1);
    assert_eq!(snapshot.rejections.total(), 0);
}

#[tokio::test]
async fn example_client_logs_in_over_http_and_calls_over_grpc() {
    let (addr, _) = server().await;
    let reply = grpc_server::call(addr, USER, PASSWORD).await.unwrap();
    assert_eq!(reply.subject, USER);
}

/// The refusal on the wire: HTTP 200, `grpc-status: 16`, a short `grpc-message`, gRPC content
/// type, no body — never the JSON error.
#[tokio::test]
async fn grpc_refusal_on_the_wire_has_no_json_body() {
    let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    let svc = JwtAuthLayer::new(jwt).layer(service_fn(|_req: http::Request<String>| async {
        Ok::<_, Infallible>(http::Response::new(String::from("reached")))
    }));
    let req = http::Request::post("/demo.Whoami/Get")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(String::new())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["grpc-status"], "16");
    assert_eq!(
        res.headers()["grpc-message"],
        "Missing or invalid JWT token"
    );
    assert_eq!(res.headers()["content-type"], "application/grpc");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());

    // The same layer still answers a plain HTTP request with the JSON 401.
    let req = http::Request::get("/api/v3/process")
        .body(String::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT token\"]}\n"
    );
}

/// HTTP/1.1 and gRPC share the port: a plain HTTP request to a protected path gets the JSON 401.
#[tokio::test]
async fn http_requests_on_the_grpc_port_get_the_json_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _) = server().await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/v3/process HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 "), "{text}");
    assert!(
        text.contains("content-type: application/json\r\n"),
        "{text}"
    );
    assert!(text.contains("www-authenticate: Bearer\r\n"), "{text}");
    assert!(text.ends_with(
        "\r\n\r\n{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT token\"]}\n"
    ), "{text}");
}

/// `POST /api/login` over HTTP/1.1 from the local address `from`: (status, Retry-After, body).
async fn login_from(
    addr: SocketAddr,
    from: std::net::IpAddr,
    password: &str,
) -> (u16, Option<String>, String) {
    use http_body_util::Full;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = serde_json::json!({ "username": USER, "password": password }).to_string();
    let request = http::Request::post("/api/login")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8(body.to_vec()).unwrap())
}

/// The example mounts login the way production code should: throttled, and tonic's transport
/// records the peer (`TcpConnectInfo`) that the default resolver reads, so the limit is per
/// client address (the 11th failure from one address is refused, another address logs in).
#[tokio::test]
async fn tonic_served_login_is_throttled_per_client_address() {
    let (addr, metrics) = server().await;
    let attacker: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    for _ in 0..10 {
        let (status, _, body) = login_from(addr, attacker, "guess").await;
        assert_eq!(
            (status, body.as_str()),
            (
                401,
                "{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Invalid authorization credentials: invalid username or password\"]}\n"
            )
        );
    }
    let (status, retry, body) = login_from(addr, attacker, PASSWORD).await;
    assert_eq!(
        (status, body.as_str()),
        (
            429,
            "{\"code\":429,\"message\":\"Too Many Requests\",\"details\":[\"Too many failed login attempts, try again later\"]}\n"
        )
    );
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((899..=900).contains(&retry), "Retry-After {retry}");
    let (status, _, _) = login_from(addr, "127.0.0.2".parse().unwrap(), PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(metrics.snapshot().throttled, 1);
}

// ------------------------------------------- authorization: an admin-only method

/// The example's server with an Argon2 store: `root` (role admin) and `bob` (no role); the
/// handle changes them at runtime.
async fn authz_server() -> (SocketAddr, Argon2Users) {
    let store = Argon2Store::new()
        .with_password("root", "root-pw")
        .unwrap()
        .with_password("bob", "bob-pw")
        .unwrap();
    let users = store.users();
    users.set_roles("root", ["admin"]).unwrap();
    (serve(store, Metrics::new()).await, users)
}

#[tokio::test]
async fn admin_only_method_is_permission_denied_for_others() {
    let (addr, _users) = authz_server().await;
    let mut client = client(addr).await;
    let bob = http_login(addr, "bob", "bob-pw").await.unwrap();
    let root = http_login(addr, "root", "root-pw").await.unwrap();

    let status = client
        .purge(authorized(hello(), &bob.access_token).unwrap())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "Insufficient permissions");

    let reply = client
        .purge(authorized(hello(), &root.access_token).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.subject, "root");
    assert_eq!(reply.message, "purged by root");

    // The other method stays open to any valid token; no token is UNAUTHENTICATED, not denied.
    let reply = client
        .get(authorized(hello(), &bob.access_token).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.into_inner().subject, "bob");
    let status = client
        .purge(tonic::Request::new(hello()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_role_granted_at_runtime_reaches_grpc_after_a_refresh() {
    let (addr, users) = authz_server().await;
    let mut client = client(addr).await;
    let bob = http_login(addr, "bob", "bob-pw").await.unwrap();
    users.set_roles("bob", ["admin"]).unwrap();
    // The old access token still lacks the role ...
    let status = client
        .purge(authorized(hello(), &bob.access_token).unwrap())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // ... the refreshed one has it.
    let access = refresh_over_http(addr, &bob.refresh_token).await;
    let reply = client
        .purge(authorized(hello(), &access).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.into_inner().subject, "bob");
}

/// `GET /api/login/refresh` over HTTP/1.1; the new access token.
async fn refresh_over_http(addr: SocketAddr, refresh_token: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let req = http::Request::get("/api/login/refresh")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {refresh_token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}
