//! Which requests the layer guards: per-path (and optionally per-method) access rules, and
//! what the verified claims must allow ([`Requirement`]s: a role, or any predicate).

use std::fmt;
use std::sync::Arc;

use http::Method;

use crate::token::Claims;

/// What the verified claims of a request must satisfy on a path (see [`PathPolicy::require`]).
/// A request whose claims fall short is refused with `403` (docs/protocol.md §2's shape,
/// `Insufficient permissions`; for gRPC `grpc-status: 7`, PERMISSION_DENIED), never 401.
///
/// ```
/// use tower_jwt_login::auth::Requirement;
///
/// let admin = Requirement::role("admin");
/// let acme = Requirement::predicate("tenant acme", |claims| {
///     claims.extra_value("tenant").is_some_and(|t| t == "\"acme\"")
/// });
/// # let _ = (admin, acme);
/// ```
#[derive(Clone)]
pub struct Requirement {
    label: Arc<str>,
    check: Arc<dyn Fn(&Claims) -> bool + Send + Sync>,
}

impl Requirement {
    /// The extra claim `roles` (an array of strings) must contain `role`.
    pub fn role(role: impl Into<String>) -> Self {
        let role: String = role.into();
        Requirement {
            label: Arc::from(format!("role {role}")),
            check: Arc::new(move |claims: &Claims| claims.has_role(&role)),
        }
    }

    /// Any check of the claims; `label` names it in `Debug` output (never sent to clients).
    pub fn predicate<F>(label: impl Into<String>, check: F) -> Self
    where
        F: Fn(&Claims) -> bool + Send + Sync + 'static,
    {
        Requirement {
            label: Arc::from(label.into()),
            check: Arc::new(check),
        }
    }

    /// Whether `claims` satisfy the requirement.
    pub fn is_met(&self, claims: &Claims) -> bool {
        (self.check)(claims)
    }
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Requirement").field(&&*self.label).finish()
    }
}

/// How the layer treats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A valid access token is required (the default for every path).
    Protected,
    /// No token is looked at; the request goes straight through.
    Public,
    /// The request goes through either way; the verified [`Claims`](crate::Claims) are attached
    /// only when a valid access token is present (Core's `GET /api`, docs/protocol.md §6).
    Optional,
}

/// Per-path access rules; everything not matched is [`Access::Protected`].
///
/// A pattern is an exact path (`/ping`) or a prefix ending in `/*`. A prefix covers the bare
/// prefix with its trailing slash and everything below it: `/api/*` matches `/api/`, `/api/v3`
/// and `/api/v3/process`, but neither `/api` nor `/apix` — give `/api` a rule of its own (Core's
/// discovery route `GET /api` is an exact optional rule placed before `/api/*`). `/*` matches
/// every path. Rules are tried in the order they were added; the first that matches decides.
///
/// Paths are compared byte for byte as they arrive, without decoding or normalization (with the
/// `axum` feature, the path the client sent even inside nested routers; see
/// [`JwtAuthLayer`](super::JwtAuthLayer)). So that an inner service that does normalize (a file
/// server, a proxy, a framework that collapses `//` or resolves `..`) cannot turn a public rule
/// into a bypass, a path that is not in plain form is **protected whatever the rules say**: no
/// [`Access::Public`] or [`Access::Optional`] rule applies to a path that
///
/// - does not start with `/`;
/// - has an empty segment (`//`; a single trailing `/` is fine);
/// - has a dot-segment: `.` or `..`, also percent-encoded (`%2e`, `%2E%2e`, `.%2E`, …) and with
///   a `;` parameter after it (`..;`);
///
/// where `\`, `%2f` and `%5c` (any case) count as segment separators too, as some normalizers
/// treat them. Such a request needs a valid access token like any protected one; a client that
/// sends the plain path is unaffected.
///
/// ```
/// use http::Method;
/// use tower_jwt_login::auth::{Access, PathPolicy};
///
/// let policy = PathPolicy::new()
///     .login_routes("/api")
///     .optional_for(Method::GET, "/api")
///     .protected("/api/*")
///     .public("/*");
/// assert_eq!(policy.access(&Method::POST, "/api/login"), Access::Public);
/// assert_eq!(policy.access(&Method::GET, "/api/login"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/api/login/refresh"), Access::Public);
/// assert_eq!(policy.access(&Method::GET, "/api"), Access::Optional);
/// assert_eq!(policy.access(&Method::GET, "/api/"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/ping"), Access::Public);
/// // Not plain: protected although `/*` is public.
/// assert_eq!(policy.access(&Method::GET, "/ping/../api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/ping/%2E%2e/api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "//api/v3/process"), Access::Protected);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    rules: Vec<Rule>,
    requirements: Vec<RequirementRule>,
}

