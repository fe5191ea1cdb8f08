//! Shared fixtures of the benches: one key, one Core access token, and the `jsonwebtoken`
//! baseline configured exactly as strictly as the crate (HS256 only, `exp` required, `iss`
//! checked, `nbf` checked, leeway 0, claims into a typed struct).
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt::Write;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service, ServiceExt};
use tower_http::auth::AsyncRequireAuthorizationLayer;
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::{Jwt, JwtConfig, JwtKey};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "datarhei";
pub const SECRET: &str = "secretsecret";
pub const ISSUER: &str = "datarhei-core";

/// Core's key for admin/datarhei/secretsecret.
pub fn key_bytes() -> Vec<u8> {
    format!("{USER}{PASSWORD}{SECRET}").into_bytes()
}

pub fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::core_compatible(USER, PASSWORD, SECRET))
        .build()
        .unwrap()
}

/// Core's claims, typed as a `jsonwebtoken` user would type them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreClaims {
    pub exi: u64,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    pub jti: String,
    pub sub: String,
    pub usefor: String,
}

/// The do-it-yourself baseline: key and validation built once, like a careful user would.
pub struct Baseline {
    pub decoding: jsonwebtoken::DecodingKey,
    pub encoding: jsonwebtoken::EncodingKey,
    pub validation: jsonwebtoken::Validation,
    pub header: jsonwebtoken::Header,
}

impl Baseline {
    pub fn new() -> Self {
        tower_jwt_login::ensure_jsonwebtoken_backend();
        let key = key_bytes();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Baseline {
            decoding: jsonwebtoken::DecodingKey::from_secret(&key),
            encoding: jsonwebtoken::EncodingKey::from_secret(&key),
            validation,
            header: jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        }
    }

    /// The claims of an `Authorization: Bearer <token>` header, verified as a user of
    /// `jsonwebtoken` would: the header as text, the prefix stripped, [`Self::verify_access`].
    pub fn verify_bearer(&self, headers: &http::HeaderMap) -> Option<CoreClaims> {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| self.verify_access(token))
    }

    /// `jsonwebtoken::decode` plus the one check it cannot express (`usefor`).
    pub fn verify_access(&self, token: &str) -> Option<CoreClaims> {
        let data =
            jsonwebtoken::decode::<CoreClaims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.usefor == "access").then_some(data.claims)
    }

    /// One `jsonwebtoken::encode` of Core's claims, with a fresh random `jti` as a user would.
    pub fn encode(&self, sub: &str, usefor: &str, ttl: u64, iat: u64, jti: String) -> String {
        let claims = CoreClaims {
            exi: ttl,
            exp: iat + ttl,
            iat,
            iss: ISSUER.to_owned(),
            jti,
            sub: sub.to_owned(),
            usefor: usefor.to_owned(),
        };
        jsonwebtoken::encode(&self.header, &claims, &self.encoding).unwrap()
    }
}

/// A version 4 UUID from 16 random bytes (what `uuid::Uuid::new_v4().to_string()` gives).
pub fn uuid_v4(random: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&random[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        write!(s, "{byte:02x}").unwrap();
    }
    s
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls a future that is expected to be ready at once (every service in the layer benches
/// answers synchronously), without a runtime: what is measured is the stack, not an executor.
pub fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked service did not answer at once"),
    }
}

/// The inner service of the layer stacks: answers 200 with an empty body, touching nothing.
pub fn inner() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = Ready<Result<Response<()>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))))
}

/// `GET /api/v3/process` with the given `Authorization` value.
pub fn request(authorization: &HeaderValue) -> Request<()> {
    let mut req = Request::get("/api/v3/process").body(()).unwrap();
    req.headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    req
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::try_from(format!("Bearer {token}")).unwrap()
}

/// One request through `svc`: `poll_ready`, then `call`, then the response future.
pub fn drive<S>(svc: &mut S, req: Request<()>) -> S::Response
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    poll_now(svc.ready()).unwrap();
    poll_now(svc.call(req)).unwrap()
}

/// `JwtAuthLayer` (every path protected) around [`inner`].
pub fn ours(
    jwt: &Jwt,
) -> impl Service<Request<()>, Response = Response<impl Sized>, Error = Infallible> {
    JwtAuthLayer::new(jwt.clone()).layer(inner())
}

/// What a user assembles without this crate: tower-http's `AsyncRequireAuthorizationLayer`,
/// `jsonwebtoken` with the key and validation built once, the claims put into the extensions,
/// a bare 401 otherwise.
pub fn diy() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> {
    let baseline = Arc::new(Baseline::new());
    let authorize = move |mut req: Request<()>| {
        ready(match baseline.verify_bearer(req.headers()) {
            Some(claims) => {
                req.extensions_mut().insert(claims);
                Ok(req)
            }
            None => {
                let mut res = Response::new(());
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                Err(res)
            }
        })
    };
    AsyncRequireAuthorizationLayer::new(authorize).layer(inner())
}

/// Ratios measured interleaved, for figures that must hold on a noisy, shared machine: in each
/// of `rounds` rounds every case runs `iters` times back to back (cases in turn, so that drift
/// in the machine's speed hits them alike), and the ratio of each case to the first is taken
/// within the round. Prints each case's median time and the median of its per-round ratios,
/// which criterion's one-benchmark-after-the-other figures cannot give on such a machine.
///
/// Returns each case's time in ns per round (for figures derived within each round, see
/// [`median_of_rounds`]). Runs only under `cargo bench` (criterion's `--bench` argument; `None`
/// otherwise): `cargo test --benches` runs each bench once as a smoke test.
pub fn interleaved(
    title: &str,
    rounds: usize,
    iters: usize,
    cases: &mut [(&str, &mut dyn FnMut())],
) -> Option<Vec<Vec<f64>>> {
    if !std::env::args().any(|arg| arg == "--bench") {
        return None;
    }
    let mut times = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (times, (_, case)) in times.iter_mut().zip(cases.iter_mut()) {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                case();
            }
            times.push(start.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("\n{title}: interleaved, {rounds} rounds of {iters} iterations per case");
    for ((name, _), case_times) in cases.iter().zip(&times) {
        let ratios: Vec<f64> = case_times
            .iter()
            .zip(&times[0])
            .map(|(t, base)| t / base)
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!(
            "  {name:<44} median {:>8.0} ns   ratio to the first: median {:.2} (rounds {lo:.2}-{hi:.2})",
            median(case_times.clone()),
            median(ratios.clone()),
        );
    }
    Some(times)
}

/// The median over the rounds of `f` applied to each round's times (one per case), and the
/// range of its values.
pub fn median_of_rounds(times: &[Vec<f64>], f: impl Fn(&[f64]) -> f64) -> (f64, f64, f64) {
    let rounds = times.first().map_or(0, Vec::len);
    let mut values: Vec<f64> = (0..rounds)
        .map(|round| f(&times.iter().map(|case| case[round]).collect::<Vec<_>>()))
        .collect();
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}
