//! The published JWKS: served by the example app over real HTTP, checked field by
//! field against the key files, and used by an independent implementation (jsonwebtoken's JWK
//! support) to verify the crate's tokens with no secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod keys_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{NOT_FOUND, Req, core_config, login, spawn_core};
use keys_support::{key_dir, key_pair};
use tower_jwt_login::config::CoreAuthConfig;
use tower_jwt_login::jwks::JwksService;
use tower_jwt_login::{Algorithm, JwtConfig, JwtKey, SigningKey, VerificationKey};

fn spki_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// EdDSA signs; ES256 (public file) and RS256 (private file) verify; a previous HMAC secret
/// verifies too but is never published.
fn ring_config(dir: &Path) -> (CoreAuthConfig, [std::path::PathBuf; 6]) {
    let (ed, ed_pub) = key_pair(dir, "ed", Algorithm::EdDSA);
    let (es, es_pub) = key_pair(dir, "es", Algorithm::ES256);
    let (rs, rs_pub) = key_pair(dir, "rs", Algorithm::RS256);
    let mut config = core_config(Duration::ZERO);
    config.jwt_keys.algorithm = Algorithm::EdDSA;
    config.jwt_keys.private_key = Some(ed.clone());
    config.jwt_keys.verify_keys = vec![es_pub.clone(), rs.clone()];
    config.jwt_keys = config.jwt_keys.previous_secret("an old secret");
    (config, [ed, ed_pub, es, es_pub, rs, rs_pub])
}

#[tokio::test]
async fn jwks_document_field_by_field() {
    let dir = key_dir("jwks-fields");
    let (config, [_, ed_pub, _, es_pub, _, rs_pub]) = ring_config(&dir);
    let jwt = config.jwt_config().unwrap().build().unwrap();
    let kids = jwt.kids();
    assert_eq!(kids.len(), 4, "three public keys and one secret");
    let addr = spawn_core(config.clone()).await;

    let reply = Req::get("/.well-known/jwks.json").send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    assert!(reply.text().ends_with("}\n"));
    let doc = reply.json();
    assert_eq!(doc.as_object().unwrap().len(), 1);
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "the HMAC secret is not published");

    let members = |k: &serde_json::Value| -> BTreeSet<String> {
        k.as_object().unwrap().keys().cloned().collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    // Ed25519: the SPKI's last 32 bytes are the public key.
    let ed = &keys[0];
    assert_eq!(members(ed), set(&["kty", "crv", "x", "kid", "alg", "use"]));
    assert_eq!(ed["kty"], "OKP");
    assert_eq!(ed["crv"], "Ed25519");
    let der = spki_der(&ed_pub);
    assert_eq!(ed["x"], b64(&der[der.len() - 32..]));
    assert_eq!(ed["kid"], kids[0]);
    assert_eq!(ed["alg"], "EdDSA");
    assert_eq!(ed["use"], "sig");

    // P-256: the SPKI ends with the uncompressed point 04 ‖ x ‖ y.
    let es = &keys[1];
    assert_eq!(
        members(es),
        set(&["kty", "crv", "x", "y", "kid", "alg", "use"])
    );
    assert_eq!(es["kty"], "EC");
    assert_eq!(es["crv"], "P-256");
    let der = spki_der(&es_pub);
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4);
    assert_eq!(es["x"], b64(&point[1..33]));
    assert_eq!(es["y"], b64(&point[33..]));
    assert_eq!(es["kid"], kids[1]);
    assert_eq!(es["alg"], "ES256");
    assert_eq!(es["use"], "sig");

    // RSA: n and e as the rsa crate reads the public key file.
    let rs = &keys[2];
    assert_eq!(members(rs), set(&["kty", "n", "e", "kid", "alg", "use"]));
    assert_eq!(rs["kty"], "RSA");
    {
        use rsa::pkcs8::DecodePublicKey as _;
        use rsa::traits::PublicKeyParts as _;
        let public = rsa::RsaPublicKey::from_public_key_der(&spki_der(&rs_pub)).unwrap();
        assert_eq!(rs["n"], b64(&public.n().to_bytes_be()));
        assert_eq!(rs["e"], b64(&public.e().to_bytes_be()));
        assert_eq!(rs["e"], "AQAB");
    }
    assert_eq!(rs["kid"], kids[2]);
    assert_eq!(rs["alg"], "RS256");
    assert_eq!(rs["use"], "sig");

    // Never a private or symmetric member, anywhere in the document.
    for private in [
        "\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\"", "\"k\"", "oct",
    ] {
        assert!(!reply.text().contains(private), "{private}");
    }

    // HEAD: the same headers, no body; other methods: 404 in the error shape.
    let head = Req::new("HEAD", "/.well-known/jwks.json").send(addr).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("cache-control"), Some("public, max-age=300"));
    assert!(head.body.is_empty());
    for method in ["POST", "PUT", "DELETE"] {
        let reply = Req::new(method, "/.well-known/jwks.json").send(addr).await;
        reply.assert_error(404, "Not Found");
    }
    // Public: a bad bearer does not matter.
    let reply = Req::get("/.well-known/jwks.json")
        .bearer("not-a-token")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
}