#[derive(Debug, Clone)]
struct RequirementRule {
    method: Option<Method>,
    pattern: Pattern,
    requirement: Requirement,
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
            Pattern::Prefix(p) => path.starts_with(p.as_str()),
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
    /// are public; every other method on them stays protected (docs/protocol.md §1).
    pub fn login_routes(self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.public_for(Method::POST, &format!("{prefix}/login"))
            .public_for(Method::GET, &format!("{prefix}/login/refresh"))
    }

    /// Requires `requirement` of the verified claims on `path` (exact, or a `/*` prefix, as
    /// for the access rules), for every method.
    ///
    /// Every requirement whose path matches must be met (unlike the access rules, where the
    /// first match decides): `/admin/*` needing `admin` and `/admin/billing` needing `billing`
    /// both apply to `/admin/billing`. A path with a requirement is protected whatever the access
    /// rules say (a requirement needs claims to check: without a valid access token the answer is
    /// the usual 401), and a path that is not in plain form (see above) must meet **every**
    /// requirement of the policy, so that a normalizing inner service cannot route
    /// `/x/../admin` around `/admin/*`'s. The check runs after verification, only for paths
    /// with a requirement: a policy without requirements costs nothing more.
    ///
    /// ```
    /// use http::Method;
    /// use tower_jwt_login::auth::{Access, PathPolicy, Requirement};
    ///
    /// let policy = PathPolicy::new()
    ///     .login_routes("/api")
    ///     .require("/api/v3/admin/*", Requirement::role("admin"))
    ///     .require_for(Method::DELETE, "/api/v3/process/*", Requirement::role("editor"));
    /// assert_eq!(policy.access(&Method::GET, "/api/v3/admin/users"), Access::Protected);
    /// ```
    pub fn require(mut self, path: &str, requirement: Requirement) -> Self {
        self.requirements.push(RequirementRule {
            method: None,
            pattern: Pattern::parse(path),
            requirement,
        });
        self
    }

    /// Like [`require`](Self::require), for one method only.
    pub fn require_for(mut self, method: Method, path: &str, requirement: Requirement) -> Self {
        self.requirements.push(RequirementRule {
            method: Some(method),
            pattern: Pattern::parse(path),
            requirement,
        });
        self
    }

    /// The first requirement whose path the access rules make public or optional (a
    /// contradiction refused at start-up by the assembly), as it was given.
    pub(crate) fn requirement_on_public_path(&self) -> Option<String> {
        self.requirements.iter().find_map(|r| {
            let (path, shown) = match &r.pattern {
                Pattern::Exact(p) => (p.clone(), p.clone()),
                Pattern::Prefix(p) => (p.clone(), format!("{p}*")),
            };
            let method = r.method.clone().unwrap_or(Method::GET);
            let access = self
                .rules
                .iter()
                .find(|rule| {
                    rule.method.as_ref().is_none_or(|m| *m == method) && rule.pattern.matches(&path)
                })
                .map_or(Access::Protected, |rule| rule.access);
            (access != Access::Protected).then_some(shown)
        })
    }

    /// Whether the policy has any [`Requirement`].
    pub fn has_requirements(&self) -> bool {
        !self.requirements.is_empty()
    }

    /// Whether `claims` meet every requirement on this request (always, on paths without one).
    pub fn permits(&self, method: &Method, path: &str, claims: &Claims) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        let plain = is_plain(path);
        self.requirements
            .iter()
            .filter(|r| {
                !plain || (r.method.as_ref().is_none_or(|m| m == method) && r.pattern.matches(path))
            })
            .all(|r| r.requirement.is_met(claims))
    }

    fn has_requirement_on(&self, method: &Method, path: &str) -> bool {
        self.requirements
            .iter()
            .any(|r| r.method.as_ref().is_none_or(|m| m == method) && r.pattern.matches(path))
    }

    /// The access of a request: the first matching rule's, [`Access::Protected`] without one,
    /// and always [`Access::Protected`] for a path that is not in plain form (see above) or that
    /// has a [requirement](Self::require).
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let access = self
            .rules
            .iter()
            .find(|r| r.method.as_ref().is_none_or(|m| m == method) && r.pattern.matches(path))
            .map_or(Access::Protected, |r| r.access);
        // Only a relaxing verdict needs the scan: protected requests pay nothing for it.
        if access != Access::Protected && (!is_plain(path) || self.has_requirement_on(method, path))
        {
            return Access::Protected;
        }
        access
    }
}

