//! Auth0 test kit: keys generated here (RSA 2048/1024, P-256, Ed25519), tokens signed with
//! jsonwebtoken from their DER, a loopback JWKS server (plain or TLS with a test CA) that counts
//! requests and can be switched into failure modes, and the example server wired to a
//! [`JwksProvider`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tower_jwt_login::auth0::{Auth0Tenant, HttpsFetcher, JwksProvider, JwksSettings};

use crate::common::{core_config, core_server, spawn_router};

pub const DOMAIN: &str = "tenant.auth0.test";
pub const ISSUER: &str = "https://tenant.auth0.test/";
pub const AUDIENCE: &str = "https://core.example/api";
pub const CLIENT_ID: &str = "test-client";
pub const ALLOWED: &str = "auth0|allowed";

// ------------------------------------------------------------------------------------ keys

pub enum TestKey {
    Rsa(rsa::RsaPrivateKey),
    Ec(p256::SecretKey),
    Ed(ed25519_dalek::SigningKey),
}

impl TestKey {
    pub fn rsa(bits: usize) -> Self {
        TestKey::Rsa(rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap())
    }
    pub fn ec() -> Self {
        TestKey::Ec(p256::SecretKey::random(&mut rand::rngs::OsRng))
    }
    pub fn ed() -> Self {
        TestKey::Ed(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The public JWK with these `kid`, `alg` and `use`.
    pub fn jwk(&self, kid: &str, alg: &str, use_: &str) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            TestKey::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                json!({"kty": "RSA", "kid": kid, "alg": alg, "use": use_,
                       "n": b64(&k.n().to_bytes_be()), "e": b64(&k.e().to_bytes_be())})
            }
            TestKey::Ec(k) => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let point = k.public_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": alg, "use": use_,
                       "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            TestKey::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": alg, "use": use_,
                       "x": b64(&k.verifying_key().to_bytes())})
            }
        }
    }

    pub fn encoding_key(&self) -> EncodingKey {
        match self {
            TestKey::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                EncodingKey::from_rsa_der(k.to_pkcs1_der().unwrap().as_bytes())
            }
            TestKey::Ec(k) => {
                use p256::pkcs8::EncodePrivateKey;
                EncodingKey::from_ec_der(k.to_pkcs8_der().unwrap().as_bytes())
            }
            TestKey::Ed(k) => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                EncodingKey::from_ed_der(k.to_pkcs8_der().unwrap().as_bytes())
            }
        }
    }

    /// A token with exactly this header and these claims, signed by this key with `alg`.
    ///
    /// RS256 is signed with the `rsa` crate directly: some jsonwebtoken backends (aws-lc-rs)
    /// refuse to sign with keys under 2048 bits, and the weak-key test needs a token that is
    /// validly signed by one.
    pub fn sign(&self, alg: Algorithm, header: &Value, claims: &Value) -> String {
        if let (TestKey::Rsa(k), Algorithm::RS256) = (self, alg) {
            use rsa::signature::{SignatureEncoding, Signer};
            let message = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.clone());
            let signature = signer.sign(message.as_bytes()).to_vec();
            return format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
        }
        sign_with(&self.encoding_key(), alg, header, claims)
    }

    /// A standard Auth0-shaped token: header `{"alg","typ":"JWT","kid"}`.
    pub fn token(&self, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": alg_name(alg), "typ": "JWT", "kid": kid});
        self.sign(alg, &header, claims)
    }
}

pub fn sign_with(key: &EncodingKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::RS384 => "RS384",
        other => panic!("no name for {other:?}"),
    }
}

/// Keys generated once per test binary (RSA generation is the slow part).
pub struct Keys {
    pub rsa: TestKey,
    pub rsa_rotated: TestKey,
    pub rsa_weak: TestKey,
    pub attacker: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: TestKey::rsa(2048),
        rsa_rotated: TestKey::rsa(2048),
        rsa_weak: TestKey::rsa(1024),
        attacker: TestKey::rsa(2048),
        ec: TestKey::ec(),
        ed: TestKey::ed(),
    })
}

/// The tenant's usual JWKS: an RS256, a PS256, an ES256 and an EdDSA key.
pub fn standard_jwks() -> Value {
    let k = keys();
    json!({"keys": [
        k.rsa.jwk("rsa", "RS256", "sig"),
        k.rsa_rotated.jwk("pss", "PS256", "sig"),
        k.ec.jwk("ec", "ES256", "sig"),
        k.ed.jwk("ed", "EdDSA", "sig"),
    ]})
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Auth0 access-token claims for `sub`, valid for an hour.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": [AUDIENCE, "https://tenant.auth0.test/userinfo"],
        "iat": now - 10,
        "exp": now + 3600,
        "azp": CLIENT_ID,
        "scope": "openid profile",
    })
}

