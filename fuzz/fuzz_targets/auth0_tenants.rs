//! `CORE_API_AUTH_AUTH0_TENANTS` parsing (both spellings: `auth0://…` URLs and base64 JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_login::auth0::Auth0Tenant;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tenants) = Auth0Tenant::parse_list(text) {
        for tenant in tenants {
            assert!(!tenant.domain().is_empty());
            let issuer = tenant.issuer();
            assert!(issuer.starts_with("https://") && issuer.ends_with('/'));
            let _ = (tenant.jwks_url(), tenant.auths_entry(), tenant.allows("x"));
        }
    }
    let _ = Auth0Tenant::parse(text);
});
