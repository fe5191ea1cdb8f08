//! docs/protocol.md §1–§4 over real HTTP against the example server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn login_body(user: &str, pass: &str) -> String {
    format!("{{\"username\":\"{user}\",\"password\":\"{pass}\"}}")
}

async fn server() -> std::net::SocketAddr {
    spawn_core(core_config(Duration::ZERO)).await
}

// ---------------------------------------------------------------- §1 endpoints

#[tokio::test]
async fn login_answers_token_pair_as_compact_json_with_newline() {
    let addr = server().await;
    let reply = Req::post("/api/login")
        .json(login_body(USER, PASSWORD))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap();
    assert_eq!(
        reply.text(),
        format!("{{\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\"}}\n")
    );
    assert_eq!(v.as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn login_content_type_may_carry_parameters_and_unknown_fields_are_ignored() {
    let addr = server().await;
    let reply = Req::post("/api/login")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(r#"{"username":"admin","password":"datarhei","remember":true,"extra":{"a":[1,2]}}"#)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn protected_route_with_access_token_answers_the_route() {
    let addr = server().await;
    let (access, _) = login(addr).await;
    let reply = Req::get("/api/v3/process").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "[]\n");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let addr = server().await;
    let (access, _) = login(addr).await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let reply = Req::get("/api/v3/process")
            .header("Authorization", format!("{scheme} {access}"))
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "scheme {scheme}");
    }
}

#[tokio::test]
async fn protected_route_without_token_is_401_with_challenge() {
    let addr = server().await;
    let reply = Req::get("/api/v3/process").send(addr).await;
    reply.assert_unauthorized(false);
}

#[tokio::test]
async fn token_is_never_taken_from_query_or_cookie() {
    let addr = server().await;
    let (access, _) = login(addr).await;
    let reply = Req::get(&format!("/api/v3/process?token={access}"))
        .send(addr)
        .await;
    reply.assert_unauthorized(false);
    let reply = Req::get(&format!("/api/v3/process?access_token={access}"))
        .send(addr)
        .await;
    reply.assert_unauthorized(false);
    let reply = Req::get("/api/v3/process")
        .header("Cookie", format!("token={access}; access_token={access}"))
        .send(addr)
        .await;
    reply.assert_unauthorized(false);
}

#[tokio::test]
async fn refresh_issues_a_fresh_access_token_only() {
    let addr = server().await;
    let (access, refresh) = login(addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new second: iat/exp must move
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    let new_access = v["access_token"].as_str().unwrap();
    assert_eq!(
        reply.text(),
        format!("{{\"access_token\":\"{new_access}\"}}\n")
    );
    assert_eq!(v.as_object().unwrap().len(), 1);

    let old: serde_json::Value = serde_json::from_str(&decode_parts(&access).1).unwrap();
    let new: serde_json::Value = serde_json::from_str(&decode_parts(new_access).1).unwrap();
    assert_eq!(new["sub"], "admin");
    assert_eq!(new["usefor"], "access");
    assert_eq!(new["iss"], "datarhei-core");
    assert_eq!(new["exi"], 600);
    assert!(new["iat"].as_u64().unwrap() > old["iat"].as_u64().unwrap());
    assert_eq!(
        new["exp"].as_u64().unwrap(),
        new["iat"].as_u64().unwrap() + 600
    );
    assert_ne!(new["jti"], old["jti"]);

    let reply = Req::get("/api/v3/process")
        .bearer(new_access)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn refresh_refuses_access_tokens_and_missing_tokens() {
    let addr = server().await;
    let (access, _) = login(addr).await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&access)
        .send(addr)
        .await;
    reply.assert_invalid_token("wrong token use");
    let reply = Req::get("/api/login/refresh").send(addr).await;
    reply.assert_unauthorized(false);
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let addr = server().await;
    let (_, refresh) = login(addr).await;
    let reply = Req::get("/api/v3/process")
        .bearer(&refresh)
        .send(addr)
        .await;
    reply.assert_invalid_token("wrong token use");
}

#[tokio::test]
async fn auth_runs_before_routing() {
    let addr = server().await;
    let reply = Req::get("/api/v3/nope").send(addr).await;
    reply.assert_unauthorized(false);
    let reply = Req::new("DELETE", "/api/v3/process").send(addr).await;
    reply.assert_unauthorized(false);

    let (access, _) = login(addr).await;
    let reply = Req::get("/api/v3/nope").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), NOT_FOUND);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // A known path with another method is 404 too, never 405.
    let reply = Req::new("DELETE", "/api/v3/process")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), NOT_FOUND);
}

