//! A tonic gRPC server guarded by one `LoginKit` layer, with Core's HTTP login on the same port,
//! and a client that logs in over HTTP and calls the service with the access token as gRPC metadata.
//!
//! ```text
//! cargo run --features tonic --example grpc_server                       # the server
//! cargo run --features tonic --example grpc_server -- call admin <password>   # the client
//! ```
//!
//! The server listens on `GRPC_ADDRESS` (default `127.0.0.1:50051`) and prints the generated
//! password of user `admin` (or uses `ADMIN_PASSWORD`). It serves, on one port:
//!
//! - `POST /api/login` and `GET /api/login/refresh` over HTTP/1.1 (Core's login, public),
//!   served by the layer itself (`Server::builder().layer(login)`, the whole server wrapped):
//!   failed logins wait Core's 5 s and are throttled per account and client address (the
//!   default; tonic's transport records the peer as `TcpConnectInfo`, which the default
//!   client-address resolver reads);
//! - the gRPC service `demo.Whoami` over HTTP/2, method `Get`: answers the caller's subject.
//!   Every gRPC call needs `authorization: Bearer <access token>` metadata; without one (or with a
//!   refresh token) the client gets `Status` `Unauthenticated`;
//! - method `Purge`, for admins only: the layer's policy requires the role `admin`
//!   (`PathPolicy::require`), so a caller without it gets `Status` `PermissionDenied`
//!   (`grpc-status: 7`) before the handler runs; the handler checks again with
//!   `ClaimsExt::require_role` (the pattern for a check that depends on the request). User
//!   `admin` has the role (`Argon2Users::set_roles`); the refresh route re-reads it from the store.
//!
//! The service is written by hand — no `.proto` file, no `protoc`, no build script — with
//! `prost`'s derive for the messages and `tonic-prost`'s codec, exactly what `tonic-build` would
//! generate from:
//!
//! ```proto
//! syntax = "proto3";
//! package demo;
//! service Whoami {
//!   rpc Get (WhoamiRequest) returns (WhoamiReply);
//!   rpc Purge (WhoamiRequest) returns (WhoamiReply);
//! }
//! message WhoamiRequest { string greeting = 1; }
//! message WhoamiReply { string subject = 1; string message = 2; }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tower_jwt_login::Jwt;
use tower_jwt_login::auth::Requirement;
use tower_jwt_login::kit::LoginKit;
use tower_jwt_login::metrics::Metrics;
use tower_jwt_login::store::CredentialStore;
use tower_jwt_login::tonic::ClaimsExt;

/// The messages (what `prost-build` would generate).
pub mod proto {
    /// The request of `demo.Whoami/Get`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WhoamiRequest {
        /// Anything; echoed in the reply.
        #[prost(string, tag = "1")]
        pub greeting: String,
    }

    /// The reply of `demo.Whoami/Get`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WhoamiReply {
        /// The `sub` of the caller's access token.
        #[prost(string, tag = "1")]
        pub subject: String,
        /// A greeting for the caller.
        #[prost(string, tag = "2")]
        pub message: String,
    }
}

use proto::{WhoamiReply, WhoamiRequest};

const GET_PATH: &str = "/demo.Whoami/Get";
/// The admin-only method.
pub const PURGE_PATH: &str = "/demo.Whoami/Purge";

/// The handler of `demo.Whoami/Purge`: the layer let only callers with the role `admin` through;
/// the handler checks again (a check a handler can make for request-specific rules).
pub async fn purge(request: Request<WhoamiRequest>) -> Result<Response<WhoamiReply>, Status> {
    let subject = request.require_role("admin")?.subject().to_owned();
    Ok(Response::new(WhoamiReply {
        message: format!("purged by {subject}"),
        subject,
    }))
}

/// The handler of `demo.Whoami/Get`. The layer has already refused calls without a valid access
/// token; here the verified claims sit in the request extensions.
pub async fn whoami(request: Request<WhoamiRequest>) -> Result<Response<WhoamiReply>, Status> {
    let subject = request.require_claims()?.subject().to_owned();
    let greeting = request.into_inner().greeting;
    Ok(Response::new(WhoamiReply {
        message: format!("{greeting}, {subject}"),
        subject,
    }))
}

/// The `demo.Whoami` service as a tower service (what `tonic-build` would generate).
#[derive(Debug, Clone, Default)]
pub struct WhoamiServer;

