//! The crate's own routes inside the assembly: which paths they are, and the services behind
//! them, held without type parameters.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower_service::Service;

use crate::response::ResponseBody;

use crate::error::BoxError;

/// The request body the crate's own services are called with.
pub(crate) type OwnBody = UnsyncBoxBody<Bytes, BoxError>;

/// The future of one of the crate's own services.
pub(crate) type OwnFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// A service of the crate's own (login, refresh, logout, …) made object-safe. The crate's
/// services are always ready (their `poll_ready` answers `Ready(Ok)` at once), so a clone is
/// called without polling it first.
pub(crate) trait Endpoint: Send + Sync + 'static {
    fn call(&self, req: Request<OwnBody>) -> OwnFuture;
}

impl<T> Endpoint for T
where
    T: Service<Request<OwnBody>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    T::Future: Send + 'static,
{
    fn call(&self, req: Request<OwnBody>) -> OwnFuture {
        Box::pin(Infallibly {
            future: Service::call(&mut self.clone(), req),
        })
    }
}

pin_project_lite::pin_project! {
    /// A service future that cannot fail, as one that yields its response.
    struct Infallibly<F> {
        #[pin]
        future: F,
    }
}

impl<F, T> Future for Infallibly<F>
where
    F: Future<Output = Result<T, Infallible>>,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        self.project().future.poll(cx).map(|result| match result {
            Ok(value) => value,
            Err(never) => match never {},
        })
    }
}

/// `req` with its body boxed for an [`Endpoint`].
pub(crate) fn own_request<B>(req: Request<B>) -> Request<OwnBody>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    req.map(|body| {
        body.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
            .map_err(Into::into)
            .boxed_unsync()
    })
}

/// One of the crate's own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Own {
    Login,
    Refresh,
    Logout,
    LogoutAll,
    About,
    Jwks,
    /// The second factor's management routes (a valid access token required).
    Totp,
    /// The user's own sessions: the list, and ending one (a valid access token required).
    Sessions,
    /// The API keys' management routes (a valid access token required).
    Keys,
    /// The password change (a valid access token required).
    Password,
}

impl Own {
    /// Whether the route reads an access token (the user's own management routes, and the
    /// about document's full form): in browser mode, from the access cookie too.
    pub(crate) fn takes_access_token(self) -> bool {
        matches!(
            self,
            Own::About | Own::Totp | Own::Sessions | Own::Keys | Own::Password
        )
    }
}

/// The paths of the crate's own routes under the assembly's prefix.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    pub(crate) prefix: String,
    pub(crate) login: String,
    pub(crate) refresh: String,
    pub(crate) logout: Option<(String, String)>,
    pub(crate) about: bool,
    pub(crate) jwks: bool,
    /// The second factor's management paths, when it is on.
    pub(crate) totp: Option<[String; 4]>,
    /// The base path of the user's own sessions (`<base>` and `<base>/<id>`), with sessions.
    pub(crate) sessions: Option<String>,
    /// The API keys' collection path (`{prefix}/v3/auth/keys`), when keys are on: the path and
    /// every path under it.
    pub(crate) keys: Option<String>,
    /// The password change's path, when it is on.
    pub(crate) password: Option<String>,
}

impl Routes {
    pub(crate) fn new(prefix: &str, sessions: bool, about: bool, jwks: bool) -> Self {
        let prefix = prefix.trim_end_matches('/').to_owned();
        Routes {
            login: format!("{prefix}/login"),
            refresh: format!("{prefix}/login/refresh"),
            logout: sessions.then(|| (format!("{prefix}/logout"), format!("{prefix}/logout/all"))),
            about,
            jwks,
            totp: None,
            sessions: sessions.then(|| format!("{prefix}/v3/auth/sessions")),
            keys: None,
            password: None,
            prefix,
        }
    }

