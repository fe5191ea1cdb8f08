//! Which requests the layer guards: per-path (and optionally per-method) access rules, and
//! what the verified claims must allow ([`Requirement`]s: a role, or any predicate).

use std::borrow::Cow;
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
/// A rule for `GET` covers `HEAD` too (axum, like most routers, answers `HEAD` with the `GET`
/// handler); a rule for `HEAD` covers only `HEAD`.
///
/// Paths are compared byte for byte as they arrive, without decoding or normalization (with the
/// `axum` feature, the path the client sent even inside nested routers; see
/// [`JwtAuthLayer`](super::JwtAuthLayer)). So that an inner service that does decode or
/// normalize (a router that decodes path parameters, a file server, a proxy that collapses `//`,
/// resolves `..` or decodes `%61` to `a`) cannot turn a public rule into a bypass, a path that is
/// not in **plain form** is **protected whatever the rules say**: no [`Access::Public`] or
/// [`Access::Optional`] rule applies to a path that
///
/// - does not start with `/`;
/// - holds a `%` (any percent-encoded byte: `%2e`, `%2f`, but also `%61` or `%20`), a `;` (a
///   path parameter, as in `..;` or `;jsessionid=`) or a `\`;
/// - has an empty segment (`//`; a single trailing `/` is fine);
/// - has a dot-segment, `.` or `..`.
///
/// Such a request needs a valid access token like any protected one; a client that sends the
/// plain path is unaffected. (A public route whose paths hold percent-encoded bytes, such as
/// file names with spaces, therefore needs a token: give the files plain names.)
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
/// assert_eq!(policy.access(&Method::HEAD, "/api"), Access::Optional);
/// assert_eq!(policy.access(&Method::GET, "/api/"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/ping"), Access::Public);
/// // Not plain: protected although `/*` is public.
/// assert_eq!(policy.access(&Method::GET, "/ping/../api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/ping/%2E%2e/api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "//api/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/%61pi/v3/process"), Access::Protected);
/// assert_eq!(policy.access(&Method::GET, "/api;x/v3/process"), Access::Protected);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    rules: Vec<Rule>,
    requirements: Vec<RequirementRule>,
}

#[derive(Debug, Clone)]
struct RequirementRule {
    method: Option<Method>,
    /// Stored decoded as request paths are ([`normalize`]).
    pattern: Pattern,
    requirement: Requirement,
}

impl RequirementRule {
    fn applies(&self, method: &Method, path: &str) -> bool {
        method_matches(self.method.as_ref(), method) && self.pattern.covers(path)
    }
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

    /// An access rule's match: a prefix covers its trailing slash and below, not the bare path.
    fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// A requirement's match: as [`matches`](Self::matches), and a prefix `/x/*` also covers
    /// the bare `/x` (where a router nested at `/x` serves its `/` route).
    fn covers(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Prefix(p) => {
                path.starts_with(p.as_str()) || p.strip_suffix('/').is_some_and(|bare| bare == path)
            }
        }
    }
}

/// Whether a rule for `rule` (every method when `None`) applies to a `method` request: a `GET`
/// rule also applies to `HEAD`, which routers answer with the `GET` handler.
fn method_matches(rule: Option<&Method>, method: &Method) -> bool {
    rule.is_none_or(|m| m == method || (*m == Method::GET && *method == Method::HEAD))
}

impl PathPolicy {
    /// No rules: every path is protected.
    pub fn new() -> Self {
        PathPolicy::default()
    }

    /// Adds a rule for `path` and every method.
    #[must_use]
    pub fn rule(mut self, path: &str, access: Access) -> Self {
        self.rules.push(Rule {
            method: None,
            pattern: Pattern::parse(path),
            access,
        });
        self
    }

    /// Adds a rule for `path` and one method.
    #[must_use]
    pub fn rule_for(mut self, method: Method, path: &str, access: Access) -> Self {
        self.rules.push(Rule {
            method: Some(method),
            pattern: Pattern::parse(path),
            access,
        });
        self
    }

    /// `path` is public for every method.
    #[must_use]
    pub fn public(self, path: &str) -> Self {
        self.rule(path, Access::Public)
    }

