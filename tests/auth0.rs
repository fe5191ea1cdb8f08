//! Auth0 login (docs/protocol.md §5) end to end: the example server with a [`JwksProvider`] whose
//! JWKS comes from a loopback server (plain HTTP through the URL override, and HTTPS with a test
//! CA), keys generated here. Every refusal asserts the exact body and that no token was issued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth0_support;
mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use auth0_support::*;
use common::{MISSING_CREDENTIALS, Reply, Req, decode_parts, login};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tower_jwt_login::auth0::{Auth0Tenant, HttpsFetcher, JwksProvider};

async fn auth0_login(addr: SocketAddr, token: &str) -> Reply {
    Req::post("/api/login").bearer(token).send(addr).await
}

/// A server whose tenant serves `jwks` over plain loopback HTTP.
async fn server_with(jwks: Value) -> (SocketAddr, JwksServer) {
    let jwks_server = JwksServer::start(Mode::Serve(jwks)).await;
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks_server.url())], fast_settings())).await;
    (addr, jwks_server)
}

async fn server() -> (SocketAddr, JwksServer) {
    server_with(standard_jwks()).await
}

#[track_caller]
fn assert_refused(reply: &Reply, reason: &str) {
    reply.assert_error(401, &format!("Invalid authorization credentials: {reason}"));
    assert!(!reply.text().contains("access_token"));
}

/// 200 with a token pair for `sub`; the access token opens a protected route.
async fn assert_accepted(addr: SocketAddr, reply: &Reply, sub: &str) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    assert_eq!(v.as_object().unwrap().len(), 2);
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap();
    for (token, usefor) in [(access, "access"), (refresh, "refresh")] {
        let (header, claims) = decode_parts(token);
        assert_eq!(header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        let claims: Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(claims["sub"], sub);
        assert_eq!(claims["iss"], "datarhei-core");
        assert_eq!(claims["usefor"], usefor);
    }
    let reply = Req::get("/api/v3/process").bearer(access).send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "[]\n");
    let reply = Req::get("/api/login/refresh")
        .bearer(refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

// ------------------------------------------------------------------------------ accepted

#[tokio::test]
async fn allowed_user_gets_a_token_pair_with_the_auth0_sub() {
    let (addr, jwks) = server().await;
    let token = keys().rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    let reply = auth0_login(addr, &token).await;
    assert_accepted(addr, &reply, ALLOWED).await;
    // The second allowed user of the tenant, too; the keys were fetched once.
    let token = keys()
        .rsa
        .token(Algorithm::RS256, "rsa", &claims("google-oauth2|second"));
    let reply = auth0_login(addr, &token).await;
    assert_accepted(addr, &reply, "google-oauth2|second").await;
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test]
async fn ps256_es256_and_eddsa_keys_are_accepted() {
    let (addr, _jwks) = server().await;
    let k = keys();
    for (key, alg, kid) in [
        (&k.rsa_rotated, Algorithm::PS256, "pss"),
        (&k.ec, Algorithm::ES256, "ec"),
        (&k.ed, Algorithm::EdDSA, "ed"),
    ] {
        let token = key.token(alg, kid, &claims(ALLOWED));
        let reply = auth0_login(addr, &token).await;
        assert_accepted(addr, &reply, ALLOWED).await;
    }
}

#[tokio::test]
async fn aud_may_be_a_plain_string() {
    let (addr, _jwks) = server().await;
    let token = keys()
        .ec
        .token(Algorithm::ES256, "ec", &claims_with("aud", json!(AUDIENCE)));
    assert_accepted(addr, &auth0_login(addr, &token).await, ALLOWED).await;
}

#[tokio::test]
async fn discovery_lists_the_tenant_after_localjwt() {
    let (addr, jwks) = server().await;
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["auths"],
        json!([
            "localjwt",
            format!("auth0 domain={DOMAIN} audience={AUDIENCE} clientid={CLIENT_ID}")
        ])
    );
    // Discovery and start-up fetch nothing.
    assert_eq!(jwks.hits(), 0);
}

