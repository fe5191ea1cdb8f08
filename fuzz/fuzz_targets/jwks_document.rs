//! JWKS documents: a `JwksCache` whose fetcher answers with the fuzz input; parsing never
//! panics, and only well-formed signature keys end up in the cache.
#![no_main]

#[path = "common.rs"]
mod common;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_jwt_login::auth0::{FetchError, JwksCache, JwksFetcher, JwksSettings};

struct Fixed(Bytes);

impl JwksFetcher for Fixed {
    async fn fetch(&self, _url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        if self.0.len() > max_bytes {
            return Err(FetchError::TooLarge);
        }
        Ok(self.0.clone())
    }
}

fuzz_target!(|data: &[u8]| {
    let cache = JwksCache::new(
        "https://tenant.example/.well-known/jwks.json",
        Fixed(Bytes::copy_from_slice(data)),
        JwksSettings::default(),
    );
    let outcome = common::runtime().block_on(cache.refresh());
    let kids = cache.key_ids();
    if outcome.is_err() {
        assert!(kids.is_empty());
    }
    if !kids.is_empty() {
        // Whatever was accepted came from a JSON document with a `keys` array.
        let v: serde_json::Value = serde_json::from_slice(data).expect("accepted JWKS is JSON");
        assert!(v["keys"].is_array());
    }
});