    /// The own route at exactly `path` (no decoding: another spelling is no own route, and the
    /// policy treats it as protected).
    pub(crate) fn find(&self, path: &str) -> Option<Own> {
        // Every own path but the JWKS starts with the prefix: one comparison for app requests.
        if let Some(rest) = path.strip_prefix(self.prefix.as_str()) {
            if rest.is_empty() || rest == "/" {
                return (self.about && rest.is_empty()).then_some(Own::About);
            }
            if path == self.login {
                return Some(Own::Login);
            }
            if path == self.refresh {
                return Some(Own::Refresh);
            }
            if let Some(totp) = &self.totp
                && totp.iter().any(|p| p == path)
            {
                return Some(Own::Totp);
            }
            if let Some(base) = &self.sessions
                && let Some(tail) = path.strip_prefix(base.as_str())
                && (tail.is_empty()
                    || tail
                        .strip_prefix('/')
                        .is_some_and(|id| !id.is_empty() && !id.contains('/')))
            {
                return Some(Own::Sessions);
            }
            if let Some(keys) = &self.keys
                && let Some(rest) = path.strip_prefix(keys.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return Some(Own::Keys);
            }
            if self.password.as_deref() == Some(path) {
                return Some(Own::Password);
            }
            if let Some((logout, all)) = &self.logout {
                if path == logout {
                    return Some(Own::Logout);
                }
                if path == all {
                    return Some(Own::LogoutAll);
                }
            }
        }
        if self.jwks && path == crate::jwks::JWKS_PATH {
            return Some(Own::Jwks);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Own, Routes};

    #[test]
    fn own_paths_exactly() {
        let routes = Routes::new("/api/", true, true, true);
        assert_eq!(routes.find("/api/login"), Some(Own::Login));
        assert_eq!(routes.find("/api/login/refresh"), Some(Own::Refresh));
        assert_eq!(routes.find("/api/logout"), Some(Own::Logout));
        assert_eq!(routes.find("/api/logout/all"), Some(Own::LogoutAll));
        assert_eq!(routes.find("/api"), Some(Own::About));
        assert_eq!(routes.find("/.well-known/jwks.json"), Some(Own::Jwks));
        assert_eq!(routes.find("/api/v3/auth/sessions"), Some(Own::Sessions));
        assert_eq!(
            routes.find("/api/v3/auth/sessions/abc"),
            Some(Own::Sessions)
        );
        for other in [
            "/api/v3/auth/sessions/",
            "/api/v3/auth/sessions/a/b",
            "/api/v3/auth/sessionsx",
        ] {
            assert_eq!(routes.find(other), None, "{other}");
        }
        for other in [
            "/api/",
            "/api/login/",
            "/api//login",
            "/api/%6cogin",
            "/apilogin",
            "/x",
        ] {
            assert_eq!(routes.find(other), None, "{other}");
        }
        let mut routes = routes;
        routes.keys = Some("/api/v3/auth/keys".to_owned());
        routes.password = Some("/api/v3/auth/password".to_owned());
        assert_eq!(routes.find("/api/v3/auth/keys"), Some(Own::Keys));
        assert_eq!(routes.find("/api/v3/auth/keys/abc"), Some(Own::Keys));
        assert_eq!(routes.find("/api/v3/auth/keys/"), Some(Own::Keys));
        assert_eq!(routes.find("/api/v3/auth/password"), Some(Own::Password));
        for other in [
            "/api/v3/auth/keysx",
            "/api/v3/auth/key",
            "/api/v3/auth/password/",
            "/api/v3/auth/passwords",
        ] {
            assert_eq!(routes.find(other), None, "{other}");
        }
        let bare = Routes::new("", false, false, false);
        assert_eq!(bare.find("/login"), Some(Own::Login));
        assert_eq!(bare.find("/logout"), None);
        assert_eq!(bare.find("/v3/auth/sessions"), None);
        assert_eq!(bare.find(""), None);
        assert_eq!(bare.find("/.well-known/jwks.json"), None);
    }
}