#[tokio::test]
async fn json_credentials_stay_the_local_login_even_with_a_bearer() {
    let (addr, jwks) = server().await;
    let token = keys().rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    let reply = Req::post("/api/login")
        .bearer(&token)
        .json(r#"{"username":"admin","password":"datarhei"}"#)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    let (_, claims) = decode_parts(reply.json()["access_token"].as_str().unwrap());
    assert!(claims.contains("\"sub\":\"admin\""), "{claims}");
    assert_eq!(jwks.hits(), 0);
    login(addr).await;
}

#[tokio::test]
async fn tenants_are_matched_by_issuer_in_configuration_order() {
    let jwks = JwksServer::start(Mode::Serve(standard_jwks())).await;
    let other = Auth0Tenant::new("other.auth0.test", "https://other/api")
        .clientid("other-client")
        .user("auth0|other")
        .with_jwks_url(jwks.url());
    let addr = spawn_core_auth0(provider(vec![other, tenant(&jwks.url())], fast_settings())).await;
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(
        reply.json()["auths"],
        json!([
            "localjwt",
            "auth0 domain=other.auth0.test audience=https://other/api clientid=other-client",
            format!("auth0 domain={DOMAIN} audience={AUDIENCE} clientid={CLIENT_ID}")
        ])
    );
    let mut c = claims("auth0|other");
    c["iss"] = json!("https://other.auth0.test/");
    c["aud"] = json!("https://other/api");
    let token = keys().rsa.token(Algorithm::RS256, "rsa", &c);
    assert_accepted(addr, &auth0_login(addr, &token).await, "auth0|other").await;
    let token = keys().rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    assert_accepted(addr, &auth0_login(addr, &token).await, ALLOWED).await;
    // Each tenant's user is allowed only by its own tenant.
    c["sub"] = json!(ALLOWED);
    let token = keys().rsa.token(Algorithm::RS256, "rsa", &c);
    assert_refused(&auth0_login(addr, &token).await, "user not allowed");
    // The two tenants share the JWKS URL, hence one cache and one fetch.
    assert_eq!(jwks.hits(), 1);
}

// ------------------------------------------------------------------------------- refused

#[tokio::test]
async fn user_not_allowed() {
    let (addr, _jwks) = server().await;
    let token = keys()
        .rsa
        .token(Algorithm::RS256, "rsa", &claims("auth0|stranger"));
    assert_refused(&auth0_login(addr, &token).await, "user not allowed");
    // Exact match only.
    let token = keys()
        .rsa
        .token(Algorithm::RS256, "rsa", &claims("AUTH0|ALLOWED"));
    assert_refused(&auth0_login(addr, &token).await, "user not allowed");
}

#[tokio::test]
async fn wrong_or_missing_audience() {
    let (addr, _jwks) = server().await;
    let rsa = &keys().rsa;
    for aud in [
        json!("https://other.example/api"),
        json!([
            "https://other.example/api",
            "https://tenant.auth0.test/userinfo"
        ]),
        json!([]),
        json!(format!("{AUDIENCE}/")),
        json!(5),
        Value::Null, // removed: no aud at all
    ] {
        let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("aud", aud.clone()));
        assert_refused(&auth0_login(addr, &token).await, "invalid audience");
    }
}

#[tokio::test]
async fn foreign_issuers_are_not_claimed() {
    let (addr, jwks) = server().await;
    let rsa = &keys().rsa;
    for iss in [
        json!("https://evil.example/"),
        json!("https://tenant.auth0.test"), // no trailing slash
        json!("http://tenant.auth0.test/"),
        json!("https://TENANT.auth0.test/"),
        json!("https://tenant.auth0.test//"),
        json!(["https://tenant.auth0.test/"]),
        Value::Null,
    ] {
        let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("iss", iss.clone()));
        let reply = auth0_login(addr, &token).await;
        reply.assert_error(400, "Missing authorization credentials");
        assert_eq!(reply.text(), MISSING_CREDENTIALS, "iss {iss}");
    }
    for opaque in ["opaque-token", "a.b.c", "e30.e30.e30"] {
        auth0_login(addr, opaque)
            .await
            .assert_error(400, "Missing authorization credentials");
    }
    // Nothing was claimed, so nothing was fetched.
    assert_eq!(jwks.hits(), 0);
}

