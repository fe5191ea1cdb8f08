//! Shared test harness: the example server on 127.0.0.1:0 and a raw HTTP/1.1 client that can
//! send anything (duplicate headers, odd bytes, huge bodies).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_jwt_login::config::CoreAuthConfig;

#[path = "../../examples/core_server.rs"]
#[allow(dead_code, unreachable_pub)]
pub mod core_server;

pub const USER: &str = "admin";
pub const PASSWORD: &str = "datarhei";
pub const SECRET: &str = "secretsecret";
pub const INVALID_TOKEN: &str =
    "{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT token\"]}\n";
pub const MISSING_CREDENTIALS: &str = "{\"code\":400,\"message\":\"Bad Request\",\"details\":[\"Missing authorization credentials\"]}\n";
pub const INVALID_CREDENTIALS: &str = "{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Invalid authorization credentials: invalid username or password\"]}\n";
/// Every RFC 6750 `error_description` the crate sends for a presented token.
pub const TOKEN_ERROR_DESCRIPTIONS: [&str; 17] = [
    "more than one Authorization header",
    "invalid Authorization header",
    "token too long",
    "malformed token",
    "unsupported algorithm",
    "unsupported token header",
    "invalid signature",
    "unknown key id",
    "invalid claims",
    "missing claim",
    "token expired",
    "token not yet valid",
    "token issued in the future",
    "invalid issuer",
    "wrong token use",
    "token revoked",
    "token without session",
];
pub const NOT_FOUND: &str =
    "{\"code\":404,\"message\":\"Not Found\",\"details\":[\"Not Found\"]}\n";

/// Core's configuration for admin/datarhei/secretsecret with the given failure delay.
pub fn core_config(delay: Duration) -> CoreAuthConfig {
    let mut c = CoreAuthConfig::default()
        .enable(true)
        .username(USER)
        .password(PASSWORD)
        .jwt_secret(SECRET);
    c.login_failure_delay = delay;
    c
}

/// The example server (the very app `cargo run --example core_server` serves) on 127.0.0.1:0.
pub async fn spawn_core(config: CoreAuthConfig) -> SocketAddr {
    let app = core_server::app(&config).expect("app");
    spawn_router(app).await
}

pub async fn spawn_router(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // With the peer address, like `main`: the login throttle counts per client address.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The one value of header `name` (case-insensitive); panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "header {name} appears twice");
        first
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }

    /// Asserts the docs/protocol.md §2 error: status, exact body, `Content-Type`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, detail: &str) {
        assert_eq!(
            self.status,
            status,
            "status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let reason = http::StatusCode::from_u16(status)
            .unwrap()
            .canonical_reason()
            .unwrap();
        let expected = format!(
            "{{\"code\":{status},\"message\":\"{reason}\",\"details\":[{}]}}\n",
            serde_json::to_string(detail).unwrap()
        );
        assert_eq!(self.text(), expected);
    }

    /// Asserts the protected-route 401 with its `WWW-Authenticate` challenge: `Bearer` without
    /// a token; with one, `Bearer error="invalid_token"` and one of the crate's fixed
    /// `error_description`s (use [`Reply::assert_invalid_token`] to name the exact one).
    #[track_caller]
    pub fn assert_unauthorized(&self, token_presented: bool) {
        self.assert_error(401, "Missing or invalid JWT token");
        let challenge = self.header("www-authenticate");
        if !token_presented {
            assert_eq!(challenge, Some("Bearer"));
            return;
        }
        let challenge = challenge.expect("www-authenticate");
        let description = challenge
            .strip_prefix("Bearer error=\"invalid_token\", error_description=\"")
            .and_then(|rest| rest.strip_suffix('"'));
        assert!(
            description.is_some_and(|d| TOKEN_ERROR_DESCRIPTIONS.contains(&d)),
            "challenge {challenge:?}"
        );
    }

    /// Asserts the protected-route 401 for a presented token refused with `description`.
    #[track_caller]
    pub fn assert_invalid_token(&self, description: &str) {
        self.assert_error(401, "Missing or invalid JWT token");
        assert_eq!(
            self.header("www-authenticate"),
            Some(
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
                    .as_str()
            )
        );
    }
}

