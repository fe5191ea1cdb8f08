//! Core's about documents (docs/protocol.md §6): what the official clients read first, from
//! `GET /api`, to decide whether and how to log in.
//!
//! ```
//! use tower_jwt_login::discovery::About;
//!
//! let about = About::new("my-core", "c1d2e3").version("16.16.0").auths(["localjwt"]);
//! assert_eq!(
//!     about.minimal_json(),
//!     "{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"version\":{\"number\":\"16.0.0\"}}\n"
//! );
//! assert!(about.full_json().starts_with("{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"name\":\"my-core\",\"id\":\"c1d2e3\",\"created_at\":\""));
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response};
use serde::Serialize;
use tower_service::Service;

use crate::Claims;
use crate::factor::SecondFactor;
use crate::json::json_line;
use crate::response::{ResponseBody, ResponseFuture, json_response};

/// The `auths` entry of the local username/password login.
pub const LOCAL_JWT: &str = "localjwt";

/// The app's identity, rendered as Core's minimal or full about document.
#[derive(Debug, Clone)]
pub struct About {
    name: String,
    id: String,
    created_at: String,
    started: Instant,
    version: String,
    auths: Vec<String>,
    second_factor: Option<(SecondFactor, TotpScope)>,
}

/// Whose second factor the about document speaks of.
#[derive(Debug, Clone)]
enum TotpScope {
    /// The one local user (Core's): `totp_required` says whether it has the second factor on.
    User(String),
    /// Many users: `totp_available: true`.
    Available,
}

/// The second-factor members, after `auths` (docs/protocol.md §8.3); absent without one.
#[derive(Serialize, Clone, Copy, Default)]
struct Totp {
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_available: Option<bool>,
}

#[derive(Serialize)]
struct Minimal<'a> {
    app: &'static str,
    auths: &'a [String],
    #[serde(flatten)]
    totp: Totp,
    version: MinimalVersion,
}

#[derive(Serialize)]
struct MinimalVersion {
    number: String,
}

#[derive(Serialize)]
struct Full<'a> {
    app: &'static str,
    auths: &'a [String],
    #[serde(flatten)]
    totp: Totp,
    name: &'a str,
    id: &'a str,
    created_at: &'a str,
    uptime_seconds: u64,
    version: FullVersion<'a>,
}

#[derive(Serialize)]
struct FullVersion<'a> {
    number: &'a str,
    repository_commit: &'static str,
    repository_branch: &'static str,
    build_date: &'static str,
    arch: &'static str,
    compiler: &'static str,
}

impl About {
    /// An app named `name` with instance id `id`, created now, version `16.16.0`, no auths.
    pub fn new(name: impl Into<String>, id: impl Into<String>) -> Self {
        About {
            name: name.into(),
            id: id.into(),
            created_at: rfc3339(SystemTime::now()),
            started: Instant::now(),
            version: "16.16.0".to_owned(),
            auths: Vec::new(),
            second_factor: None,
        }
    }

    /// With the [second factor](crate::factor) for the one local user `subject` (Core's
    /// configured user): both documents say `"totp_required":true` after `auths` while that
    /// user has it on, `false` otherwise (looked up per request; left out while the store
    /// cannot be reached).
    ///
    /// ```
    /// use tower_jwt_login::discovery::About;
    /// use tower_jwt_login::factor::{FactorKey, MemoryFactorStore, SecondFactor};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let factor = SecondFactor::new(MemoryFactorStore::new(), FactorKey::random()).await.unwrap();
    /// let about = About::new("core", "id").auths(["localjwt"]).second_factor_of(factor, "admin");
    /// let res = about.response(&http::Method::GET, None).await;
    /// # use http_body_util::BodyExt;
    /// let body = res.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(&body[..], b"{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"totp_required\":false,\"version\":{\"number\":\"16.0.0\"}}\n");
    /// # });
    /// ```
    #[must_use]
    pub fn second_factor_of(mut self, factor: SecondFactor, subject: impl Into<String>) -> Self {
        self.second_factor = Some((factor, TotpScope::User(subject.into())));
        self
    }

    /// With the [second factor](crate::factor) for a store of many users: both documents say
    /// `"totp_available":true` after `auths` (whether a user needs a code shows at login:
    /// `401 TOTP code required`).
    #[must_use]
    pub fn second_factor_available(mut self, factor: SecondFactor) -> Self {
        self.second_factor = Some((factor, TotpScope::Available));
        self
    }

    /// The full version number (the clients require major 16).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The `auths` list, in order: [`LOCAL_JWT`] first, then one entry per Auth0 tenant.
    #[must_use]
    pub fn auths<I, A>(mut self, auths: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.auths = auths.into_iter().map(Into::into).collect();
        self
    }