#[tokio::test]
async fn expired_and_not_yet_valid() {
    let (addr, _jwks) = server().await;
    let rsa = &keys().rsa;
    let now = now();
    let token = rsa.token(
        Algorithm::RS256,
        "rsa",
        &claims_with("exp", json!(now - 120)),
    );
    assert_refused(&auth0_login(addr, &token).await, "token expired");
    // Within the 30 s leeway.
    let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("exp", json!(now - 5)));
    assert_eq!(auth0_login(addr, &token).await.status, 200);
    let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("exp", Value::Null));
    assert_refused(&auth0_login(addr, &token).await, "invalid token");
    let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("exp", json!("later")));
    assert_refused(&auth0_login(addr, &token).await, "invalid token");
    let token = rsa.token(
        Algorithm::RS256,
        "rsa",
        &claims_with("nbf", json!(now + 600)),
    );
    assert_refused(&auth0_login(addr, &token).await, "token not yet valid");
    let token = rsa.token(
        Algorithm::RS256,
        "rsa",
        &claims_with("iat", json!(now + 600)),
    );
    assert_refused(&auth0_login(addr, &token).await, "token not yet valid");
    let token = rsa.token(Algorithm::RS256, "rsa", &claims_with("sub", Value::Null));
    assert_refused(&auth0_login(addr, &token).await, "invalid token");
}

#[tokio::test]
async fn bad_signature() {
    let (addr, _jwks) = server().await;
    let k = keys();
    // Another key, the tenant's kid.
    let token = k.attacker.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "invalid signature");
    // A genuine token for a stranger with the payload swapped for an allowed user.
    let genuine = k
        .rsa
        .token(Algorithm::RS256, "rsa", &claims("auth0|stranger"));
    let allowed = k.rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    let mut parts: Vec<&str> = allowed.split('.').collect();
    let sig = genuine.split('.').nth(2).unwrap();
    parts[2] = sig;
    assert_refused(
        &auth0_login(addr, &parts.join(".")).await,
        "invalid signature",
    );
    // A signature of the wrong length.
    let token = format!("{}.{}.AAAA", parts[0], parts[1]);
    assert_refused(&auth0_login(addr, &token).await, "invalid signature");
    // An EC signature with the RSA key's kid: the token's alg must be the key's.
    let token = k.ec.token(Algorithm::ES256, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "algorithm mismatch");
    // PS256 token naming the RS256 key (same RSA key, other padding).
    let token = k.rsa.token(Algorithm::PS256, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "algorithm mismatch");
}

#[tokio::test]
async fn unknown_kid() {
    let (addr, jwks) = server().await;
    let token = keys().rsa.token(Algorithm::RS256, "nope", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "unknown key");
    // No kid at all.
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let token = keys().rsa.sign(Algorithm::RS256, &header, &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "unknown key");
    assert_eq!(
        jwks.hits(),
        1,
        "one fetch; a token without a kid names no key to fetch"
    );
}