/// `claims(ALLOWED)` with `key` set to `value` (`Value::Null` removes it).
pub fn claims_with(key: &str, value: Value) -> Value {
    let mut c = claims(ALLOWED);
    if value.is_null() {
        c.as_object_mut().unwrap().remove(key);
    } else {
        c[key] = value;
    }
    c
}

// ------------------------------------------------------------------------- JWKS server

/// What the loopback JWKS server answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with this document.
    Serve(Value),
    /// 500 Internal Server Error.
    Error500,
    /// Waits this long, then serves the document.
    Slow(Duration, Value),
    /// 200 with a body that is not JSON.
    InvalidJson,
    /// 200 with 10 MB, `Content-Length` announced.
    Huge,
    /// 200 with 10 MB and no `Content-Length` (read until close).
    HugeUnannounced,
}

/// A loopback HTTP(S) server answering every request per its [`Mode`], counting requests.
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(mode: Mode) -> Self {
        Self::start_inner(mode, None).await
    }

    pub async fn start_tls(mode: Mode, tls: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        Self::start_inner(mode, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_inner(mode: Mode, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(mode)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let this = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                this.serve(stream).await;
                            }
                        }
                        None => this.serve(stream).await,
                    }
                });
            }
        });
        server
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Requests received so far (counted when the request head has arrived).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&byte[..n]),
            }
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        let mode = self.mode.lock().unwrap().clone();
        let ok = |body: &[u8]| {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        };
        let response = match mode {
            Mode::Serve(doc) => ok(doc.to_string().as_bytes()),
            Mode::Slow(delay, doc) => {
                tokio::time::sleep(delay).await;
                ok(doc.to_string().as_bytes())
            }
            Mode::Error500 => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            Mode::InvalidJson => ok(b"<html>maintenance</html>"),
            Mode::Huge => ok(&huge()),
            Mode::HugeUnannounced => {
                let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".to_vec();
                r.extend_from_slice(&huge());
                r
            }
        };
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    }
}

/// 10 MB that starts like a JWKS document.
fn huge() -> Vec<u8> {
    let mut body = b"{\"keys\":[".to_vec();
    body.resize(10 * 1024 * 1024, b' ');
    body
}

// ------------------------------------------------------------------------------ TLS

/// A test CA and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<tokio_rustls::rustls::ServerConfig>,
}

pub fn test_pki() -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use tokio_rustls::rustls;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tower-jwt-login test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "jwks test server");
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    // ring, as the crate's own TLS clients (src/tls.rs says why its deprecation is allowed).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(config),
    }
}

// ------------------------------------------------------------------- server under test

/// The unknown-`kid` re-fetch budget of [`fast_settings`]: two back to back, then one more every
/// [`REFILL`].
pub const BUDGET: u32 = 2;
/// The period of [`fast_settings`]' budget.
pub const BUDGET_PERIOD: Duration = Duration::from_millis(600);
/// `BUDGET_PERIOD / BUDGET`: one token back; also the least spacing of background refreshes.
pub const REFILL: Duration = Duration::from_millis(300);

/// Short timings so the fault tests run fast.
pub fn fast_settings() -> JwksSettings {
    JwksSettings::default()
        .refetch_budget(BUDGET, BUDGET_PERIOD)
        .fetch_timeout(Duration::from_millis(500))
        .refresh_interval(Duration::from_secs(3600))
}

/// The tenant, keys fetched from `jwks_url`.
pub fn tenant(jwks_url: &str) -> Auth0Tenant {
    Auth0Tenant::new(DOMAIN, AUDIENCE)
        .clientid(CLIENT_ID)
        .user(ALLOWED)
        .user("google-oauth2|second")
        .with_jwks_url(jwks_url)
}

/// A plain-HTTP-capable fetcher for loopback tests (trusts only a throwaway CA).
pub fn loopback_fetcher() -> HttpsFetcher {
    static CA: OnceLock<String> = OnceLock::new();
    let pem = CA.get_or_init(|| test_pki().ca_pem);
    HttpsFetcher::with_root_certificates_pem(pem.as_bytes()).unwrap()
}

pub fn provider(tenants: Vec<Auth0Tenant>, settings: JwksSettings) -> JwksProvider {
    JwksProvider::with_fetcher(tenants, settings, loopback_fetcher())
}

/// The example server (admin/datarhei, no failure delay) with `provider` for Auth0 logins.
pub async fn spawn_core_auth0(provider: JwksProvider) -> SocketAddr {
    let auths = provider.auths();
    let app = core_server::app_with_auth0(&core_config(Duration::ZERO), provider, auths).unwrap();
    spawn_router(app).await
}