    /// `path` is public for `method` only.
    #[must_use]
    pub fn public_for(self, method: Method, path: &str) -> Self {
        self.rule_for(method, path, Access::Public)
    }

    /// `path` is optional for every method.
    #[must_use]
    pub fn optional(self, path: &str) -> Self {
        self.rule(path, Access::Optional)
    }

    /// `path` is optional for `method` only.
    #[must_use]
    pub fn optional_for(self, method: Method, path: &str) -> Self {
        self.rule_for(method, path, Access::Optional)
    }

    /// `path` is protected (useful to carve an exception out of a public prefix added later).
    #[must_use]
    pub fn protected(self, path: &str) -> Self {
        self.rule(path, Access::Protected)
    }

    /// Core's login routes under `prefix`: `POST {prefix}/login` and `GET {prefix}/login/refresh`
    /// are public; every other method on them stays protected (docs/protocol.md §1), `HEAD`
    /// included (the refresh route serves `GET` only).
    #[must_use]
    pub fn login_routes(self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let refresh = format!("{prefix}/login/refresh");
        self.public_for(Method::POST, &format!("{prefix}/login"))
            .rule_for(Method::HEAD, &refresh, Access::Protected)
            .public_for(Method::GET, &refresh)
    }

    /// Requires `requirement` of the verified claims on `path`, for every method.
    ///
    /// `path` is exact, or a prefix ending in `/*` as for the access rules, with one difference
    /// that fails closed: `/admin/*` also covers the bare `/admin` (the `/` route of a router
    /// nested at `/admin`), as well as `/admin/` and everything below. Every requirement whose
    /// path matches must be met (unlike the access rules, where the first match decides):
    /// `/admin/*` needing `admin` and `/admin/billing` needing `billing` both apply to
    /// `/admin/billing`. A path with a requirement is protected whatever the access rules say (a
    /// requirement needs claims to check: without a valid access token the answer is the usual
    /// 401).
    ///
    /// Requirements hold for every spelling of their path that a router may take for it:
    ///
    /// - the request's path is matched after decoding percent-encoded unreserved characters
    ///   (letters, digits, `-`, `.`, `_`, `~`; RFC 3986 §6.2.2.2), so `/%61dmin/x` is `/admin/x`
    ///   (axum hands a `{section}` parameter `admin` either way);
    /// - a path that is then still not in plain form (see [`PathPolicy`]: a `%` left, such as
    ///   `%2f` or `%20`, a `;` parameter as in `/admin;x=1`, a `\`, an empty or dot segment)
    ///   must meet **every** requirement of the policy, so that a decoding router or a
    ///   normalizing inner service cannot route `/admin;x=1/users` or `/x/../admin` around
    ///   `/admin/*`'s;
    /// - a requirement for `GET` (see [`require_for`](Self::require_for)) covers `HEAD` too.
    ///
    /// The check runs after verification, only for paths with a requirement: a policy without
    /// requirements costs nothing more, and the path is copied (to decode it) only when it
    /// holds a `%`.
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
    #[must_use]
    pub fn require(mut self, path: &str, requirement: Requirement) -> Self {
        self.requirements.push(RequirementRule {
            method: None,
            pattern: Pattern::parse(&normalize(path)),
            requirement,
        });
        self
    }

