//! Shared helpers of the fuzz targets (included with `#[path]`; not a target itself).
#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower_jwt_login::{Jwt, JwtConfig, JwtKey};

/// Core's key for admin/datarhei/secretsecret.
pub const KEY: &[u8] = b"admindatarheisecretsecret";

pub fn jwt() -> &'static Jwt {
    static JWT: OnceLock<Jwt> = OnceLock::new();
    JWT.get_or_init(|| {
        JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "secretsecret"))
            .build()
            .expect("key")
    })
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// `b64(header).b64(claims).b64(HMAC-SHA256(KEY, …))`: a validly signed token over any bytes.
pub fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("hmac key");
    mac.update(input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Splits `data` at the first `\n` (header, claims); without one, the header is Core's.
pub fn split_header_claims(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (br#"{"alg":"HS256","typ":"JWT"}"#.as_slice(), data),
    }
}
