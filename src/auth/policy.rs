//! Which requests the layer guards: per-path (and optionally per-method) access rules.

use http::Method;

/// How the layer treats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A valid access token is required (the default for every path).
    Protected,
    /// No token is looked at; the request goes straight through.
    Public,
    /// The request goes through either way; the verified [`Claims`](crate::Claims) are attached
    /// only when a valid access token is present (Core's `GET /api`, PROTOCOL.md §6).
    Optional,
}

/// Per-path access rules; everything not matched is [`Access::Protected`].
///
/// A pattern is an exact path (`/ping`) or a prefix ending in `/*` (`/static/*` matches
/// `/static/a.css` but not `/static` nor `/staticfoo`). Rules are tried in the order they were
/// added; the first that matches decides. Paths are compared as they arrive, without decoding or
/// normalization: the same raw path the router sees, so a mismatch can only make a request
/// *more* protected.
///
/// ```
/// use http::Method;
/// use tower_jwt_login::auth::{Access, PathPolicy};
///
/// let policy = PathPolicy::new()
///     .login_routes("/api")
///     .optional_for(Method::GET, "/api")
///     .public("/ping");
/// assert_eq!(policy.access(&Method::POST, "/api/login"), Access::Public);
/// assert_eq!(policy.access(&Method::GET, "/api/login"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/api/login/refresh"), Access::Public);
/// assert_eq!(policy.access(&Method::GET, "/api"), Access::Optional);
/// assert_eq!(policy.access(&Method::GET, "/api/v3/process"), Access::Protected);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    method: Option<Method>,
    pattern: Pattern,
    access: Access,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    /// Stored with its trailing `/`.
    Prefix(String),
}

impl Pattern {
    fn parse(path: &str) -> Self {
        match path.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => Pattern::Prefix(prefix.to_owned()),
            _ => Pattern::Exact(path.to_owned()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Prefix(p) => path.len() > p.len() && path.starts_with(p.as_str()),
        }
    }
}

impl PathPolicy {
    /// No rules: every path is protected.
    pub fn new() -> Self {
        PathPolicy::default()
    }

    /// Adds a rule for `path` and every method.
    pub fn rule(mut self, path: &str, access: Access) -> Self {
        self.rules.push(Rule {
            method: None,
            pattern: Pattern::parse(path),
            access,
        });
        self
    }

    /// Adds a rule for `path` and one method.
    pub fn rule_for(mut self, method: Method, path: &str, access: Access) -> Self {
        self.rules.push(Rule {
            method: Some(method),
            pattern: Pattern::parse(path),
            access,
        });
        self
    }

    /// `path` is public for every method.
    pub fn public(self, path: &str) -> Self {
        self.rule(path, Access::Public)
    }

    /// `path` is public for `method` only.
    pub fn public_for(self, method: Method, path: &str) -> Self {
        self.rule_for(method, path, Access::Public)
    }

    /// `path` is optional for every method.
    pub fn optional(self, path: &str) -> Self {
        self.rule(path, Access::Optional)
    }

    /// `path` is optional for `method` only.
    pub fn optional_for(self, method: Method, path: &str) -> Self {
        self.rule_for(method, path, Access::Optional)
    }

    /// `path` is protected (useful to carve an exception out of a public prefix added later).
    pub fn protected(self, path: &str) -> Self {
        self.rule(path, Access::Protected)
    }

    /// Core's login routes under `prefix`: `POST {prefix}/login` and `GET {prefix}/login/refresh`
    /// are public; every other method on them stays protected (PROTOCOL.md §1).
    pub fn login_routes(self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.public_for(Method::POST, &format!("{prefix}/login"))
            .public_for(Method::GET, &format!("{prefix}/login/refresh"))
    }

    /// The access of a request.
    pub fn access(&self, method: &Method, path: &str) -> Access {
        self.rules
            .iter()
            .find(|r| r.method.as_ref().is_none_or(|m| m == method) && r.pattern.matches(path))
            .map_or(Access::Protected, |r| r.access)
    }
}
