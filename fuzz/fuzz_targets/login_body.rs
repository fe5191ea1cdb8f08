//! `LoginService` in-process with arbitrary bodies, content types, bearer headers and client
//! addresses, throttle on: every answer is 200 or a §2-shaped 400/401/413/429, never a panic.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_jwt_login::client_addr::ClientAddr;
use tower_jwt_login::login::LoginService;
use tower_jwt_login::store::PlaintextUser;
use tower_jwt_login::throttle::ThrottleConfig;

const CONTENT_TYPES: [&str; 6] = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
];

fn service() -> &'static LoginService<PlaintextUser> {
    static LOGIN: OnceLock<LoginService<PlaintextUser>> = OnceLock::new();
    LOGIN.get_or_init(|| {
        let throttle = ThrottleConfig::new(3, Duration::from_secs(60))
            .max_tracked_keys(64)
            .build()
            .expect("valid limits");
        LoginService::new(
            common::jwt().clone(),
            PlaintextUser::new("admin", "datarhei"),
        )
        .failure_delay(Duration::ZERO)
        .body_limit(4096)
        .throttle(throttle)
    })
}

fuzz_target!(|data: &[u8]| {
    let [ct, ip, flags, body @ ..] = data else {
        return;
    };
    let mut req = Request::post("/api/login");
    let content_type = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let body = if flags & 1 == 1 {
        // The body doubles as a bearer header value.
        if let Ok(value) = http::HeaderValue::from_bytes(body) {
            req = req.header("authorization", value);
        }
        Bytes::new()
    } else {
        Bytes::copy_from_slice(body)
    };
    let mut req = req.body(Full::new(body)).expect("request");
    if flags & 2 == 2 {
        let addr = SocketAddr::from(([203, 0, 113, *ip], 40000));
        req.extensions_mut().insert(ClientAddr(addr));
    }
    let res = common::runtime()
        .block_on(service().clone().oneshot(req))
        .expect("infallible");
    let status = res.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 401 | 413 | 429),
        "status {status}"
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    if status == 429 {
        assert!(res.headers().contains_key("retry-after"));
    }
    let body = common::runtime()
        .block_on(res.into_body().collect())
        .expect("body")
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    if status == 200 {
        assert!(v["access_token"].is_string() && v["refresh_token"].is_string());
    } else {
        assert_eq!(v["code"].as_u64(), Some(u64::from(status)));
        assert!(v["message"].is_string());
        let details = v["details"].as_array().expect("details array");
        assert_eq!(details.len(), 1);
        let detail = details[0].as_str().expect("string detail");
        assert!(!detail.contains("datarhei"), "password echoed: {detail}");
    }
});
