//! The rustls crypto provider of the crate's TLS clients: Redis over `rediss://` (feature
//! `redis`, only when the app installed no process-wide provider) and the Auth0 key fetch
//! (feature `auth0`).

/// *ring*'s provider: the crate's one crypto library, which needs no CMake or Go to build.
///
/// rustls 0.23.48 deprecates it because *ring* has no post-quantum key exchange
/// (X25519MLKEM768); that is the one difference to aws-lc-rs's. An app that wants it for Redis
/// installs aws-lc-rs's provider as the process default before connecting, and the crate uses
/// that. Allowed here, in one place, so that every other deprecation still fails the build.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
