//! `bearer_token` on one to three arbitrary `Authorization` header values.
#![no_main]

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use tower_jwt_login::bearer::bearer_token;
use tower_jwt_login::error::AuthError;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for part in data.split(|b| *b == b'\n').take(3) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(AUTHORIZATION, value);
        }
    }
    let count = headers.get_all(AUTHORIZATION).iter().count();
    match bearer_token(&headers) {
        Ok(token) => {
            assert_eq!(count, 1);
            let value = headers[AUTHORIZATION]
                .to_str()
                .expect("accepted value is text");
            assert!(value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer "));
            assert!(value.ends_with(token));
            assert!(!token.is_empty());
            assert!(
                token
                    .trim_end_matches('=')
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
            );
        }
        Err(AuthError::MissingToken) => assert_eq!(count, 0),
        Err(AuthError::MultipleAuthorizationHeaders) => assert!(count > 1),
        Err(_) => assert_eq!(count, 1),
    }
});
