//! [`JwksProvider`]: the production [`Auth0Provider`] — Auth0 access tokens verified against each
//! tenant's JWKS.
//!
//! A bearer is claimed by the first tenant (in configuration order) whose issuer
//! `https://<domain>/` equals the token's `iss` exactly; anything else — no JWT, no `iss`, an
//! unknown issuer — is [`Auth0Verdict::NotMine`]. A claimed token must then pass, in order:
//!
//! | check | reason when it fails |
//! |---|---|
//! | header `alg` is RS256, PS256, ES256 or EdDSA; no `crit` | `unsupported algorithm` / `invalid token` |
//! | header `kid` names a cached key (else one single-flight re-fetch, within the re-fetch budget) | `unknown key`, `keys unavailable` |
//! | that JWK is usable: `use: "sig"`, RSA ≥ 2048 bits, not `oct` | `key not for signing`, `key too weak`, `symmetric key refused`, … |
//! | the JWK's `alg` equals the token's | `algorithm mismatch` |
//! | the signature | `invalid signature` |
//! | `exp` present and not past (with leeway) | `invalid token` / `token expired` |
//! | `nbf`, `iat` not in the future (with leeway) | `token not yet valid` |
//! | `aud` (string or array) contains the tenant's audience | `invalid audience` |
//! | `sub` is one of the tenant's users | `user not allowed` |
//!
//! Header fields `jku`, `x5u`, `jwk` and `x5c` are never looked at: keys come only from the
//! tenant's configured JWKS URL.
//!
//! ```
//! use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
//! use bytes::Bytes;
//! use tower_jwt_login::auth0::{
//!     Auth0Provider, Auth0Tenant, Auth0Verdict, FetchError, JwksFetcher, JwksProvider,
//!     JwksSettings,
//! };
//! use tower_jwt_login::login::LoginService;
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! /// A JWKS endpoint that is down.
//! struct Offline;
//! impl JwksFetcher for Offline {
//!     async fn fetch(&self, _url: &str, _max: usize) -> Result<Bytes, FetchError> {
//!         Err(FetchError::Timeout)
//!     }
//! }
//!
//! let tenant = Auth0Tenant::new("example.eu.auth0.com", "https://api.example")
//!     .clientid("my-client")
//!     .user("auth0|64f0c0ffee");
//! // In production `JwksProvider::new([tenant])?`: HTTPS with the system trust store (or
//! // SSL_CERT_FILE). Either way nothing is fetched before the first Auth0 login.
//! let auth0 = JwksProvider::with_fetcher([tenant], JwksSettings::default(), Offline);
//! assert_eq!(
//!     auth0.auths(), // for the discovery document, after "localjwt"
//!     ["auth0 domain=example.eu.auth0.com audience=https://api.example clientid=my-client"]
//! );
//!
//! let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
//! let claimed = format!(
//!     "{}.{}.c2ln",
//!     b64(r#"{"alg":"RS256","kid":"k1"}"#),
//!     b64(r#"{"iss":"https://example.eu.auth0.com/","sub":"auth0|64f0c0ffee"}"#)
//! );
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! assert_eq!(
//!     auth0.verify(&claimed).await,
//!     Auth0Verdict::Invalid { reason: "keys unavailable" }
//! );
//! assert_eq!(auth0.verify("an-opaque-token").await, Auth0Verdict::NotMine);
//! # });
//!
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let login = LoginService::new(jwt, PlaintextUser::new("admin", "datarhei")).auth0(auth0);
//! # let _ = login;
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::cache::{JwksCache, JwksSettings, Lookup};
use super::fetch::{HttpsFetcher, JwksFetcher, TlsSetupError};
use super::tenant::Auth0Tenant;
use super::{Auth0Provider, Auth0Verdict};
use crate::json::parse_object;
use crate::metrics::Metrics;

/// Bearers longer than this are not looked at (no Auth0 access token comes close).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies Auth0 access tokens for a fixed list of tenants, with a [`JwksCache`] per JWKS URL
/// (tenants sharing a domain share the cache). Cheap to clone.
pub struct JwksProvider<F = HttpsFetcher> {
    tenants: Arc<[TenantVerifier<F>]>,
    leeway: Duration,
}

struct TenantVerifier<F> {
    tenant: Auth0Tenant,
    issuer: String,
    cache: JwksCache<F>,
}

impl<F> Clone for JwksProvider<F> {
    fn clone(&self) -> Self {
        JwksProvider {
            tenants: Arc::clone(&self.tenants),
            leeway: self.leeway,
        }
    }
}

impl<F> fmt::Debug for JwksProvider<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksProvider")
            .field(
                "tenants",
                &self.tenants.iter().map(|t| &t.tenant).collect::<Vec<_>>(),
            )
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwksProvider<HttpsFetcher> {
    /// The tenants, fetching keys over HTTPS trusting the system roots (or `SSL_CERT_FILE`),
    /// with the default [`JwksSettings`]. Fails only if no trusted root certificate is found.
    pub fn new(tenants: impl IntoIterator<Item = Auth0Tenant>) -> Result<Self, TlsSetupError> {
        Self::with_settings(tenants, JwksSettings::default())
    }

    /// As [`new`](Self::new), with these cache settings.
    pub fn with_settings(
        tenants: impl IntoIterator<Item = Auth0Tenant>,
        settings: JwksSettings,
    ) -> Result<Self, TlsSetupError> {
        Ok(Self::with_fetcher(tenants, settings, HttpsFetcher::new()?))
    }
}

impl<F: JwksFetcher> JwksProvider<F> {
    /// The tenants, fetching keys with the app's `fetcher`.
    pub fn with_fetcher(
        tenants: impl IntoIterator<Item = Auth0Tenant>,
        settings: JwksSettings,
        fetcher: F,
    ) -> Self {
        crate::ensure_jsonwebtoken_backend();
        let fetcher = Arc::new(fetcher);
        let mut caches: HashMap<String, JwksCache<F>> = HashMap::new();
        let tenants: Vec<TenantVerifier<F>> = tenants
            .into_iter()
            .map(|tenant| {
                let url = tenant.jwks_url();
                let cache = caches
                    .entry(url.clone())
                    .or_insert_with(|| JwksCache::shared(url, Arc::clone(&fetcher), settings))
                    .clone();
                TenantVerifier {
                    issuer: tenant.issuer(),
                    tenant,
                    cache,
                }
            })
            .collect();
        JwksProvider {
            tenants: tenants.into(),
            leeway: Duration::from_secs(30),
        }
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat` (default 30 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Counts the JWKS fetches of every tenant's cache in `metrics`.
    #[must_use]
    pub fn metrics(self, metrics: &Metrics) -> Self {
        for tenant in self.tenants.iter() {
            tenant.cache.attach_metrics(metrics);
        }
        self
    }

    /// The tenants, in configuration order.
    pub fn tenants(&self) -> impl Iterator<Item = &Auth0Tenant> {
        self.tenants.iter().map(|t| &t.tenant)
    }

    /// The key cache of the first tenant with `domain` (for warming, metrics or inspection).
    pub fn cache(&self, domain: &str) -> Option<&JwksCache<F>> {
        self.tenants
            .iter()
            .find(|t| t.tenant.domain() == domain)
            .map(|t| &t.cache)
    }

    /// The discovery `auths` entries (docs/protocol.md §6), in order; they follow
    /// [`LOCAL_JWT`](crate::discovery::LOCAL_JWT).
    pub fn auths(&self) -> Vec<String> {
        self.tenants().map(Auth0Tenant::auths_entry).collect()
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
}

/// A JWS in compact form, split and decoded but not verified.
struct Parsed<'a> {
    header: JoseHeader,
    payload: Payload,
    /// `header.payload`, the signed bytes.
    message: &'a str,
    signature: &'a str,
}

fn parse(token: &str) -> Option<Parsed<'_>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (message, signature) = token.rsplit_once('.')?;
    let (header, payload) = message.split_once('.')?;
    if header.is_empty() || payload.is_empty() || signature.is_empty() || payload.contains('.') {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(header).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    Some(Parsed {
        header: parse_object(&header)?,
        payload: parse_object(&payload)?,
        message,
        signature,
    })
}

impl<F: JwksFetcher> Auth0Provider for JwksProvider<F> {
    async fn verify(&self, bearer: &str) -> Auth0Verdict {
        let Some(token) = parse(bearer) else {
            return Auth0Verdict::NotMine;
        };
        let Some(iss) = token.payload.iss.as_deref() else {
            return Auth0Verdict::NotMine;
        };
        let mut first_refusal = None;
        for tenant in self.tenants.iter().filter(|t| t.issuer == iss) {
            match self.check(tenant, &token).await {
                Ok(subject) => {
                    return Auth0Verdict::Valid {
                        principal: subject.into(),
                    };
                }
                Err(reason) => {
                    tracing::debug!(issuer = iss, reason, "auth0 token refused");
                    first_refusal.get_or_insert(reason);
                }
            }
        }
        match first_refusal {
            Some(reason) => Auth0Verdict::Invalid { reason },
            None => Auth0Verdict::NotMine,
        }
    }
}

impl<F: JwksFetcher> JwksProvider<F> {
    /// Every check of a token claimed by `tenant`; the error is the fixed reason.
    async fn check(
        &self,
        tenant: &TenantVerifier<F>,
        token: &Parsed<'_>,
    ) -> Result<String, &'static str> {
        let alg = match token.header.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "PS256" => Algorithm::PS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            _ => return Err("unsupported algorithm"),
        };
        if token.header.crit.is_some() {
            return Err("invalid token");
        }
        let kid = token.header.kid.as_deref().ok_or("unknown key")?;
        let key = match tenant.cache.lookup(kid).await {
            Lookup::Found(key) => key,
            Lookup::Refused(reason) => return Err(reason),
            Lookup::Unknown => return Err("unknown key"),
            Lookup::Unavailable => return Err("keys unavailable"),
        };
        if key.alg != alg {
            return Err("algorithm mismatch");
        }
        let signed =
            jsonwebtoken::crypto::verify(token.signature, token.message.as_bytes(), &key.key, alg);
        if !matches!(signed, Ok(true)) {
            return Err("invalid signature");
        }
        self.check_claims(&tenant.tenant, &token.payload)
    }

    fn check_claims(&self, tenant: &Auth0Tenant, claims: &Payload) -> Result<String, &'static str> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let leeway = self.leeway.as_secs_f64();
        let exp = numeric(claims.exp.as_ref()).ok_or("invalid token")?;
        if now >= exp + leeway {
            return Err("token expired");
        }
        for value in [&claims.nbf, &claims.iat].into_iter().flatten() {
            let t = numeric(Some(value)).ok_or("invalid token")?;
            if t > now + leeway {
                return Err("token not yet valid");
            }
        }
        let audience_ok = match &claims.aud {
            Some(Value::String(aud)) => aud == tenant.audience(),
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(tenant.audience())),
            _ => false,
        };
        if !audience_ok {
            return Err("invalid audience");
        }
        let sub = match &claims.sub {
            Some(Value::String(sub)) if !sub.is_empty() => sub,
            _ => return Err("invalid token"),
        };
        if !tenant.allows(sub) {
            return Err("user not allowed");
        }
        Ok(sub.clone())
    }
}

/// A JSON number as seconds (NumericDate may have a fraction); anything else is `None`.
fn numeric(value: Option<&Value>) -> Option<f64> {
    value.and_then(Value::as_f64).filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn parse_refuses_non_jws() {
        let h = seg(r#"{"alg":"RS256","kid":"k"}"#);
        let p = seg(r#"{"iss":"https://t/"}"#);
        assert!(parse(&format!("{h}.{p}.c2ln")).is_some());
        for bad in [
            String::new(),
            "opaque".to_owned(),
            format!("{h}.{p}"),
            format!("{h}.{p}."),
            format!("{h}.{p}.sig.extra"),
            format!(".{p}.sig"),
            format!("{h}..sig"),
            format!("{h}=.{p}.sig"),
            format!("{}.{p}.sig", seg("[1]")),
            format!("{h}.{}.sig", seg(r#"{"iss":"a","iss":"b"}"#)),
            format!("{h}.{}.sig", seg(r#"{"iss":5}"#)),
            format!("{}.{p}.sig", seg(r#"{"kid":"k"}"#)),
            format!("{h}.{p}.{}", "A".repeat(MAX_TOKEN_LEN)),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(numeric(Some(&serde_json::json!(5))), Some(5.0));
        assert_eq!(numeric(Some(&serde_json::json!(5.5))), Some(5.5));
        assert_eq!(numeric(Some(&serde_json::json!("5"))), None);
        assert_eq!(numeric(None), None);
    }
}