#[tokio::test]
async fn login_paths_are_public_only_for_their_own_method() {
    let addr = server().await;
    for (method, path) in [
        ("GET", "/api/login"),
        ("PUT", "/api/login"),
        ("DELETE", "/api/login"),
        ("POST", "/api/login/refresh"),
        ("PUT", "/api/login/refresh"),
    ] {
        let reply = Req::new(method, path).send(addr).await;
        assert_eq!(reply.status, 401, "{method} {path}");
        reply.assert_unauthorized(false);
    }
    let (access, _) = login(addr).await;
    for (method, path) in [("GET", "/api/login"), ("POST", "/api/login/refresh")] {
        let reply = Req::new(method, path).bearer(&access).send(addr).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.text(), NOT_FOUND);
    }
}

// ---------------------------------------------------------------- §2 error body

#[tokio::test]
async fn head_gets_status_and_headers_without_body() {
    let addr = server().await;
    let reply = Req::new("HEAD", "/api/v3/process").send(addr).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn errors_never_echo_token_or_password() {
    let addr = server().await;
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdG9rZW4ifQ.c2lnbmF0dXJl";
    let reply = Req::get("/api/v3/process").bearer(token).send(addr).await;
    reply.assert_invalid_token("invalid signature");
    assert!(!reply.text().contains("eyJ"));
    assert!(!reply.header("www-authenticate").unwrap().contains("eyJ"));
    let reply = Req::post("/api/login")
        .json(login_body("admin", "hunter2-secret"))
        .send(addr)
        .await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    assert!(!reply.text().contains("hunter2"));
    assert!(reply.headers.iter().all(|(_, v)| !v.contains("hunter2")));
}

#[tokio::test]
async fn unknown_path_outside_api_is_404_in_error_shape() {
    let addr = server().await;
    let reply = Req::get("/nope").send(addr).await;
    reply.assert_error(404, "Not Found");
    let reply = Req::get("/ping").send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "pong");
}

// ---------------------------------------------------------------- §3 login outcomes

