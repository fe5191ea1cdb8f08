//! Auth0 login (docs/protocol.md §5): a Bearer Auth0 access token on `POST /api/login` is exchanged
//! for the crate's own token pair.
//!
//! [`LoginService::auth0`](crate::login::LoginService::auth0) takes an [`Auth0Provider`]. A
//! provider looks at the bearer and answers with an [`Auth0Verdict`]: not mine (the login is then
//! "no credentials", 400), valid for a subject (200 and a token pair), or invalid with a short,
//! fixed reason (401 `Invalid authorization credentials: <reason>`).
//!
//! ```
//! use tower_jwt_login::auth0::{Auth0Provider, Auth0Verdict};
//!
//! /// Accepts one hard-wired opaque token (a stand-in for a real verifier).
//! struct OneToken;
//!
//! impl Auth0Provider for OneToken {
//!     async fn verify(&self, bearer: &str) -> Auth0Verdict {
//!         match bearer {
//!             "let-me-in" => Auth0Verdict::Valid { principal: "auth0|42".into() },
//!             "banned" => Auth0Verdict::Invalid { reason: "user not allowed" },
//!             _ => Auth0Verdict::NotMine,
//!         }
//!     }
//! }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! assert_eq!(OneToken.verify("let-me-in").await, Auth0Verdict::Valid { principal: "auth0|42".into() });
//! assert_eq!(NoAuth0.verify("let-me-in").await, Auth0Verdict::NotMine);
//! # });
//! # use tower_jwt_login::auth0::NoAuth0;
//! ```
#![cfg_attr(
    feature = "auth0",
    doc = "
The crate's own provider is [`JwksProvider`] (cargo feature `auth0`): Core's tenants
([`Auth0Tenant`], read from the environment by [`Auth0Config`]), each token verified against
the tenant's JWKS, fetched over HTTPS by a [`JwksCache`] that refreshes, re-fetches on an
unknown `kid` (single flight, a few times a minute at most: [`JwksSettings::refetch_budget`]) and
keeps serving cached keys through an outage."
)]
#![cfg_attr(
    not(feature = "auth0"),
    doc = "
The crate's own provider, `JwksProvider`, needs the cargo feature `auth0`; Core's tenants
([`Auth0Tenant`], read from the environment by [`Auth0Config`]) are always available."
)]

use std::future::Future;

mod tenant;
pub use tenant::{Auth0Config, Auth0Tenant, TenantError, TenantProblem};

#[cfg(feature = "auth0")]
mod cache;
#[cfg(feature = "auth0")]
mod fetch;
#[cfg(feature = "auth0")]
mod provider;
#[cfg(feature = "auth0")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth0")))]
pub use cache::{JwksCache, JwksSettings};
#[cfg(feature = "auth0")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth0")))]
pub use fetch::{FetchError, HttpsFetcher, JwksFetcher, TlsSetupError};
#[cfg(feature = "auth0")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth0")))]
pub use provider::JwksProvider;

/// What a provider says about a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth0Verdict {
    /// Not issued by any tenant of this provider (its `iss` is unknown, or it is no JWT): another
    /// provider or none may claim it. With no taker the login answers 400
    /// `Missing authorization credentials`.
    NotMine,
    /// Issued by a tenant and valid: the crate mints tokens for `principal` (its subject is
    /// the Auth0 `sub`; a provider of your own may add extra claims, such as roles mapped from
    /// the Auth0 token's permissions).
    Valid {
        /// The subject and extra claims of the minted tokens.
        principal: crate::token::Principal,
    },
    /// Issued by a tenant but refused; answered with 401
    /// `Invalid authorization credentials: <reason>`. Keep reasons short and fixed: never the
    /// token or a library's error text.
    Invalid {
        /// A short fixed reason, e.g. `user not allowed`, `token expired`.
        reason: &'static str,
    },
}

/// Verifies Auth0 (or any OIDC) access tokens presented on the login route. Native `async fn`.
pub trait Auth0Provider: Send + Sync + 'static {
    /// The verdict on `bearer` (the token without the `Bearer ` scheme).
    fn verify(&self, bearer: &str) -> impl Future<Output = Auth0Verdict> + Send;
}

/// No Auth0 login: every bearer is [`Auth0Verdict::NotMine`]. The default of
/// [`LoginService`](crate::login::LoginService).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth0;

impl Auth0Provider for NoAuth0 {
    async fn verify(&self, _bearer: &str) -> Auth0Verdict {
        Auth0Verdict::NotMine
    }
}
