//! Fetching a JWKS document: the [`JwksFetcher`] trait and the default [`HttpsFetcher`]
//! (hyper's client over rustls, with the system trust store).
//!
//! ```
//! use bytes::Bytes;
//! use tower_jwt_login::auth0::{FetchError, JwksFetcher};
//!
//! /// Serves a fixed document: e.g. keys shipped with the app, or a test double.
//! struct Fixed(&'static str);
//!
//! impl JwksFetcher for Fixed {
//!     async fn fetch(&self, _url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
//!         if self.0.len() > max_bytes {
//!             return Err(FetchError::TooLarge);
//!         }
//!         Ok(Bytes::from_static(self.0.as_bytes()))
//!     }
//! }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let doc = Fixed(r#"{"keys":[]}"#).fetch("https://example/.well-known/jwks.json", 1024).await;
//! assert_eq!(doc.unwrap(), Bytes::from_static(br#"{"keys":[]}"#));
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Fetches the bytes of a JWKS document. Implement it to bring your own HTTP client (a proxy,
/// mTLS, a mirror); [`JwksCache`](super::JwksCache) adds the timeout, parses the result and
/// decides when to call it.
pub trait JwksFetcher: Send + Sync + 'static {
    /// The body of a `200` answer to `GET url`, at most `max_bytes` long: stop reading and
    /// answer [`FetchError::TooLarge`] beyond that.
    fn fetch(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Bytes, FetchError>> + Send;
}

/// Why a JWKS fetch failed. The cache logs it and keeps serving the keys it has.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse.
    InvalidUrl,
    /// Connecting, TLS or reading failed.
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// The answer was not `200 OK`.
    Status(StatusCode),
    /// The body exceeds the size limit.
    TooLarge,
    /// No answer within the fetch timeout.
    Timeout,
    /// The body is not a JWKS document (`{"keys":[…]}`).
    InvalidDocument,
    /// The document holds no usable signing key (cached keys are kept).
    NoUsableKey,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl => f.write_str("invalid JWKS URL"),
            FetchError::Transport(e) => {
                // hyper's errors are terse ("client error (Connect)"); the cause is below.
                write!(f, "transport error: {e}")?;
                let mut source = e.source();
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            FetchError::Status(s) => write!(f, "HTTP status {s}"),
            FetchError::TooLarge => f.write_str("JWKS document too large"),
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::InvalidDocument => f.write_str("not a JWKS document"),
            FetchError::NoUsableKey => f.write_str("JWKS document without a usable signing key"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Transport(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// The TLS client could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// No trusted root certificate was found (set `SSL_CERT_FILE` or `SSL_CERT_DIR`, or install
    /// the system's CA bundle).
    NoRootCertificates {
        /// What the loader reported, for the operator.
        details: String,
    },
    /// The PEM given holds no certificate rustls accepts.
    InvalidPem,
    /// rustls refused the configuration.
    Tls(rustls::Error),
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::NoRootCertificates { details } => write!(
                f,
                "no trusted root certificates found (install the system CA bundle or set \
                 SSL_CERT_FILE){}{details}",
                if details.is_empty() { "" } else { ": " }
            ),
            TlsSetupError::InvalidPem => f.write_str("no usable certificate in the PEM data"),
            TlsSetupError::Tls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// The default fetcher: HTTP/1.1 over rustls (the `ring` provider, TLS 1.2 and 1.3), pooled
/// connections, no redirects followed. Plain `http://` only for URLs the app set explicitly with
/// [`Auth0Tenant::with_jwks_url`](super::Auth0Tenant::with_jwks_url).
#[derive(Clone)]
pub struct HttpsFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl fmt::Debug for HttpsFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsFetcher").finish_non_exhaustive()
    }
}

impl HttpsFetcher {
    /// Trusts the system's root certificates — or, like OpenSSL-based clients, the PEM file in
    /// `SSL_CERT_FILE` / the directory in `SSL_CERT_DIR` when set (so a private CA works).
    pub fn new() -> Result<Self, TlsSetupError> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            let details = loaded
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TlsSetupError::NoRootCertificates { details });
        }
        for error in &loaded.errors {
            tracing::warn!(%error, "some system root certificates could not be loaded");
        }
        Self::with_roots(roots)
    }

    /// Trusts exactly the certificates in `pem` (e.g. a private CA), not the system's.
    pub fn with_root_certificates_pem(pem: &[u8]) -> Result<Self, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsSetupError::InvalidPem)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TlsSetupError::InvalidPem);
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: rustls::RootCertStore) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(crate::tls::ring_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(HttpsFetcher { client })
    }
}

impl JwksFetcher for HttpsFetcher {
    async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        let uri: Uri = url.parse().map_err(|_| FetchError::InvalidUrl)?;
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("tower-jwt-login/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|_| FetchError::InvalidUrl)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::Transport(Box::new(e)))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Err(FetchError::TooLarge);
        }
        match Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
        {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(FetchError::TooLarge),
            Err(e) => Err(FetchError::Transport(e)),
        }
    }
}