#[tokio::test]
async fn enc_key_is_not_used_for_signatures() {
    let k = keys();
    let (addr, jwks) = server_with(json!({"keys": [
        k.rsa.jwk("rsa", "RS256", "enc"),
        k.ec.jwk("ec", "ES256", "sig"),
    ]}))
    .await;
    let token = k.rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "key not for signing");
    let token = k.rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "key not for signing");
    // A listed-but-refused kid is known: no re-fetch.
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test]
async fn hs256_token_with_the_tenant_issuer_is_refused() {
    let (addr, _jwks) = server().await;
    let k = keys();
    // The classic confusion: HMAC keyed with the public RSA key's bytes, the RSA key's kid.
    let public = k.rsa.jwk("rsa", "RS256", "sig");
    let n = public["n"].as_str().unwrap().as_bytes().to_vec();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa"});
    let token = sign_with(
        &EncodingKey::from_secret(&n),
        Algorithm::HS256,
        &header,
        &claims(ALLOWED),
    );
    assert_refused(&auth0_login(addr, &token).await, "unsupported algorithm");
    // alg "none" with an empty signature part is no JWS at all; with one, unsupported.
    let none = format!(
        "{}.{}.AA",
        base64url(&json!({"alg": "none", "kid": "rsa"}).to_string()),
        base64url(&claims(ALLOWED).to_string())
    );
    assert_refused(&auth0_login(addr, &none).await, "unsupported algorithm");
    let token = k.rsa.token(Algorithm::RS384, "rsa", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "unsupported algorithm");
}

#[tokio::test]
async fn rsa_key_under_2048_bits_is_refused() {
    let k = keys();
    let (addr, _jwks) = server_with(json!({"keys": [
        k.rsa_weak.jwk("weak", "RS256", "sig"),
        k.rsa.jwk("rsa", "RS256", "sig"),
    ]}))
    .await;
    let token = k.rsa_weak.token(Algorithm::RS256, "weak", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "key too weak");
    let token = k.rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED));
    assert_eq!(auth0_login(addr, &token).await.status, 200);
}

#[tokio::test]
async fn symmetric_key_in_the_jwks_is_refused() {
    let k = keys();
    let secret = b"a shared secret that must never verify anything";
    let (addr, _jwks) = server_with(json!({"keys": [
        {"kty": "oct", "kid": "oct", "alg": "HS256", "use": "sig", "k": base64url_bytes(secret)},
        k.rsa.jwk("rsa", "RS256", "sig"),
    ]}))
    .await;
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "oct"});
    let hs = sign_with(
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
        &header,
        &claims(ALLOWED),
    );
    assert_refused(&auth0_login(addr, &hs).await, "unsupported algorithm");
    // Even a token that names the oct kid with an asymmetric alg gets nowhere.
    let token = k.rsa.token(Algorithm::RS256, "oct", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "symmetric key refused");
}