    /// The `auths` list from the app's login configuration: [`LOCAL_JWT`] when the local
    /// username/password login is on, then the Auth0 entries (such as
    /// `JwksProvider::auths` gives with the `auth0` feature), in that order.
    ///
    /// ```
    /// use tower_jwt_login::discovery::About;
    ///
    /// let tenants = ["auth0 domain=example.eu.auth0.com audience=https://api clientid=abc"];
    /// let about = About::new("core", "id").login_methods(true, tenants);
    /// assert!(about.minimal_json().contains(
    ///     r#""auths":["localjwt","auth0 domain=example.eu.auth0.com audience=https://api clientid=abc"]"#
    /// ));
    /// ```
    #[must_use]
    pub fn login_methods<I, A>(mut self, local: bool, auth0: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.auths = local
            .then(|| LOCAL_JWT.to_owned())
            .into_iter()
            .chain(auth0.into_iter().map(Into::into))
            .collect();
        self
    }

    /// `GET /api` as a tower service: mount it on the optional path
    /// ([`PathPolicy::optional_for`](crate::auth::PathPolicy::optional_for)) so the layer attaches
    /// the claims of a valid access token; [`response`](Self::response) decides. Any method
    /// other than `GET` and `HEAD` gets 404 in the error shape.
    pub fn into_service(self) -> AboutService {
        AboutService {
            about: Arc::new(self),
        }
    }

    /// `{"app":"datarhei-core","auths":[…],"version":{"number":"<major>.0.0"}}` + newline
    /// (with [`second_factor_of`](Self::second_factor_of) without `totp_required`, which needs
    /// the store: see [`response`](Self::response)).
    pub fn minimal_json(&self) -> String {
        String::from_utf8_lossy(&json_line(&self.minimal(self.totp(None)))).into_owned()
    }

    /// The full about document + newline (likewise without `totp_required`).
    pub fn full_json(&self) -> String {
        String::from_utf8_lossy(&json_line(&self.full(self.totp(None)))).into_owned()
    }

    /// The second-factor members, given the local user's state when it was looked up.
    fn totp(&self, user_enabled: Option<bool>) -> Totp {
        match &self.second_factor {
            None => Totp::default(),
            Some((_, TotpScope::User(_))) => Totp {
                totp_required: user_enabled,
                totp_available: None,
            },
            Some((_, TotpScope::Available)) => Totp {
                totp_required: None,
                totp_available: Some(true),
            },
        }
    }

    fn minimal(&self, totp: Totp) -> Minimal<'_> {
        let major = self.version.split('.').next().unwrap_or("0");
        Minimal {
            app: "datarhei-core",
            auths: &self.auths,
            totp,
            version: MinimalVersion {
                number: format!("{major}.0.0"),
            },
        }
    }

    fn full(&self, totp: Totp) -> Full<'_> {
        Full {
            app: "datarhei-core",
            auths: &self.auths,
            totp,
            name: &self.name,
            id: &self.id,
            created_at: &self.created_at,
            uptime_seconds: self.started.elapsed().as_secs(),
            version: FullVersion {
                number: &self.version,
                repository_commit: "",
                repository_branch: "",
                build_date: "",
                arch: std::env::consts::ARCH,
                compiler: "rustc",
            },
        }
    }

    /// `GET /api`: the full document with verified claims, the minimal one without — always 200.
    /// With [`second_factor_of`](Self::second_factor_of) it asks the second-factor store
    /// whether the user has it on (the only reason this is `async`).
    pub async fn response(
        &self,
        method: &Method,
        claims: Option<&Claims>,
    ) -> Response<ResponseBody> {
        let enabled = match &self.second_factor {
            Some((factor, TotpScope::User(subject))) => match factor.is_enabled(subject).await {
                Ok(enabled) => Some(enabled),
                Err(error) => {
                    tracing::debug!(%error, "about: second-factor state unknown");
                    None
                }
            },
            _ => None,
        };
        let totp = self.totp(enabled);
        match claims {
            Some(_) => json_response(method, &self.full(totp)),
            None => json_response(method, &self.minimal(totp)),
        }
    }
}

/// [`About`] as a tower service ([`About::into_service`]): the full document when the request
/// carries verified [`Claims`], the minimal one otherwise.
///
/// ```
/// use http::{Method, Request};
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
/// use tower_jwt_login::discovery::About;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = About::new("core", "id").login_methods(true, [] as [&str; 0]).into_service();
/// let res = service.oneshot(Request::get("/api").body(()).unwrap()).await.unwrap();
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(&body[..], b"{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"version\":{\"number\":\"16.0.0\"}}\n");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct AboutService {
    about: Arc<About>,
}

impl<B> Service<Request<B>> for AboutService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().clone();
        if method != Method::GET && method != Method::HEAD {
            let response = crate::response::wrong_method(&method);
            return ResponseFuture::ready(response);
        }
        let claims = req.extensions().get::<Claims>().cloned();
        let about = Arc::clone(&self.about);
        ResponseFuture::new(async move { about.response(&method, claims.as_ref()).await })
    }
}

/// RFC 3339 UTC timestamp with second precision (`2026-11-28T04:14:42Z`).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_839_282);
        assert_eq!(rfc3339(t), "2026-11-28T04:14:42Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