    /// Like [`require`](Self::require), for one method only; a requirement for `GET` also
    /// applies to `HEAD` (axum runs the `GET` handler for it).
    #[must_use]
    pub fn require_for(mut self, method: Method, path: &str, requirement: Requirement) -> Self {
        self.requirements.push(RequirementRule {
            method: Some(method),
            pattern: Pattern::parse(&normalize(path)),
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

    /// Whether `claims` meet every requirement on this request (always, on paths without one):
    /// those whose method and path match the request's path with its percent-encoded unreserved
    /// characters decoded, or all of them when that path is not in plain form.
    pub fn permits(&self, method: &Method, path: &str, claims: &Claims) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        let path = normalize(path);
        let plain = is_plain(&path);
        self.requirements
            .iter()
            .filter(|r| !plain || r.applies(method, &path))
            .all(|r| r.requirement.is_met(claims))
    }

    /// Whether a requirement applies to a request for the plain `path` (which needs no
    /// decoding: a plain path holds no `%`).
    fn has_requirement_on(&self, method: &Method, path: &str) -> bool {
        self.requirements.iter().any(|r| r.applies(method, path))
    }

    /// The access of a request: the first matching rule's, [`Access::Protected`] without one,
    /// and always [`Access::Protected`] for a path that is not in plain form (see above) or that
    /// has a [requirement](Self::require).
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let access = self
            .rules
            .iter()
            .find(|r| method_matches(r.method.as_ref(), method) && r.pattern.matches(path))
            .map_or(Access::Protected, |r| r.access);
        // Only a relaxing verdict needs the scan: protected requests pay nothing for it.
        if access != Access::Protected && (!is_plain(path) || self.has_requirement_on(method, path))
        {
            return Access::Protected;
        }
        access
    }
}

/// Whether `path` is in plain form: it starts with `/`; it holds no `%`, `;` or `\`; and no
/// segment is empty (but the last, for a trailing slash) or a dot-segment (`.`, `..`).
fn is_plain(path: &str) -> bool {
    let Some(rest) = path.as_bytes().strip_prefix(b"/") else {
        return false;
    };
    // One pass: `start` is where the current segment began.
    let mut start = 0;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'%' | b';' | b'\\' => return false,
            b'/' => {
                if matches!(rest.get(start..i), Some(b"" | b"." | b"..")) {
                    return false;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    // The last segment may be empty (a trailing slash, or the root `/`).
    !matches!(rest.get(start..), Some(b"." | b".."))
}

/// `path` with its percent-encoded unreserved characters (`ALPHA / DIGIT / - . _ ~`) decoded,
/// as RFC 3986 §6.2.2.2 normalizes them; every other `%XX` is kept as it is. Borrowed (no
/// allocation) unless the path holds a `%`.
fn normalize(path: &str) -> Cow<'_, str> {
    if !path.as_bytes().contains(&b'%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let unreserved = match (b, bytes.get(i + 1..i + 3)) {
            (b'%', Some(&[hi, lo])) => hex(hi)
                .zip(hex(lo))
                .map(|(hi, lo)| (hi << 4) | lo)
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')),
            _ => None,
        };
        match unreserved {
            Some(c) => {
                out.push(char::from(c));
                i += 3;
            }
            None => {
                // Copy up to the next `%` at once (the path is ASCII but for `%XX`, which is
                // copied as it is: `i` always sits on a char boundary).
                let next = bytes
                    .get(i + 1..)
                    .and_then(|rest| rest.iter().position(|&b| b == b'%'))
                    .map_or(bytes.len(), |p| i + 1 + p);
                out.push_str(path.get(i..next).unwrap_or_default());
                i = next;
            }
        }
    }
    Cow::Owned(out)
}

/// The value of a hex digit, either case.
fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Access, PathPolicy, Requirement, is_plain, normalize};
    use crate::token::{JwtConfig, JwtKey, Principal, TokenUse};
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
            "/a.b",
            "/a/.x/",
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
            // Any `%`, `;` or `\` at all.
            "/a/%2e%2e%2e",
            "/a%2Eb",
            "/a/%25%32%65%25%32%65/b",
            "/%61pi",
            "/files/a%20b",
            "/a;b/c",
            "/a;",
            "/a\\b",
            "/a/..x\\",
        ] {
            assert!(!is_plain(path), "{path}");
        }
    }

    #[test]
    fn normalize_decodes_unreserved_characters_only() {
        for (path, expected) in [
            ("/%61dmin/x", "/admin/x"),
            ("/%61%64%6D%69%6e", "/admin"),
            ("/%41%5A%30%39%2D%2e%5f%7E", "/AZ09-._~"),
            // Reserved and other bytes stay encoded, as sent.
            ("/a%2fb%2F%5c%3b%20%25%3A", "/a%2fb%2F%5c%3b%20%25%3A"),
            ("/%2561", "/%2561"),
            // Not a percent-encoding: kept.
            ("/%", "/%"),
            ("/%6", "/%6"),
            ("/%zz%6g", "/%zz%6g"),
            ("/x%", "/x%"),
            ("/%%61", "/%a"),
        ] {
            assert_eq!(normalize(path), expected, "{path}");
        }
        // No `%`: borrowed, nothing allocated.
        assert!(matches!(
            normalize("/api/v3/admin;x/..//"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn requirements_cover_head_the_bare_prefix_and_other_spellings() {
        let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
        let claims = |role: &str| {
            let principal = Principal::builder("u")
                .claim("roles", [role])
                .build()
                .unwrap();
            let token = jwt.issue_pair_for(&principal).access_token;
            jwt.verify(&token, TokenUse::Access).unwrap()
        };
        let (admin, viewer, editor) = (claims("admin"), claims("viewer"), claims("editor"));
        let policy = PathPolicy::new()
            .require("/admin/*", Requirement::role("admin"))
            .require_for(Method::GET, "/reports/*", Requirement::role("editor"))
            .require_for(Method::HEAD, "/heads", Requirement::role("editor"))
            .require("/p%61ges/*", Requirement::role("editor"));
        let get = Method::GET;
        for path in [
            "/admin",
            "/admin/",
            "/admin/x",
            "/%61dmin",
            "/%61dmin/x",
            "/adm%69n/x",
        ] {
            assert!(!policy.permits(&get, path, &viewer), "{path}");
            assert!(!policy.permits(&Method::HEAD, path, &viewer), "{path}");
            assert!(policy.permits(&get, path, &admin), "{path}");
        }
        // Not the prefix itself: `/adminx` is another path.
        assert!(policy.permits(&get, "/adminx", &viewer));
        // GET covers HEAD, not the other way round, and no other method.
        assert!(!policy.permits(&Method::HEAD, "/reports/x", &viewer));
        assert!(policy.permits(&Method::HEAD, "/reports/x", &editor));
        assert!(policy.permits(&Method::POST, "/reports/x", &viewer));
        assert!(!policy.permits(&Method::HEAD, "/heads", &viewer));
        assert!(policy.permits(&Method::GET, "/heads", &viewer));
        // Patterns are decoded like paths.
        assert!(!policy.permits(&get, "/pages/x", &viewer));
        assert!(policy.permits(&get, "/pages/x", &editor));
        // Not plain once decoded: every requirement, whatever the path.
        for path in [
            "/x;y",
            "/admin;x=1/users",
            "/x/%2e%2e/admin",
            "/x/my%20file",
            "/x\\y",
        ] {
            assert!(!policy.permits(&Method::POST, path, &editor), "{path}");
            assert!(!policy.permits(&Method::POST, path, &admin), "{path}");
        }
        // A path under a requirement is protected whatever the access rules say.
        let open = policy.clone().public("/*");
        assert_eq!(open.access(&Method::GET, "/admin"), Access::Protected);
        assert_eq!(open.access(&Method::HEAD, "/reports/x"), Access::Protected);
        assert_eq!(open.access(&Method::POST, "/reports/x"), Access::Public);
        assert_eq!(open.access(&Method::GET, "/pages"), Access::Protected);
    }

    #[test]
    fn get_rules_cover_head() {
        let policy = PathPolicy::new()
            .login_routes("/api")
            .public_for(Method::GET, "/open")
            .optional_for(Method::HEAD, "/maybe");
        assert_eq!(policy.access(&Method::HEAD, "/open"), Access::Public);
        assert_eq!(policy.access(&Method::POST, "/open"), Access::Protected);
        assert_eq!(policy.access(&Method::HEAD, "/maybe"), Access::Optional);
        assert_eq!(policy.access(&Method::GET, "/maybe"), Access::Protected);
        // The refresh route serves GET only: its HEAD stays protected.
        assert_eq!(
            policy.access(&Method::HEAD, "/api/login/refresh"),
            Access::Protected
        );
        assert_eq!(
            policy.access(&Method::GET, "/api/login/refresh"),
            Access::Public
        );
    }

    #[test]
    fn public_and_optional_rules_never_match_unplain_paths() {
        let policy = PathPolicy::new().optional("/about/*").public("/*");
        for path in [
            "/ping/../api/v3/process",
            "/about/../admin",
            "//admin",
            "/%61dmin",
            "/about;x/../admin",
        ] {
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
