//! The key ring: every algorithm end to end over real HTTP, `kid` selection, no
//! algorithm confusion, unknown `kid`s, rotation across restarts (also straight from Core's lone
//! secret: its kid-less tokens meet the previous secrets), bad key files at start-up.
//! Keys are real, made with the `openssl` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod keys_support;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{
    Req, core_claims, core_config, core_server, decode_parts, hmac_sha256, login, now, spawn_core,
};
use keys_support::{ASYMMETRIC, key_dir, key_pair, openssl};
use tower_jwt_login::config::{ConfigError, CoreAuthConfig};
use tower_jwt_login::error::TokenError;
use tower_jwt_login::{
    Algorithm, Jwt, JwtConfig, JwtKey, KeyError, SigningKey, TokenUse, VerificationKey,
};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with the key in `pem` using the key's own algorithm `alg` — whatever
/// the header says — with RustCrypto's crates (independent of the crate's ring/dalek code).
fn sign_raw(alg: Algorithm, pem: &Path, header: &str, claims: &str) -> String {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use sha2::Digest as _;
    let text = std::fs::read_to_string(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig: Vec<u8> = match alg {
        Algorithm::EdDSA => {
            use ed25519_dalek::Signer as _;
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).unwrap();
            key.sign(input.as_bytes()).to_bytes().to_vec()
        }
        Algorithm::ES256 => {
            use p256::ecdsa::signature::Signer as _;
            let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der).unwrap();
            let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
            sig.to_bytes().to_vec()
        }
        Algorithm::RS256 => {
            use rsa::pkcs8::DecodePrivateKey as _;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
            // DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1).
            let prefix: &[u8] = &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            let padding = rsa::Pkcs1v15Sign {
                hash_len: Some(32),
                prefix: prefix.into(),
            };
            key.sign(padding, &sha2::Sha256::digest(input.as_bytes()))
                .unwrap()
        }
        other => panic!("{other:?}"),
    };
    format!("{input}.{}", b64(sig))
}

fn access_claims() -> String {
    core_claims("access", now(), 600)
}

fn config_with(alg: Algorithm, private: Option<&Path>) -> CoreAuthConfig {
    let mut config = core_config(Duration::ZERO);
    config.jwt_keys.algorithm = alg;
    config.jwt_keys.private_key = private.map(Path::to_path_buf);
    config
}

fn jwt_of(config: &CoreAuthConfig) -> Jwt {
    config.jwt_config().unwrap().build().unwrap()
}

async fn assert_process(addr: std::net::SocketAddr, token: &str, ok: bool, label: &str) {
    let reply = Req::get("/api/v3/process").bearer(token).send(addr).await;
    if ok {
        assert_eq!(reply.status, 200, "{label}: {}", reply.text());
        assert_eq!(reply.text(), "[]\n", "{label}");
    } else {
        assert_eq!(reply.status, 401, "{label}");
        reply.assert_unauthorized(true);
    }
}

/// Every algorithm: login mints → the library verifies → the layer accepts over HTTP → the
/// refresh route accepts the refresh token and mints an access token that works too. Headers are
/// `{"alg":…,"kid":…,"typ":"JWT"}` for asymmetric keys (kid = the RFC 7638 thumbprint, checked
/// with jsonwebtoken's own thumbprint), Core's exact `{"alg":…,"typ":"JWT"}` for a lone secret.
#[tokio::test]
async fn every_algorithm_mint_verify_layer_refresh() {
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let dir = key_dir("every");
    for alg in Algorithm::ALL {
        let private = (!alg.is_hmac()).then(|| key_pair(&dir, alg.as_str(), alg).0);
        let config = config_with(alg, private.as_deref());
        let jwt = jwt_of(&config);
        assert_eq!(jwt.algorithm(), alg);
        let addr = spawn_core(config).await;

        let (access, refresh) = login(addr).await;
        let (header, _) = decode_parts(&access);
        let sig_len = URL_SAFE_NO_PAD
            .decode(access.rsplit('.').next().unwrap())
            .unwrap()
            .len();
        if alg.is_hmac() {
            assert_eq!(jwt.kid(), None);
            assert_eq!(
                header,
                format!("{{\"alg\":\"{}\",\"typ\":\"JWT\"}}", alg.as_str())
            );
        } else {
            // The kid is the RFC 7638 thumbprint of the public key, as jsonwebtoken computes it.
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwt.jwks_json()).unwrap();
            let thumbprint = set.keys[0]
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(jwt.kid(), Some(thumbprint.as_str()), "{alg:?}");
            assert_eq!(
                header,
                format!(
                    "{{\"alg\":\"{}\",\"kid\":\"{thumbprint}\",\"typ\":\"JWT\"}}",
                    alg.as_str()
                )
            );
        }
        let expected_sig = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 | Algorithm::EdDSA | Algorithm::ES256 => 64,
            Algorithm::RS256 => 256,
            _ => unreachable!(),
        };
        assert_eq!(sig_len, expected_sig, "{alg:?}");

        // Minted by the app, verified by a Jwt built from the same configuration.
        let claims = jwt
            .verify(&access, TokenUse::Access)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.subject(), "admin");
        assert_eq!(
            jwt.verify(&refresh, TokenUse::Access).unwrap_err(),
            TokenError::WrongTokenUse
        );
        assert_process(addr, &access, true, alg.as_str()).await;
        assert_process(addr, &refresh, false, alg.as_str()).await;

        let reply = Req::get("/api/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text());
        let fresh = reply.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(decode_parts(&fresh).0, header);
        assert_process(addr, &fresh, true, alg.as_str()).await;

        // A flipped signature bit is refused.
        let mut sig = URL_SAFE_NO_PAD
            .decode(access.rsplit('.').next().unwrap())
            .unwrap();
        sig[5] ^= 1;
        let (input, _) = access.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", b64(&sig));
        assert_eq!(
            jwt.verify(&forged, TokenUse::Access).unwrap_err(),
            TokenError::InvalidSignature
        );
        assert_process(addr, &forged, false, alg.as_str()).await;
    }
}