#[tokio::test]
async fn login_outcomes_table() {
    let addr = server().await;
    let json = |body: &str| Req::post("/api/login").json(body);
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "wrong password",
            json(&login_body(USER, "wrong")),
            401,
            INVALID_CREDENTIALS,
        ),
        (
            "unknown user",
            json(&login_body("root", PASSWORD)),
            401,
            INVALID_CREDENTIALS,
        ),
        (
            "password case",
            json(&login_body(USER, "DATARHEI")),
            401,
            INVALID_CREDENTIALS,
        ),
        (
            "missing password",
            json(r#"{"username":"admin"}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "missing username",
            json(r#"{"password":"datarhei"}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "empty username",
            json(r#"{"username":"","password":"datarhei"}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "empty password",
            json(r#"{"username":"admin","password":""}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "null password",
            json(r#"{"username":"admin","password":null}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "number password",
            json(r#"{"username":"admin","password":123}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "array username",
            json(r#"{"username":["admin"],"password":"datarhei"}"#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "malformed json",
            json(r#"{"username":"admin","password":"datarhei""#),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "json array",
            json(r#"["admin","datarhei"]"#),
            400,
            MISSING_CREDENTIALS,
        ),
        ("empty body", json(""), 400, MISSING_CREDENTIALS),
        (
            "no content type",
            Req::post("/api/login").body(login_body(USER, PASSWORD)),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "form content type",
            Req::post("/api/login")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("username=admin&password=datarhei"),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "text/plain with json",
            Req::post("/api/login")
                .header("Content-Type", "text/plain")
                .body(login_body(USER, PASSWORD)),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "bearer that is no auth0 token",
            Req::post("/api/login").bearer("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"),
            400,
            MISSING_CREDENTIALS,
        ),
        (
            "bearer with empty credentials body",
            Req::post("/api/login")
                .bearer("abc.def.ghi")
                .json(r#"{"username":"","password":""}"#),
            400,
            MISSING_CREDENTIALS,
        ),
    ];
    for (name, req, status, body) in cases {
        let reply = req.send(addr).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert_eq!(reply.text(), body, "{name}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{name}"
        );
        assert_eq!(
            reply.header("www-authenticate"),
            None,
            "{name}: login errors carry no challenge"
        );
    }
    // Right credentials still work afterwards.
    let reply = json(&login_body(USER, PASSWORD)).send(addr).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn failed_logins_are_delayed_and_successes_are_not() {
    let delay = Duration::from_millis(400);
    let addr = spawn_core(core_config(delay)).await;
    for body in [login_body(USER, "wrong"), "{}".to_owned()] {
        let start = Instant::now();
        let reply = Req::post("/api/login").json(&body).send(addr).await;
        assert!(reply.status == 401 || reply.status == 400);
        assert!(
            start.elapsed() >= delay,
            "failure answered after {:?}",
            start.elapsed()
        );
    }
    let start = Instant::now();
    let reply = Req::post("/api/login")
        .json(login_body(USER, PASSWORD))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        start.elapsed() < delay,
        "success took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn oversized_login_body_is_413_in_error_shape() {
    let addr = server().await;
    let big = format!(
        "{{\"username\":\"admin\",\"password\":\"{}\"}}",
        "x".repeat(64 * 1024)
    );
    let reply = Req::post("/api/login").json(&big).send(addr).await;
    reply.assert_error(413, "Request body too large");

    // Chunked, without Content-Length: the limit holds while reading.
    let mut raw = b"POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        raw.extend_from_slice(format!("{:x}\r\n{}\r\n", 1024, "y".repeat(1024)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = send_raw(addr, &raw, false).await;
    reply.assert_error(413, "Request body too large");
}

// ---------------------------------------------------------------- §4 tokens

#[tokio::test]
async fn minted_tokens_match_core_byte_for_byte() {
    let addr = server().await;
    let before = now();
    let (access, refresh) = login(addr).await;
    let after = now();

    let (ah, ac) = decode_parts(&access);
    let (rh, rc) = decode_parts(&refresh);
    assert_eq!(ah, CORE_HEADER);
    assert_eq!(rh, CORE_HEADER);
    assert!(access.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    for token in [&access, &refresh] {
        assert!(!token.contains('='), "no padding");
        assert!(!token.contains('+') && !token.contains('/'), "url alphabet");
    }

    let a: serde_json::Value = serde_json::from_str(&ac).unwrap();
    let r: serde_json::Value = serde_json::from_str(&rc).unwrap();
    let iat = a["iat"].as_u64().unwrap();
    assert!(before <= iat && iat <= after);
    assert_eq!(
        r["iat"].as_u64().unwrap(),
        iat,
        "both tokens of a login share iat"
    );
    let (ajti, rjti) = (a["jti"].as_str().unwrap(), r["jti"].as_str().unwrap());
    assert_ne!(ajti, rjti);
    for jti in [ajti, rjti] {
        assert_uuid_v4(jti);
    }
    // Exact bytes: key order, types, no whitespace.
    assert_eq!(
        ac,
        format!(
            "{{\"exi\":600,\"exp\":{},\"iat\":{iat},\"iss\":\"datarhei-core\",\"jti\":\"{ajti}\",\"sub\":\"admin\",\"usefor\":\"access\"}}",
            iat + 600
        )
    );
    assert_eq!(
        rc,
        format!(
            "{{\"exi\":86400,\"exp\":{},\"iat\":{iat},\"iss\":\"datarhei-core\",\"jti\":\"{rjti}\",\"sub\":\"admin\",\"usefor\":\"refresh\"}}",
            iat + 86400
        )
    );
}

fn assert_uuid_v4(s: &str) {
    let b = s.as_bytes();
    assert_eq!(b.len(), 36, "{s}");
    for (i, c) in b.iter().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(*c, b'-', "{s}");
        } else {
            assert!(c.is_ascii_digit() || (b'a'..=b'f').contains(c), "{s}");
        }
    }
    assert_eq!(b[14], b'4', "version 4: {s}");
    assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "variant: {s}");
}

#[tokio::test]
async fn core_compatible_key_is_username_password_secret() {
    let addr = server().await;
    let (access, refresh) = login(addr).await;
    // An independent HMAC-SHA256 (RFC 2104 over sha2) with Core's key reproduces the signatures.
    for token in [&access, &refresh] {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let tag = hmac_sha256(b"admindatarheisecretsecret", input.as_bytes());
        use base64::Engine;
        assert_eq!(
            sig,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        );
    }
    // jsonwebtoken agrees too.
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let key = jsonwebtoken::DecodingKey::from_secret(b"admindatarheisecretsecret");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["datarhei-core"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(&access, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], "admin");
}

#[tokio::test]
async fn tokens_minted_like_core_are_accepted() {
    let addr = server().await;
    // As a real Core would mint it, signed independently of the crate.
    let iat = now();
    let access = sign_hs256(&core_key(), CORE_HEADER, &core_claims("access", iat, 600));
    let reply = Req::get("/api/v3/process").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
    let refresh = sign_hs256(
        &core_key(),
        CORE_HEADER,
        &core_claims("refresh", iat, 86400),
    );
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    // Another secret is another key.
    let other = sign_hs256(
        b"admindatarheiothersecret",
        CORE_HEADER,
        &core_claims("access", iat, 600),
    );
    Req::get("/api/v3/process")
        .bearer(&other)
        .send(addr)
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn strict_validation_rows() {
    let addr = server().await;
    let key = core_key();
    let t = now();
    let claims = |extra: &str| {
        format!(
            "{{\"exi\":600,\"exp\":{},\"iat\":{t},\"iss\":\"datarhei-core\",\"jti\":\"x\",\"sub\":\"admin\",\"usefor\":\"access\"{extra}}}",
            t + 600
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "HS384 header with Core's key",
            sign_hs256(&key, r#"{"alg":"HS384","typ":"JWT"}"#, &claims("")),
        ),
        (
            "no exp",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(r#"{{"iat":{t},"iss":"datarhei-core","sub":"admin","usefor":"access"}}"#),
            ),
        ),
        (
            "expired",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":"access"}}"#,
                    t - 1
                ),
            ),
        ),
        (
            "nbf in the future",
            sign_hs256(&key, CORE_HEADER, &claims(&format!(",\"nbf\":{}", t + 60))),
        ),
        (
            "iat in the future",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iat":{},"iss":"datarhei-core","sub":"admin","usefor":"access"}}"#,
                    t + 600,
                    t + 60
                ),
            ),
        ),
        (
            "wrong issuer",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"evil","sub":"admin","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "no issuer",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(r#"{{"exp":{},"sub":"admin","usefor":"access"}}"#, t + 600),
            ),
        ),
        (
            "usefor number",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":1}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "usefor missing",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "sub number",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":7,"usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "sub missing",
            sign_hs256(
                &key,
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "crit header",
            sign_hs256(
                &key,
                r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
                &claims(""),
            ),
        ),
    ];
    for (name, token) in cases {
        let reply = Req::get("/api/v3/process").bearer(&token).send(addr).await;
        assert_eq!(reply.status, 401, "{name}");
        reply.assert_unauthorized(true);
    }
    // Control: the same construction with nothing wrong passes.
    let good = sign_hs256(&key, CORE_HEADER, &claims(""));
    assert_eq!(
        Req::get("/api/v3/process")
            .bearer(&good)
            .send(addr)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn discovery_minimal_without_token_full_with_one() {
    let addr = server().await;
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        "{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"version\":{\"number\":\"16.0.0\"}}\n"
    );
    let reply = Req::get("/api")
        .bearer("garbage.token.here")
        .send(addr)
        .await;
    assert_eq!(
        reply.status, 200,
        "an invalid token still gets the minimal about"
    );
    assert!(reply.json().get("id").is_none());

    let (access, refresh) = login(addr).await;
    let reply = Req::get("/api").bearer(&refresh).send(addr).await;
    assert!(
        reply.json().get("id").is_none(),
        "a refresh token is not an access token"
    );
    let reply = Req::get("/api").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["app"], "datarhei-core");
    assert_eq!(v["auths"], serde_json::json!(["localjwt"]));
    assert_eq!(v["version"]["number"], "16.16.0");
    assert!(v["id"].is_string() && v["name"].is_string());
    let created = v["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "RFC 3339 seconds: {created}");
    assert!(created.ends_with('Z'));
    assert!(v["uptime_seconds"].is_u64());
}

#[tokio::test]
async fn auth_disabled_serves_everything_without_login_routes() {
    let mut config = core_config(Duration::ZERO);
    config.enable = false;
    let addr = spawn_core(config).await;
    assert_eq!(Req::get("/api/v3/process").send(addr).await.status, 200);
    let reply = Req::post("/api/login")
        .json(login_body(USER, PASSWORD))
        .send(addr)
        .await;
    reply.assert_error(404, "Not Found");
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(reply.json()["auths"], serde_json::json!([]));
}

/// The example binary itself, as `cargo run --example core_server` starts it, with its stdout a
/// pipe (as a deployment's log file or collector): the log worker writes through a buffer, yet
/// each line shows as soon as the server is quiet — the listening line before any request, the
/// one audit line of a login right after it — and a pipe gets no colour codes and no secret.
#[tokio::test]
async fn example_binary_writes_each_audit_line_at_once_without_colour() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    // target/<profile>/deps/protocol-… → target/<profile>/examples/core_server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/core_server");
    assert!(
        bin.exists(),
        "{} is missing: run the whole suite (`cargo test --all-features`), which builds the examples",
        bin.display()
    );
    let mut child = tokio::process::Command::new(&bin)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CORE_ADDRESS", "127.0.0.1:0")
        .env("CORE_API_AUTH_ENABLE", "true")
        .env("CORE_API_AUTH_USERNAME", USER)
        .env("CORE_API_AUTH_PASSWORD", PASSWORD)
        .env("CORE_API_AUTH_JWT_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut next_line = async |seen: &mut Vec<String>, what: &str| -> String {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {what} line within 10 s; stdout so far: {seen:#?}"))
                .unwrap()
                .unwrap_or_else(|| panic!("stdout closed before the {what} line: {seen:#?}"));
            seen.push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
    };

    let listening = next_line(&mut seen, "core_server listening").await;
    let addr: std::net::SocketAddr = listening
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let reply = Req::post("/api/login")
        .json(login_body(USER, PASSWORD))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    let audit = next_line(&mut seen, "tower_jwt_login::audit").await;
    for field in [
        " INFO ",
        "login outcome=\"success\"",
        "enduser.id=\"admin\"",
        "client.address=127.0.0.1",
        "http.request.method=\"POST\"",
        "via=\"password\"",
    ] {
        assert!(audit.contains(field), "{field:?} missing in {audit}");
    }
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    for line in &seen {
        assert!(
            !line.contains('\u{1b}'),
            "colour codes into a pipe: {line:?}"
        );
        assert!(!line.contains(PASSWORD) && !line.contains(SECRET) && !line.contains(&token));
    }
}