/// Another service, knowing only the JWKS URL's document, verifies the crate's tokens with
/// jsonwebtoken (JwkSet → DecodingKey::from_jwk → decode), for every key of the ring.
#[tokio::test]
async fn an_independent_jwks_client_verifies_the_tokens() {
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let dir = key_dir("jwks-client");
    let (config, [ed, _, es, _, rs, _]) = ring_config(&dir);
    let addr = spawn_core(config.clone()).await;
    let body = Req::get("/.well-known/jwks.json").send(addr).await.body;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&body).unwrap();

    #[derive(serde::Deserialize)]
    struct Claims {
        sub: String,
        usefor: String,
    }
    let check = |token: &str, alg: jsonwebtoken::Algorithm| {
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, alg);
        let jwk = set
            .find(header.kid.as_deref().unwrap())
            .expect("kid in the JWKS");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&["datarhei-core"]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).unwrap();
        assert_eq!(data.claims.sub, "admin");
        data.claims.usefor
    };

    // The app's own tokens (EdDSA), through login.
    let (access, refresh) = login(addr).await;
    assert_eq!(check(&access, jsonwebtoken::Algorithm::EdDSA), "access");
    assert_eq!(check(&refresh, jsonwebtoken::Algorithm::EdDSA), "refresh");

    // Tokens of the verification-only keys (as their signing key minted them before a
    // rotation): their kids are in the JWKS too.
    for (file, alg) in [
        (&es, jsonwebtoken::Algorithm::ES256),
        (&rs, jsonwebtoken::Algorithm::RS256),
        (&ed, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let jwt = JwtConfig::new(SigningKey::from_pem_file(file).unwrap())
            .build()
            .unwrap();
        assert_eq!(check(&jwt.issue_access("admin"), alg), "access");
    }

    // A tampered token is refused by the independent client as well.
    let mut forged = access.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let header = jsonwebtoken::decode_header(&forged).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["datarhei-core"]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &key, &validation).is_err());
}

/// An HMAC-only app publishes nothing (the path is unknown: 404), the service renders an empty
/// set, and `max-age` is configurable.
#[tokio::test]
async fn hmac_only_publishes_nothing_and_max_age_is_configurable() {
    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let reply = Req::get("/.well-known/jwks.json").send(addr).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), NOT_FOUND);

    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let jwt =
        JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
            .verification_key(VerificationKey::hmac(
                JwtKey::from_secret("another secret of at least 32 bytes!!").unwrap(),
            ))
            .build()
            .unwrap();
    assert!(!jwt.has_public_keys());
    let service = JwksService::new(&jwt).max_age(Duration::from_secs(60));
    let res = service
        .oneshot(
            http::Request::get("/.well-known/jwks.json")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"{\"keys\":[]}\n");
}