/// Whether `path` is in plain form: it starts with `/`, and no segment is empty (but the last,
/// for a trailing slash) or a dot-segment. `/`, `\`, `%2f` and `%5c` separate segments; `.`
/// and `%2e` are dots; a dot-segment is one or two dots, optionally followed by `;…`.
fn is_plain(path: &str) -> bool {
    let Some(mut rest) = path.as_bytes().strip_prefix(b"/") else {
        return false;
    };
    loop {
        let (segment, next) = split_segment(rest);
        match next {
            // The last segment may be empty (a trailing slash, or the root `/`).
            None => return !is_dot_segment(segment),
            Some(next) => {
                if segment.is_empty() || is_dot_segment(segment) {
                    return false;
                }
                rest = next;
            }
        }
    }
}

/// The segment up to the next separator, and what follows the separator (`None` at the end).
fn split_segment(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let separator_len = match b {
            b'/' | b'\\' => 1,
            b'%' if matches!(
                bytes.get(i + 1..i + 3),
                Some([b'2', b'f' | b'F'] | [b'5', b'c' | b'C'])
            ) =>
            {
                3
            }
            _ => 0,
        };
        if separator_len > 0 {
            return (
                bytes.get(..i).unwrap_or_default(),
                Some(bytes.get(i + separator_len..).unwrap_or_default()),
            );
        }
        i += 1;
    }
    (bytes, None)
}

/// `.` or `..`, each dot plain or as `%2e`/`%2E`, optionally followed by a `;` parameter.
fn is_dot_segment(segment: &[u8]) -> bool {
    let name = segment
        .iter()
        .position(|&b| b == b';')
        .and_then(|end| segment.get(..end))
        .unwrap_or(segment);
    let mut dots = 0;
    let mut rest = name;
    while !rest.is_empty() {
        rest = if let Some(r) = rest.strip_prefix(b".") {
            r
        } else if let Some(r) = rest
            .strip_prefix(b"%2e")
            .or_else(|| rest.strip_prefix(b"%2E"))
        {
            r
        } else {
            return false;
        };
        dots += 1;
    }
    matches!(dots, 1 | 2)
}

#[cfg(test)]
mod tests {
    use super::{Access, PathPolicy, is_plain};
    use http::Method;

    #[test]
    fn plain_paths() {
        for path in [
            "/",
            "/ping",
            "/api/",
            "/api/v3/process",
            "/static/app.js",
            "/static/.well-known/x",
            "/a/...",
            "/a/.../b",
            "/a/..b/c",
            "/a/b..",
            "/a/%2e%2e%2e",
            "/a%2Eb",
            "/a/%25%32%65%25%32%65/b",
            "/a;b/c",
        ] {
            assert!(is_plain(path), "{path}");
        }
        for path in [
            "",
            "*",
            "ping",
            "//",
            "//ping",
            "/ping//",
            "/a//b",
            "/.",
            "/..",
            "/./",
            "/../",
            "/ping/..",
            "/ping/../api",
            "/ping/./x",
            "/ping/%2e%2e/api",
            "/ping/%2E%2E/api",
            "/ping/%2E%2e/api",
            "/ping/.%2e/api",
            "/ping/%2e./api",
            "/ping/%2e/api",
            "/ping/..;/api",
            "/ping/..;jsessionid=1/api",
            "/ping\\..\\api",
            "/ping%2f..%2fapi",
            "/ping%2F%2E%2E%2Fapi",
            "/ping%5c..%5capi",
            "/ping%2f%2fapi",
        ] {
            assert!(!is_plain(path), "{path}");
        }
    }

    #[test]
    fn public_and_optional_rules_never_match_unplain_paths() {
        let policy = PathPolicy::new().optional("/about/*").public("/*");
        for path in ["/ping/../api/v3/process", "/about/../admin", "//admin"] {
            assert_eq!(
                policy.access(&Method::GET, path),
                Access::Protected,
                "{path}"
            );
        }
        assert_eq!(policy.access(&Method::GET, "/about/x"), Access::Optional);
        assert_eq!(policy.access(&Method::GET, "/admin"), Access::Public);
    }

    #[test]
    fn a_prefix_covers_its_bare_trailing_slash_but_not_the_bare_path() {
        let policy = PathPolicy::new().public("/static/*");
        assert_eq!(policy.access(&Method::GET, "/static/"), Access::Public);
        assert_eq!(policy.access(&Method::GET, "/static/a.css"), Access::Public);
        assert_eq!(policy.access(&Method::GET, "/static"), Access::Protected);
        assert_eq!(policy.access(&Method::GET, "/staticx"), Access::Protected);
        let policy = PathPolicy::new().protected("/api/*").public("/*");
        assert_eq!(policy.access(&Method::GET, "/api/"), Access::Protected);
        assert_eq!(policy.access(&Method::GET, "/api"), Access::Public);
        assert_eq!(policy.access(&Method::GET, "/"), Access::Public);
    }
}