/// A request written byte for byte.
#[derive(Debug, Clone)]
pub struct Req {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    content_length: bool,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Req {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: method == "POST" || method == "PUT",
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self.content_length = true;
        self
    }
    /// A JSON login body with `Content-Type: application/json`.
    pub fn json(self, body: impl AsRef<[u8]>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if self.content_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    pub async fn send(&self, addr: SocketAddr) -> Reply {
        send_raw(addr, &self.to_bytes(), self.method == "HEAD").await
    }

    /// Sends from the local address `from` (any of 127.0.0.0/8 works on Linux loopback), so
    /// the server sees another client address.
    pub async fn send_from(&self, addr: SocketAddr, from: std::net::IpAddr) -> Reply {
        send_raw_from(addr, Some(from), &self.to_bytes(), self.method == "HEAD").await
    }
}

/// Writes `raw` and reads the whole response (the server closes: `Connection: close`).
pub async fn send_raw(addr: SocketAddr, raw: &[u8], head: bool) -> Reply {
    send_raw_from(addr, None, raw, head).await
}

/// [`send_raw`] from the local address `from`.
pub async fn send_raw_from(
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
    raw: &[u8],
    head: bool,
) -> Reply {
    let mut stream = match from {
        None => TcpStream::connect(addr).await.unwrap(),
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(ip, 0)).unwrap();
            socket.connect(addr).await.unwrap()
        }
    };
    // The server may answer (413) before reading the whole body; ignore a reset while writing.
    let _ = stream.write_all(raw).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(reply) = parse_complete(&buf, head) {
                        return reply;
                    }
                }
            }
        }
        parse_complete(&buf, head)
            .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(&buf)))
    })
    .await;
    read.expect("response within 30 s")
}

fn parse_complete(buf: &[u8], head: bool) -> Option<Reply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body_start = end + 4;
    // RFC 9110 §6.4.1: no content in 1xx, 204 and 304 answers, whatever the headers.
    let body = if head || status == 204 || status == 304 || status < 200 {
        Vec::new()
    } else {
        let len = len?;
        if buf.len() < body_start + len {
            return None;
        }
        buf[body_start..body_start + len].to_vec()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Logs in as admin/datarhei; returns (access, refresh).
pub async fn login(addr: SocketAddr) -> (String, String) {
    login_at(addr, "/api/login", USER, PASSWORD).await
}

/// Logs in at `path` as `user`; asserts 200 and returns (access, refresh).
pub async fn login_at(
    addr: SocketAddr,
    path: &str,
    user: &str,
    password: &str,
) -> (String, String) {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    let reply = Req::post(path).json(body).send(addr).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The decoded (header, claims) JSON text of a token.
pub fn decode_parts(token: &str) -> (String, String) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (String::from_utf8(h).unwrap(), String::from_utf8(c).unwrap())
}

/// HMAC-SHA256 written out from the RFC 2104 definition over `sha2` alone — independent of the
/// `hmac` crate the library uses.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Signs `header.claims` (JSON texts) with HS256 under `key`, independently of the crate.
pub fn sign_hs256(key: &[u8], header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let tag = hmac_sha256(key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Core's key for admin/datarhei/secretsecret.
pub fn core_key() -> Vec<u8> {
    format!("{USER}{PASSWORD}{SECRET}").into_bytes()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Core-shaped claims with the given overrides already applied by the caller.
pub fn core_claims(usefor: &str, iat: u64, ttl: u64) -> String {
    format!(
        "{{\"exi\":{ttl},\"exp\":{},\"iat\":{iat},\"iss\":\"datarhei-core\",\"jti\":\"6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a\",\"sub\":\"admin\",\"usefor\":\"{usefor}\"}}",
        iat + ttl
    )
}

pub const CORE_HEADER: &str = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