/// Tokens of independent signers (jsonwebtoken) with the crate's header layout verify: the
/// crate's verifiers accept standard signatures, not only their own.
#[tokio::test]
async fn standard_signatures_verify() {
    let dir = key_dir("standard");
    for alg in ASYMMETRIC {
        let (private, _) = key_pair(&dir, alg.as_str(), alg);
        let jwt = JwtConfig::new(SigningKey::from_pem_file(&private).unwrap())
            .build()
            .unwrap();
        let kid = jwt.kid().unwrap();
        let header = format!(
            "{{\"alg\":\"{}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}",
            alg.as_str()
        );
        let token = sign_raw(alg, &private, &header, &access_claims());
        assert_eq!(
            jwt.verify(&token, TokenUse::Access).unwrap().subject(),
            "admin",
            "{alg:?}"
        );
        // Without a kid, the signing key is tried.
        let header = format!("{{\"alg\":\"{}\",\"typ\":\"JWT\"}}", alg.as_str());
        let token = sign_raw(alg, &private, &header, &access_claims());
        assert!(jwt.verify(&token, TokenUse::Access).is_ok(), "{alg:?}");
    }
}

/// A ring of an EdDSA signing key, an ES256 and an RS256 public key and a previous HMAC secret:
/// each key's tokens verify by kid; a kid-less token is tried against the signing key and the
/// previous secret, never the public keys; an unknown kid is refused; a key never accepts
/// another algorithm, whatever the header says.
#[tokio::test]
async fn kid_selects_the_key_and_each_key_takes_only_its_algorithm() {
    let dir = key_dir("kid");
    let (ed, _) = key_pair(&dir, "ed", Algorithm::EdDSA);
    let (es, es_pub) = key_pair(&dir, "es", Algorithm::ES256);
    let (rs, rs_pub) = key_pair(&dir, "rs", Algorithm::RS256);
    let secret = JwtKey::from_secret("a previous secret of 32 bytes or more!").unwrap();
    let ring = JwtConfig::new(SigningKey::from_pem_file(&ed).unwrap())
        .verification_key(VerificationKey::from_pem_file(&es_pub).unwrap())
        .verification_key(VerificationKey::from_pem_file(&rs_pub).unwrap())
        .verification_key(VerificationKey::hmac(secret.clone()))
        .build()
        .unwrap();
    let kids = ring.kids();
    assert_eq!(kids.len(), 4);
    let (ed_kid, es_kid, rs_kid, hs_kid) = (kids[0], kids[1], kids[2], kids[3]);
    assert_eq!(ring.kid(), Some(ed_kid));
    assert_eq!(hs_kid.len(), 16);

    // Each key's own tokens, minted by a Jwt whose signing key it is, in a ring of two (so the
    // kid is the same as in `ring`).
    let minted_by = |key: SigningKey| {
        JwtConfig::new(key)
            .verification_key(VerificationKey::hmac(
                JwtKey::from_secret("some other secret, 32 bytes or more!!!").unwrap(),
            ))
            .build()
            .unwrap()
            .issue_access("admin")
    };
    for (key, kid) in [
        (SigningKey::from_pem_file(&es).unwrap(), es_kid),
        (SigningKey::from_pem_file(&rs).unwrap(), rs_kid),
        (SigningKey::hmac(secret.clone()), hs_kid),
        (SigningKey::from_pem_file(&ed).unwrap(), ed_kid),
    ] {
        let token = minted_by(key);
        assert!(
            decode_parts(&token)
                .0
                .contains(&format!("\"kid\":\"{kid}\""))
        );
        assert_eq!(
            ring.verify(&token, TokenUse::Access).unwrap().subject(),
            "admin"
        );
    }

    let claims = access_claims();
    let h = |alg: &str, kid: Option<&str>| match kid {
        Some(kid) => format!("{{\"alg\":\"{alg}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}"),
        None => format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}"),
    };
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "ES256 key's signature, header names EdDSA with the ES256 kid",
            sign_raw(Algorithm::ES256, &es, &h("EdDSA", Some(es_kid)), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "ES256 key's signature and header, but the EdDSA key's kid",
            sign_raw(Algorithm::ES256, &es, &h("ES256", Some(ed_kid)), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "EdDSA signing key's signature, header says ES256",
            sign_raw(Algorithm::EdDSA, &ed, &h("ES256", Some(ed_kid)), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "RS256 key's signature, header says PS256",
            sign_raw(Algorithm::RS256, &rs, &h("PS256", Some(rs_kid)), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "a verification-only ES256 key's token without kid (tried against the signing key)",
            sign_raw(Algorithm::ES256, &es, &h("ES256", None), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "the previous secret's token naming the RS256 key",
            common::sign_hs256(secret.expose_secret(), &h("HS256", Some(rs_kid)), &claims),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "unknown kid, signed by a ring key",
            sign_raw(
                Algorithm::EdDSA,
                &ed,
                &h("EdDSA", Some("no-such-key")),
                &claims,
            ),
            TokenError::UnknownKey,
        ),
        (
            "kid of another type",
            sign_raw(
                Algorithm::EdDSA,
                &ed,
                "{\"alg\":\"EdDSA\",\"kid\":12,\"typ\":\"JWT\"}",
                &claims,
            ),
            TokenError::UnsupportedHeader,
        ),
        (
            "the ES256 key's signature on the EdDSA kid's token",
            {
                let t = sign_raw(Algorithm::EdDSA, &ed, &h("EdDSA", Some(ed_kid)), &claims);
                let other = sign_raw(Algorithm::ES256, &es, &h("EdDSA", Some(ed_kid)), &claims);
                let (input, _) = t.rsplit_once('.').unwrap();
                format!("{input}.{}", other.rsplit('.').next().unwrap())
            },
            TokenError::InvalidSignature,
        ),
    ];
    for (label, token, error) in cases {
        assert_eq!(
            ring.verify(&token, TokenUse::Access).unwrap_err(),
            error,
            "{label}"
        );
    }
    // The same token with the right header verifies: the refusals are the header's doing.
    let ok = sign_raw(Algorithm::ES256, &es, &h("ES256", Some(es_kid)), &claims);
    assert!(ring.verify(&ok, TokenUse::Access).is_ok());
    // The previous HMAC secret's token without kid (minted while it signed alone) verifies: a
    // kid-less token that fails the signing key is tried against the previous secrets, unlike
    // the ES256 one above (asymmetric verification keys need a kid).
    let kidless = common::sign_hs256(secret.expose_secret(), &h("HS256", None), &claims);
    assert!(ring.verify(&kidless, TokenUse::Access).is_ok());

    // An unknown kid is refused whatever signs it; a key outside the ring under a ring kid fails
    // the signature.
    let (stranger, _) = key_pair(&dir, "stranger", Algorithm::EdDSA);
    let t = sign_raw(
        Algorithm::EdDSA,
        &stranger,
        &h("EdDSA", Some("stranger")),
        &claims,
    );
    assert_eq!(
        ring.verify(&t, TokenUse::Access).unwrap_err(),
        TokenError::UnknownKey
    );
    let t = sign_raw(
        Algorithm::EdDSA,
        &stranger,
        &h("EdDSA", Some(ed_kid)),
        &claims,
    );
    assert_eq!(
        ring.verify(&t, TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
}

/// The classic confusion: an HS256 token whose HMAC key is the RSA public key (PEM text, SPKI
/// DER, raw modulus) — what a verifier that lets the header pick the algorithm would accept.
/// Refused by the library and over HTTP, with and without the RSA key's kid.
#[tokio::test]
async fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    let dir = key_dir("confusion");
    let (rs, rs_pub) = key_pair(&dir, "rs", Algorithm::RS256);
    let config = config_with(Algorithm::RS256, Some(&rs));
    let jwt = jwt_of(&config);
    let kid = jwt.kid().unwrap().to_owned();
    let addr = spawn_core(config).await;

    let pem = std::fs::read(&rs_pub).unwrap();
    let text = String::from_utf8(pem.clone()).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let jwks: serde_json::Value = serde_json::from_str(&jwt.jwks_json()).unwrap();
    let n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    let claims = access_claims();
    let mut checked = 0;
    for secret in [pem.as_slice(), text.trim_end().as_bytes(), &der, &n] {
        for header in [
            format!("{{\"alg\":\"HS256\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}"),
            "{\"alg\":\"HS256\",\"typ\":\"JWT\"}".to_owned(),
        ] {
            let input = format!("{}.{}", b64(&header), b64(&claims));
            let token = format!("{input}.{}", b64(hmac_sha256(secret, input.as_bytes())));
            assert_eq!(
                jwt.verify(&token, TokenUse::Access).unwrap_err(),
                TokenError::UnsupportedAlgorithm,
                "{header}"
            );
            assert_process(addr, &token, false, &header).await;
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
    // The RSA key itself still works.
    let (access, _) = login(addr).await;
    assert_process(addr, &access, true, "RS256").await;
}

/// A lone HMAC secret behaves exactly as before rings: Core's header, and a `kid` in a token is
/// ignored (the attack tests check that such tokens signed with the real key pass).
#[test]
fn lone_secret_mints_cores_header_and_ignores_kid() {
    let key = JwtKey::core_compatible("admin", "datarhei", "secretsecret");
    let jwt = JwtConfig::new(key.clone()).build().unwrap();
    let token = jwt.issue_access("admin");
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    assert_eq!(jwt.kids(), Vec::<&str>::new());
    assert!(!jwt.has_public_keys());
    assert_eq!(jwt.jwks_json(), "{\"keys\":[]}");
    let with_kid = common::sign_hs256(
        key.expose_secret(),
        "{\"alg\":\"HS256\",\"kid\":\"anything\",\"typ\":\"JWT\"}",
        &access_claims(),
    );
    assert!(jwt.verify(&with_kid, TokenUse::Access).is_ok());
    // Named explicitly, a lone secret gets its kid, and the kid is then checked.
    let named = JwtConfig::new(SigningKey::hmac(key).kid("k1"))
        .build()
        .unwrap();
    assert_eq!(named.kid(), Some("k1"));
    assert_eq!(
        named.verify(&with_kid, TokenUse::Access).unwrap_err(),
        TokenError::UnknownKey
    );
}

/// The rotation runbook across restarts, each app built from the key files alone:
/// 1. key A signs; 2. B signs, A verifies: A's tokens keep working (access and refresh), new
///    tokens carry B's kid, the JWKS lists both; 3. A dropped: A's tokens are refused.
#[tokio::test]
async fn rotation_across_restarts() {
    let dir = key_dir("rotation");
    let (a, _) = key_pair(&dir, "a", Algorithm::EdDSA);
    let (b, _) = key_pair(&dir, "b", Algorithm::ES256);

    let first = config_with(Algorithm::EdDSA, Some(&a));
    let kid_a = jwt_of(&first).kid().unwrap().to_owned();
    let addr = spawn_core(first).await;
    let (access_a, refresh_a) = login(addr).await;
    assert!(decode_parts(&access_a).0.contains(&kid_a));

    // Restart 1: B signs, A (its private key file: only the public half is kept) verifies.
    let mut second = config_with(Algorithm::ES256, Some(&b));
    second.jwt_keys.verify_keys = vec![a.clone()];
    let jwt2 = jwt_of(&second);
    let kid_b = jwt2.kid().unwrap().to_owned();
    assert_ne!(kid_a, kid_b);
    assert_eq!(jwt2.kids(), [kid_b.as_str(), kid_a.as_str()]);
    let addr = spawn_core(second.clone()).await;
    assert_process(addr, &access_a, true, "A's access token after the rotation").await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh_a)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let refreshed = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert!(decode_parts(&refreshed).0.contains(&kid_b));
    assert_process(addr, &refreshed, true, "refreshed with B").await;
    let (access_b, refresh_b) = login(addr).await;
    assert_eq!(
        decode_parts(&access_b).0,
        format!("{{\"alg\":\"ES256\",\"kid\":\"{kid_b}\",\"typ\":\"JWT\"}}")
    );
    let jwks = Req::get("/.well-known/jwks.json").send(addr).await.json();
    let listed: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [kid_b.as_str(), kid_a.as_str()]);

    // Restart 2: A dropped.
    let third = config_with(Algorithm::ES256, Some(&b));
    let addr = spawn_core(third.clone()).await;
    assert_process(addr, &access_a, false, "A's token after A is dropped").await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh_a)
        .send(addr)
        .await;
    reply.assert_unauthorized(true);
    assert_eq!(
        jwt_of(&third)
            .verify(&access_a, TokenUse::Access)
            .unwrap_err(),
        TokenError::UnknownKey
    );
    assert_process(addr, &access_b, true, "B's token").await;
    assert_process(addr, &refreshed, true, "B's refreshed token").await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh_b)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
}

/// HMAC rotation from Core's single-secret set-up in three steps: stage the next secret first
/// (tokens gain a kid, kid-less ones still verify against the signing secret), then swap, then
/// drop. Kid-less tokens from before the staging still verify after the swap, against the old
/// secret now listed as previous; only the drop ends them.
#[tokio::test]
async fn hmac_rotation_from_a_single_secret() {
    let base = core_config(Duration::ZERO);
    let jwt0 = jwt_of(&base);
    let t0 = jwt0.issue_access("admin");
    assert!(t0.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));

    // Stage: the next secret verifies only.
    let staged = base.clone().jwt_keys_previous("next-secret");
    let jwt1 = jwt_of(&staged);
    assert!(jwt1.verify(&t0, TokenUse::Access).is_ok());
    let t1 = jwt1.issue_access("admin");
    assert!(decode_parts(&t1).0.contains(jwt1.kid().unwrap()));

    // Swap: next-secret signs, the old one verifies.
    let swapped = base
        .clone()
        .jwt_secret("next-secret")
        .jwt_keys_previous(common::SECRET);
    let jwt2 = jwt_of(&swapped);
    assert!(jwt2.verify(&t1, TokenUse::Access).is_ok());
    assert!(jwt2.verify(&t0, TokenUse::Access).is_ok());
    let t2 = jwt2.issue_access("admin");
    let addr = spawn_core(swapped).await;
    assert_process(addr, &t0, true, "kid-less token after the swap").await;
    assert_process(addr, &t1, true, "staged token after the swap").await;
    assert_process(addr, &t2, true, "new token").await;

    // Drop: only next-secret; it is alone again, so Core's header, and t1 is refused.
    let dropped = base.clone().jwt_secret("next-secret");
    let jwt3 = jwt_of(&dropped);
    assert_eq!(jwt3.kid(), None);
    assert_eq!(
        jwt3.verify(&t1, TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
    assert_eq!(
        jwt3.verify(&t0, TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
}

/// The swap straight from Core's lone secret, without a staging step
/// (`CORE_API_AUTH_JWT_SECRET=new CORE_API_AUTH_JWT_PREVIOUS_SECRETS=old`): the kid-less access
/// and refresh tokens the lone secret minted keep working, over HTTP, until they expire; a
/// kid-less token of any other key is refused.
#[tokio::test]
async fn kidless_tokens_of_the_lone_secret_survive_the_swap() {
    let base = core_config(Duration::ZERO);
    let addr = spawn_core(base.clone()).await;
    let (access, refresh) = login(addr).await;
    for token in [&access, &refresh] {
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    }

    let swapped = base
        .clone()
        .jwt_secret("next-secret")
        .jwt_keys_previous("an even older secret")
        .jwt_keys_previous(common::SECRET);
    let jwt = jwt_of(&swapped);
    assert_eq!(
        jwt.verify(&access, TokenUse::Access).unwrap().subject(),
        "admin"
    );
    let addr = spawn_core(swapped).await;
    assert_process(addr, &access, true, "the lone secret's access token").await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let refreshed = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        decode_parts(&refreshed).0,
        format!(
            "{{\"alg\":\"HS256\",\"kid\":\"{}\",\"typ\":\"JWT\"}}",
            jwt.kid().unwrap()
        )
    );
    assert_process(addr, &refreshed, true, "refreshed with the new secret").await;

    // Kid-less tokens of a secret the ring does not hold: refused (invalid signature), over
    // HTTP too, and so is the old secret's token under another HMAC algorithm.
    let claims = access_claims();
    let stranger = JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "stranger"))
        .build()
        .unwrap()
        .issue_access("admin");
    assert_eq!(
        jwt.verify(&stranger, TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
    let reply = Req::get("/api/v3/process")
        .bearer(&stranger)
        .send(addr)
        .await;
    reply.assert_invalid_token("invalid signature");
    let forged = common::sign_hs256(b"not a key of the ring", common::CORE_HEADER, &claims);
    assert_eq!(
        jwt.verify(&forged, TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
    let hs384 = "{\"alg\":\"HS384\",\"typ\":\"JWT\"}";
    let other_alg = common::sign_hs256(&common::core_key(), hs384, &claims);
    assert_eq!(
        jwt.verify(&other_alg, TokenUse::Access).unwrap_err(),
        TokenError::UnsupportedAlgorithm
    );
}

/// Previous secrets are HMAC secrets only, and a token without kid is never tried against an
/// asymmetric key: in a ring of an RS256 signing key, an EdDSA verification key and Core's
/// previous secret, the previous secret's kid-less HS256 token verifies; a kid-less token of the
/// verification key, and HS256 tokens keyed with the RSA public key (PEM or DER), are refused.
#[tokio::test]
async fn kidless_tokens_meet_only_the_signing_key_and_previous_secrets() {
    let dir = key_dir("kidless");
    let (rs, rs_pub) = key_pair(&dir, "rs", Algorithm::RS256);
    let (ed, _) = key_pair(&dir, "ed", Algorithm::EdDSA);
    let mut config = config_with(Algorithm::RS256, Some(&rs)).jwt_keys_previous(common::SECRET);
    config.jwt_keys.verify_keys = vec![ed.clone()];
    let jwt = jwt_of(&config);
    assert_eq!(jwt.kids().len(), 3);
    let addr = spawn_core(config).await;

    let claims = access_claims();
    let core = common::sign_hs256(&common::core_key(), common::CORE_HEADER, &claims);
    assert!(jwt.verify(&core, TokenUse::Access).is_ok());
    assert_process(addr, &core, true, "Core's kid-less token").await;

    let ed_kidless = sign_raw(
        Algorithm::EdDSA,
        &ed,
        "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}",
        &claims,
    );
    assert_eq!(
        jwt.verify(&ed_kidless, TokenUse::Access).unwrap_err(),
        TokenError::UnsupportedAlgorithm
    );
    assert_process(addr, &ed_kidless, false, "EdDSA without kid").await;
    let rs_kidless = sign_raw(
        Algorithm::RS256,
        &rs,
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        &claims,
    );
    assert!(jwt.verify(&rs_kidless, TokenUse::Access).is_ok());

    let pem = std::fs::read(&rs_pub).unwrap();
    let text = String::from_utf8(pem.clone()).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    for secret in [pem.as_slice(), &der] {
        let token = common::sign_hs256(secret, common::CORE_HEADER, &claims);
        assert_eq!(
            jwt.verify(&token, TokenUse::Access).unwrap_err(),
            TokenError::InvalidSignature
        );
        assert_process(addr, &token, false, "HS256 keyed with the RSA public key").await;
    }
}

/// At most `MAX_PREVIOUS_SECRETS` previous secrets: more are refused at start-up with a clear
/// error; a ring built in code with more HMAC verification keys tries only the first ones for
/// tokens without kid (by kid, every key verifies).
#[test]
fn previous_secrets_are_bounded() {
    assert_eq!(tower_jwt_login::token::MAX_PREVIOUS_SECRETS, 4);
    let env = |list: &'static str| {
        move |k: &str| match k {
            "CORE_API_AUTH_JWT_PREVIOUS_SECRETS" => Some(list.to_owned()),
            _ => None,
        }
    };
    let config = CoreAuthConfig::default()
        .with_lookup(env("a, b, c, d"))
        .unwrap();
    let jwt = config
        .jwt_secret("new")
        .jwt_config()
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(jwt.kids().len(), 5);
    let err = CoreAuthConfig::default()
        .with_lookup(env("a, b, c, d, e"))
        .unwrap_err();
    assert_eq!(err, ConfigError::TooManyPreviousSecrets { count: 5 });
    assert_eq!(
        err.to_string(),
        "CORE_API_AUTH_JWT_PREVIOUS_SECRETS lists 5 secrets, but at most 4 are taken (a token \
         without kid may be tried against each): drop the oldest, whose tokens expired a refresh \
         lifetime after it stopped signing"
    );
    // Added in code, they are counted by `validate` too.
    let mut config = core_config(Duration::ZERO);
    for secret in ["a", "b", "c", "d", "e"] {
        config = config.jwt_keys_previous(secret);
    }
    assert_eq!(
        config.validate().unwrap_err(),
        ConfigError::TooManyPreviousSecrets { count: 5 }
    );

    let key = |s: &str| JwtKey::core_compatible("admin", "datarhei", s);
    let lone = |s: &str| {
        JwtConfig::new(key(s))
            .build()
            .unwrap()
            .issue_access("admin")
    };
    let ring = JwtConfig::new(key("new"))
        .verification_keys(["a", "b", "c", "d", "e"].map(|s| VerificationKey::hmac(key(s))))
        .build()
        .unwrap();
    for s in ["a", "b", "c", "d"] {
        assert!(ring.verify(&lone(s), TokenUse::Access).is_ok(), "{s}");
    }
    assert_eq!(
        ring.verify(&lone("e"), TokenUse::Access).unwrap_err(),
        TokenError::InvalidSignature
    );
    let e_with_kid = JwtConfig::new(key("e"))
        .verification_key(key("new"))
        .build()
        .unwrap()
        .issue_access("admin");
    assert!(ring.verify(&e_with_kid, TokenUse::Access).is_ok());
}

trait PreviousSecret {
    fn jwt_keys_previous(self, secret: &str) -> Self;
}

impl PreviousSecret for CoreAuthConfig {
    fn jwt_keys_previous(mut self, secret: &str) -> Self {
        self.jwt_keys = self.jwt_keys.previous_secret(secret);
        self
    }
}

/// The environment variables, read as the example server reads them.
#[test]
fn environment_variables() {
    let dir = key_dir("env");
    let (ed, _) = key_pair(&dir, "ed", Algorithm::EdDSA);
    let (_, rs_pub) = key_pair(&dir, "rs", Algorithm::RS256);
    let verify = format!("{}, {}", rs_pub.display(), ed.display());
    let env = [
        ("CORE_API_AUTH_ENABLE", "true"),
        ("CORE_API_AUTH_USERNAME", "admin"),
        ("CORE_API_AUTH_PASSWORD", "datarhei"),
        ("CORE_API_AUTH_JWT_SECRET", "secretsecret"),
        ("CORE_API_AUTH_JWT_ALGORITHM", "EdDSA"),
        ("CORE_API_AUTH_JWT_PRIVATE_KEY", ed.to_str().unwrap()),
        ("CORE_API_AUTH_JWT_VERIFY_KEYS", verify.as_str()),
        ("CORE_API_AUTH_JWT_PREVIOUS_SECRETS", "old1,old2"),
    ];
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    let config = CoreAuthConfig::default().with_lookup(lookup).unwrap();
    assert_eq!(config.jwt_keys.algorithm, Algorithm::EdDSA);
    assert_eq!(config.jwt_keys.verify_keys.len(), 2);
    // The private key file listed as a verify key too is the same key: refused as a duplicate.
    let err = config.jwt_config().unwrap().build().unwrap_err();
    let signing_kid = JwtConfig::new(SigningKey::from_pem_file(&ed).unwrap())
        .build()
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();
    assert_eq!(err, KeyError::DuplicateKid(signing_kid.clone()));
    assert_eq!(
        err.to_string(),
        format!(
            "two keys of the JWT key ring have the kid {signing_kid:?} (is a key listed twice?)"
        )
    );

    let env2: Vec<(&str, &str)> = env
        .iter()
        .map(|&(k, v)| match k {
            "CORE_API_AUTH_JWT_VERIFY_KEYS" => (k, rs_pub.to_str().unwrap()),
            _ => (k, v),
        })
        .collect();
    let lookup = |k: &str| {
        env2.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    let jwt = jwt_of(&CoreAuthConfig::default().with_lookup(lookup).unwrap());
    assert_eq!(jwt.kids().len(), 4); // EdDSA, RS256, two previous secrets
    assert_eq!(jwt.kid(), Some(signing_kid.as_str()));
    // A previous secret is keyed as Core keys its secret.
    let old = JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "old2"))
        .build()
        .unwrap();
    let old_token = old.issue_access("admin");
    let kid_old2 = jwt.kids()[3];
    let restamped = common::sign_hs256(
        b"admindatarheiold2",
        &format!("{{\"alg\":\"HS256\",\"kid\":\"{kid_old2}\",\"typ\":\"JWT\"}}"),
        &decode_parts(&old_token).1,
    );
    assert!(jwt.verify(&restamped, TokenUse::Access).is_ok());

    for (value, ok) in [
        ("HS384", true),
        ("RS256", true),
        ("none", false),
        ("hs256", false),
    ] {
        let r = CoreAuthConfig::default()
            .with_lookup(|k| (k == "CORE_API_AUTH_JWT_ALGORITHM").then(|| value.to_owned()));
        assert_eq!(r.is_ok(), ok, "{value}");
        if !ok {
            assert_eq!(
                r.unwrap_err().to_string(),
                format!(
                    "CORE_API_AUTH_JWT_ALGORITHM={value:?} is not one of HS256, HS384, HS512, \
                     EdDSA, ES256, RS256"
                )
            );
        }
    }
}

/// An asymmetric algorithm without a key file: a fresh key (warned about), which works.
#[tokio::test]
async fn fresh_keys_without_a_key_file() {
    for alg in ASYMMETRIC {
        let config = config_with(alg, None);
        let addr = spawn_core(config).await;
        let (access, refresh) = login(addr).await;
        assert!(
            decode_parts(&access)
                .0
                .starts_with(&format!("{{\"alg\":\"{}\",\"kid\":", alg.as_str()))
        );
        assert_process(addr, &access, true, alg.as_str()).await;
        let reply = Req::get("/api/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await;
        assert_eq!(reply.status, 200);
        let jwks = Req::get("/.well-known/jwks.json").send(addr).await;
        assert_eq!(jwks.status, 200);
        assert_eq!(jwks.json()["keys"][0]["alg"], alg.as_str());
    }
    // Two fresh keys differ.
    let a = jwt_of(&config_with(Algorithm::EdDSA, None));
    let b = jwt_of(&config_with(Algorithm::EdDSA, None));
    assert_ne!(a.kid(), b.kid());
}

/// Bad key files stop start-up (the example's `app` fails) with a message naming the file and
/// the problem.
#[test]
fn bad_key_files_stop_startup_with_clear_messages() {
    let dir = key_dir("bad");
    let path = |name: &str| dir.join(name);
    let p = |name: &str| path(name).to_str().unwrap().to_owned();
    std::fs::write(path("text.pem"), "just some text\n").unwrap();
    std::fs::write(
        path("truncated.pem"),
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n",
    )
    .unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        &p("rsa1024.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("rsa1024.pem"),
        "-pubout",
        "-out",
        &p("rsa1024.pub.pem"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &p("p384.pem"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p("p256.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("p256.pem"),
        "-traditional",
        "-out",
        &p("sec1.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("p256.pem"),
        "-pubout",
        "-out",
        &p("p256.pub.pem"),
    ]);
    openssl(&["genpkey", "-algorithm", "ed448", "-out", &p("ed448.pem")]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &p("p256.pem"),
        "-subj",
        "/CN=test",
        "-days",
        "1",
        "-out",
        &p("cert.pem"),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &p("p256.pem"),
        "-passout",
        "pass:pw",
        "-out",
        &p("encrypted.pem"),
    ]);

    let ed448_oid = "1.3.101.113";
    let cases: Vec<(Algorithm, Option<&str>, &str, String)> = vec![
        (
            Algorithm::ES256,
            Some("missing.pem"),
            "",
            "cannot be read: No such file or directory (os error 2)".to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("text.pem"),
            "",
            "not a PEM file (expected -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)"
                .to_owned(),
        ),
        (
            Algorithm::EdDSA,
            Some("truncated.pem"),
            "",
            "not a PEM file (expected -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)"
                .to_owned(),
        ),
        (
            Algorithm::RS256,
            Some("rsa1024.pem"),
            "",
            "RSA key of 1024 bits; at least 2048 bits are required".to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("p384.pem"),
            "",
            "wrong key type: an EC key on another curve than P-256 (ES256 needs P-256)".to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("sec1.pem"),
            "",
            "wrong key type: EC PRIVATE KEY is PKCS#1 / SEC 1, not PKCS#8; convert it with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY8.pem`"
                .to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("p256.pub.pem"),
            "",
            "a public key cannot sign; give the PKCS#8 private key (-----BEGIN PRIVATE KEY-----)"
                .to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("cert.pem"),
            "",
            "wrong key type: a certificate; give the key (`openssl x509 -in CERT -pubkey -noout`)"
                .to_owned(),
        ),
        (
            Algorithm::ES256,
            Some("encrypted.pem"),
            "",
            "wrong key type: an encrypted PKCS#8 key; decrypt it with \
             `openssl pkcs8 -in KEY -out PLAIN.pem`"
                .to_owned(),
        ),
        (
            Algorithm::EdDSA,
            Some("ed448.pem"),
            "",
            format!(
                "wrong key type: a private key of type {ed448_oid}; Ed25519, P-256 or RSA are supported"
            ),
        ),
        (
            Algorithm::RS256,
            Some("p256.pem"),
            "",
            "wrong key type: an ES256 key, but CORE_API_AUTH_JWT_ALGORITHM is RS256".to_owned(),
        ),
        // Verification keys.
        (
            Algorithm::HS256,
            None,
            "rsa1024.pub.pem",
            "RSA key of 1024 bits; at least 2048 bits are required".to_owned(),
        ),
        (
            Algorithm::HS256,
            None,
            "text.pem",
            "not a PEM file (expected -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)"
                .to_owned(),
        ),
        (
            Algorithm::HS256,
            None,
            "missing.pem",
            "cannot be read: No such file or directory (os error 2)".to_owned(),
        ),
    ];
    for (alg, private, verify, problem) in cases {
        let mut config = config_with(alg, private.map(&path).as_deref());
        if !verify.is_empty() {
            config.jwt_keys.verify_keys = vec![path(verify)];
        }
        let file = private.unwrap_or(verify);
        let err = core_server::app(&config).expect_err(file);
        assert_eq!(
            err.to_string(),
            format!("{}: {problem}", path(file).display()),
            "{file}"
        );
        assert!(matches!(
            err.downcast_ref::<KeyError>(),
            Some(KeyError::BadKey { .. })
        ));
    }
}
