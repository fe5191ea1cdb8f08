//! Authorization for gRPC over a real tonic server (the `grpc_server` example) and a real tonic
//! client: an admin-only method answers an admin and refuses everyone else with
//! `PERMISSION_DENIED` (`grpc-status: 7`), never `UNAUTHENTICATED`; the role comes from an
//! Argon2 store changed at runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/grpc_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod grpc_server;

use std::net::SocketAddr;

use grpc_server::proto::WhoamiRequest;
use grpc_server::{WhoamiClient, authorized, http_login};
use tonic::Code;
use tonic::transport::Channel;
use tower_jwt_login::metrics::Metrics;
use tower_jwt_login::store::{Argon2Store, Argon2Users};
use tower_jwt_login::{JwtConfig, JwtKey};

async fn server() -> (SocketAddr, Argon2Users) {
    let jwt = JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap();
    let store = Argon2Store::new()
        .with_password("root", "root-pw")
        .unwrap()
        .with_password("bob", "bob-pw")
        .unwrap();
    let users = store.users();
    users.set_roles("root", ["admin"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grpc_server::serve(
        listener,
        jwt,
        store,
        Metrics::new(),
        std::time::Duration::ZERO,
    ));
    (addr, users)
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
async fn admin_only_method_is_permission_denied_for_others() {
    let (addr, _users) = server().await;
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
    let (addr, users) = server().await;
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
    use http_body_util::BodyExt;
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