impl NamedService for WhoamiServer {
    const NAME: &'static str = "demo.Whoami";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<B> tower::Service<http::Request<B>> for WhoamiServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GET_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(tower::service_fn(whoami), req).await)
            })
        } else if req.uri().path() == PURGE_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(tower::service_fn(purge), req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// The gRPC client of `demo.Whoami` (what `tonic-build` would generate).
#[derive(Debug, Clone)]
pub struct WhoamiClient {
    inner: tonic::client::Grpc<Channel>,
}

impl WhoamiClient {
    /// A client on an HTTP/2 channel.
    pub fn new(channel: Channel) -> Self {
        WhoamiClient {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    /// Calls `demo.Whoami/Get`.
    pub async fn get(
        &mut self,
        request: Request<WhoamiRequest>,
    ) -> Result<Response<WhoamiReply>, Status> {
        self.unary(request, GET_PATH).await
    }

    /// Calls `demo.Whoami/Purge` (admins only).
    pub async fn purge(
        &mut self,
        request: Request<WhoamiRequest>,
    ) -> Result<Response<WhoamiReply>, Status> {
        self.unary(request, PURGE_PATH).await
    }

    /// One unary call to `path`, once the channel is ready.
    async fn unary(
        &mut self,
        request: Request<WhoamiRequest>,
        path: &'static str,
    ) -> Result<Response<WhoamiReply>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("service not ready: {e}")))?;
        let path = http::uri::PathAndQuery::from_static(path);
        self.inner
            .unary(request, path, tonic_prost::ProstCodec::default())
            .await
    }
}

/// The whole server on `listener`: Core's login routes over HTTP and `demo.Whoami` over gRPC,
/// all behind one `JwtAuthLayer` whose policy makes only the login routes public. Failed logins
/// wait `failure_delay` (Core: 5 s) and are throttled per account and client address.
pub async fn serve<S: CredentialStore>(
    listener: TcpListener,
    jwt: Jwt,
    store: S,
    metrics: Metrics,
    failure_delay: Duration,
) -> Result<(), BoxError> {
    // One layer for the whole login: `POST /api/login` and `GET /api/login/refresh` over
    // HTTP/1.1, every gRPC method guarded. Throttled by default (10 failures per account and
    // address in 15 minutes; the address is the TCP peer from tonic's `TcpConnectInfo`); the
    // refresh route asks the store for the caller's current roles.
    let login = LoginKit::new(jwt, store)
        .failure_delay(failure_delay)
        .metrics(metrics)
        .require(PURGE_PATH, Requirement::role("admin"))
        .build()?;
    Server::builder()
        // HTTP/1.1 for the login routes, HTTP/2 (gRPC) for the rest, on the same port.
        .accept_http1(true)
        .layer(login)
        .add_service(WhoamiServer)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}

/// The login answer.
#[derive(Debug, serde::Deserialize)]
pub struct Tokens {
    /// The access token, for gRPC metadata.
    pub access_token: String,
    /// The refresh token, for `GET /api/login/refresh`.
    pub refresh_token: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Logs in over HTTP/1.1 (`POST /api/login`) and returns the token pair.
pub async fn http_login(
    addr: SocketAddr,
    username: &str,
    password: &str,
) -> Result<Tokens, BoxError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let request = http::Request::post("/api/login")
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!("login failed: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// `Request<WhoamiRequest>` with `authorization: Bearer <token>` metadata.
pub fn authorized(
    message: WhoamiRequest,
    access_token: &str,
) -> Result<Request<WhoamiRequest>, BoxError> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {access_token}").parse()?);
    Ok(request)
}

/// The client side: log in over HTTP, then call `demo.Whoami/Get` with the access token.
pub async fn call(
    addr: SocketAddr,
    username: &str,
    password: &str,
) -> Result<WhoamiReply, BoxError> {
    let tokens = http_login(addr, username, password).await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = WhoamiClient::new(channel);
    let request = authorized(
        WhoamiRequest {
            greeting: "hello".into(),
        },
        &tokens.access_token,
    )?;
    Ok(client.get(request).await?.into_inner())
}

fn address() -> Result<SocketAddr, BoxError> {
    let raw = std::env::var("GRPC_ADDRESS").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    Ok(raw.parse()?)
}

async fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = address()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => {
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let p = tower_jwt_login::config::random_password();
                    println!("login with username \"admin\" and the generated password {p}");
                    p
                }
            };
            let store =
                tower_jwt_login::store::Argon2Store::new().with_password("admin", &password)?;
            store.users().set_roles("admin", ["admin"])?;
            let jwt = tower_jwt_login::JwtConfig::new(tower_jwt_login::JwtKey::random()).build()?;
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(address = %listener.local_addr()?, "grpc_server listening (HTTP/1.1 login, gRPC)");
            serve(listener, jwt, store, Metrics::new(), Duration::from_secs(5)).await?;
            Ok(())
        }
        ["call", username, password] => {
            let reply = call(addr, username, password).await?;
            println!("subject: {}\nmessage: {}", reply.subject, reply.message);
            Ok(())
        }
        _ => Err("usage: grpc_server [serve] | grpc_server call <username> <password>".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