#[tokio::test]
async fn jku_x5u_jwk_and_x5c_headers_are_never_followed() {
    let k = keys();
    let (addr, jwks) = server().await;
    // The attacker's own JWKS, with the attacker's key under the tenant's kid and a fresh one.
    let evil = JwksServer::start(Mode::Serve(json!({"keys": [
        k.attacker.jwk("rsa", "RS256", "sig"),
        k.attacker.jwk("evil", "RS256", "sig"),
    ]})))
    .await;
    let evil_url = evil.url();
    for kid in ["rsa", "evil"] {
        let header = json!({
            "alg": "RS256",
            "typ": "JWT",
            "kid": kid,
            "jku": evil_url,
            "x5u": evil_url,
            "jwk": k.attacker.jwk(kid, "RS256", "sig"),
            "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        });
        let token = k.attacker.sign(Algorithm::RS256, &header, &claims(ALLOWED));
        let reason = if kid == "rsa" {
            "invalid signature"
        } else {
            "unknown key"
        };
        assert_refused(&auth0_login(addr, &token).await, reason);
    }
    // A `crit` header the crate does not understand is refused, even with a good signature.
    let header = json!({"alg": "RS256", "kid": "rsa", "crit": ["exp"], "exp": 1});
    let token = k.rsa.sign(Algorithm::RS256, &header, &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &token).await, "invalid token");
    assert_eq!(
        evil.hits(),
        0,
        "no request may reach the attacker's listener"
    );
    assert!(jwks.hits() >= 1);
}

// -------------------------------------------------------------------------------- HTTPS

#[tokio::test]
async fn jwks_over_https_with_a_private_ca() {
    let pki = test_pki();
    let jwks = JwksServer::start_tls(Mode::Serve(standard_jwks()), Arc::clone(&pki.server)).await;
    // No URL override: the domain is the TLS server, the JWKS URL is derived from it.
    let domain = jwks.addr.to_string();
    let tenant = Auth0Tenant::new(&domain, AUDIENCE)
        .clientid(CLIENT_ID)
        .user(ALLOWED);
    assert_eq!(
        tenant.jwks_url(),
        format!("https://{domain}/.well-known/jwks.json")
    );
    let fetcher = HttpsFetcher::with_root_certificates_pem(pki.ca_pem.as_bytes()).unwrap();
    let addr = spawn_core_auth0(JwksProvider::with_fetcher(
        [tenant.clone()],
        fast_settings(),
        fetcher,
    ))
    .await;
    let mut c = claims(ALLOWED);
    c["iss"] = json!(format!("https://{domain}/"));
    let token = keys().ed.token(Algorithm::EdDSA, "ed", &c);
    let reply = auth0_login(addr, &token).await;
    assert_accepted(addr, &reply, ALLOWED).await;
    assert_eq!(jwks.hits(), 1);

    // A client that does not trust the test CA gets no keys: the TLS handshake fails before
    // any request is made.
    let other_ca = test_pki();
    let untrusting = HttpsFetcher::with_root_certificates_pem(other_ca.ca_pem.as_bytes()).unwrap();
    let addr = spawn_core_auth0(JwksProvider::with_fetcher(
        [tenant],
        fast_settings(),
        untrusting,
    ))
    .await;
    assert_refused(&auth0_login(addr, &token).await, "keys unavailable");
    assert_eq!(jwks.hits(), 1);
}

#[test]
fn https_fetcher_refuses_pem_without_certificates() {
    assert!(HttpsFetcher::with_root_certificates_pem(b"").is_err());
    assert!(
        HttpsFetcher::with_root_certificates_pem(b"-----BEGIN CERTIFICATE-----\nnope\n").is_err()
    );
}

fn base64url(s: &str) -> String {
    base64url_bytes(s.as_bytes())
}

fn base64url_bytes(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `HttpsFetcher::new()` trusts what `SSL_CERT_FILE` names, like OpenSSL-based clients. The
/// variable is process-wide, so the check runs in a child process: this test binary again, running
/// only the ignored test below with `SSL_CERT_FILE` set to the test CA.
#[tokio::test]
async fn ssl_cert_file_is_honoured_by_the_default_fetcher() {
    let pki = test_pki();
    let jwks = JwksServer::start_tls(Mode::Serve(standard_jwks()), Arc::clone(&pki.server)).await;
    let ca_file = std::env::temp_dir().join(format!(
        "tower-jwt-login-test-ca-{}-{}.pem",
        std::process::id(),
        jwks.addr.port()
    ));
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_fetches_with_the_system_trust_store",
            "--ignored",
            "--nocapture",
        ])
        .env("SSL_CERT_FILE", &ca_file)
        .env_remove("SSL_CERT_DIR")
        .env(
            "TOWER_JWT_LOGIN_TEST_JWKS_URL",
            format!("https://{}/.well-known/jwks.json", jwks.addr),
        )
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&ca_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test]
#[ignore = "run by ssl_cert_file_is_honoured_by_the_default_fetcher with SSL_CERT_FILE set"]
async fn child_fetches_with_the_system_trust_store() {
    let Ok(url) = std::env::var("TOWER_JWT_LOGIN_TEST_JWKS_URL") else {
        return;
    };
    let cache =
        tower_jwt_login::auth0::JwksCache::new(url, HttpsFetcher::new().unwrap(), fast_settings());
    cache.refresh().await.unwrap();
    assert_eq!(cache.key_ids(), ["ec", "ed", "pss", "rsa"]);
}
