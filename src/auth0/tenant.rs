//! Auth0 tenants as Core configures them (docs/protocol.md §5): `domain`, `audience`, `clientid` and
//! the allowed `users`, read from `CORE_API_AUTH_AUTH0_ENABLE` / `CORE_API_AUTH_AUTH0_TENANTS`.
//!
//! ```
//! use tower_jwt_login::auth0::{Auth0Config, Auth0Tenant};
//!
//! // Core's two spellings of a tenant: a URL, or base64 of the JSON object.
//! let url = "auth0://my-client@example.eu.auth0.com?aud=https://api.example&user=auth0|1&user=auth0|2";
//! let tenant = Auth0Tenant::parse(url).unwrap();
//! assert_eq!(tenant.issuer(), "https://example.eu.auth0.com/");
//! assert_eq!(tenant.jwks_url(), "https://example.eu.auth0.com/.well-known/jwks.json");
//! assert!(tenant.allows("auth0|2"));
//! assert_eq!(
//!     tenant.auths_entry(),
//!     "auth0 domain=example.eu.auth0.com audience=https://api.example clientid=my-client"
//! );
//!
//! let env = [
//!     ("CORE_API_AUTH_AUTH0_ENABLE", "true"),
//!     ("CORE_API_AUTH_AUTH0_TENANTS", url),
//! ];
//! let config = Auth0Config::default().with_lookup(|k| {
//!     env.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())
//! })
//! .unwrap();
//! assert!(config.enable);
//! assert_eq!(config.tenants, vec![tenant]);
//! assert_eq!(config.auths(), vec![
//!     "auth0 domain=example.eu.auth0.com audience=https://api.example clientid=my-client".to_owned()
//! ]);
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Deserialize;

use crate::env::parse_bool;

/// One Auth0 tenant: tokens issued by `https://<domain>/` for `audience`, accepted for the
/// listed `sub` values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth0Tenant {
    domain: String,
    audience: String,
    clientid: String,
    users: Vec<String>,
    jwks_url: Option<String>,
}

/// Core's JSON shape of a tenant (`{"domain","audience","clientid","users":[…]}`).
#[derive(Deserialize)]
struct TenantJson {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    clientid: String,
    #[serde(default)]
    users: Option<Vec<String>>,
}

impl Auth0Tenant {
    /// A tenant for `domain` (a host name, optionally with `:port`, as in `https://<domain>/`)
    /// and `audience`, with no client id and no allowed users yet.
    pub fn new(domain: impl Into<String>, audience: impl Into<String>) -> Self {
        Auth0Tenant {
            domain: domain.into(),
            audience: audience.into(),
            clientid: String::new(),
            users: Vec::new(),
            jwks_url: None,
        }
    }

    /// Sets the client id (shown to clients in the discovery `auths` entry).
    #[must_use]
    pub fn clientid(mut self, clientid: impl Into<String>) -> Self {
        self.clientid = clientid.into();
        self
    }

    /// Adds an allowed user (an Auth0 `sub` such as `auth0|64f…` or `google-oauth2|…`).
    #[must_use]
    pub fn user(mut self, sub: impl Into<String>) -> Self {
        self.users.push(sub.into());
        self
    }

    /// Adds allowed users.
    #[must_use]
    pub fn users<I, U>(mut self, subs: I) -> Self
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        self.users.extend(subs.into_iter().map(Into::into));
        self
    }

    /// Fetches the keys from `url` instead of `https://<domain>/.well-known/jwks.json` — for
    /// tests (a loopback server, plain `http://` allowed) and deployments behind a mirror. The
    /// issuer the tokens must carry stays `https://<domain>/`.
    #[must_use]
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The domain, e.g. `example.eu.auth0.com`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The audience the tokens' `aud` must contain.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The client id (may be empty).
    pub fn client_id(&self) -> &str {
        &self.clientid
    }

    /// The allowed `sub` values, in configuration order.
    pub fn allowed_users(&self) -> &[String] {
        &self.users
    }

    /// Whether `sub` is one of the allowed users (exact, case-sensitive match).
    pub fn allows(&self, sub: &str) -> bool {
        self.users.iter().any(|u| u == sub)
    }

    /// The exact `iss` this tenant's tokens carry: `https://<domain>/`.
    pub fn issuer(&self) -> String {
        format!("https://{}/", self.domain)
    }

    /// Where the keys are fetched: the override, or `https://<domain>/.well-known/jwks.json`.
    pub fn jwks_url(&self) -> String {
        match &self.jwks_url {
            Some(url) => url.clone(),
            None => format!("https://{}/.well-known/jwks.json", self.domain),
        }
    }

    /// The discovery entry (docs/protocol.md §6): `auth0 domain=<d> audience=<a> clientid=<c>`.
    pub fn auths_entry(&self) -> String {
        format!(
            "auth0 domain={} audience={} clientid={}",
            self.domain, self.audience, self.clientid
        )
    }

    /// Parses one tenant in either of Core's spellings: `auth0://<clientid>@<domain>?aud=<audience>&user=<sub>&…`
    /// or standard base64 of `{"domain","audience","clientid","users":[…]}`.
    pub fn parse(entry: &str) -> Result<Self, TenantError> {
        Self::parse_at(entry, 1)
    }

    /// Parses Core's comma-separated list (`CORE_API_AUTH_AUTH0_TENANTS`). An empty or blank
    /// string is no tenant; an empty entry between commas is an error.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, TenantError> {
        if list.trim().is_empty() {
            return Ok(Vec::new());
        }
        list.split(',')
            .enumerate()
            .map(|(i, entry)| Self::parse_at(entry, i + 1))
            .collect()
    }

    fn parse_at(entry: &str, index: usize) -> Result<Self, TenantError> {
        let entry = entry.trim();
        let bad = |problem: TenantProblem| TenantError::Tenant { index, problem };
        if entry.is_empty() {
            return Err(bad(TenantProblem::Empty));
        }
        let tenant = if let Some(rest) = entry.strip_prefix("auth0://") {
            parse_url(rest).map_err(bad)?
        } else {
            let json = STANDARD
                .decode(entry)
                .or_else(|_| STANDARD_NO_PAD.decode(entry))
                .map_err(|_| bad(TenantProblem::Base64))?;
            let parsed: TenantJson =
                crate::json::parse_object(&json).ok_or(bad(TenantProblem::Json))?;
            Auth0Tenant {
                domain: parsed.domain,
                audience: parsed.audience,
                clientid: parsed.clientid,
                users: parsed.users.unwrap_or_default(),
                jwks_url: None,
            }
        };
        tenant.validate().map_err(bad)?;
        Ok(tenant)
    }

    fn validate(&self) -> Result<(), TenantProblem> {
        if self.domain.is_empty() {
            return Err(TenantProblem::MissingDomain);
        }
        let valid_domain = self
            .domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        if !valid_domain {
            return Err(TenantProblem::InvalidDomain);
        }
        if self.audience.is_empty() {
            return Err(TenantProblem::MissingAudience);
        }
        if self.users.iter().any(String::is_empty) {
            return Err(TenantProblem::EmptyUser);
        }
        Ok(())
    }
}

/// `<clientid>@<domain>?aud=…&user=…` (after `auth0://`), percent-decoded like Go's `url.Parse`.
fn parse_url(rest: &str) -> Result<Auth0Tenant, TenantProblem> {
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.contains('#') {
        return Err(TenantProblem::Url("a fragment (#) is not allowed"));
    }
    // Go's parser allows an empty path or "/" after the host; nothing else makes sense here.
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') {
        return Err(TenantProblem::Url("a path after the domain is not allowed"));
    }
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let clientid = match userinfo {
        Some(u) if u.contains(':') => {
            return Err(TenantProblem::Url(
                "a password in the URL is not allowed (auth0://<clientid>@<domain>)",
            ));
        }
        Some(u) => percent_decode(u, false).ok_or(TenantProblem::Url("bad percent-encoding"))?,
        None => String::new(),
    };
    let mut tenant = Auth0Tenant::new(host, String::new()).clientid(clientid);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key, true).ok_or(TenantProblem::Url("bad percent-encoding"))?;
        let value =
            percent_decode(value, true).ok_or(TenantProblem::Url("bad percent-encoding"))?;
        match key.as_str() {
            "aud" if tenant.audience.is_empty() => tenant.audience = value,
            "aud" => return Err(TenantProblem::Url("aud is given twice")),
            "user" => tenant.users.push(value),
            _ => {
                return Err(TenantProblem::Url(
                    "unknown query parameter (only aud and user are allowed)",
                ));
            }
        }
    }
    Ok(tenant)
}

/// Percent-decoding of URL components; `+` is a space in query components (Go's
/// `url.QueryUnescape`). `None` for a bad escape or non-UTF-8 result.
fn percent_decode(s: &str, query: bool) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            b'+' if query => out.push(b' '),
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Core's Auth0 settings: `CORE_API_AUTH_AUTH0_ENABLE` and `CORE_API_AUTH_AUTH0_TENANTS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth0Config {
    /// `CORE_API_AUTH_AUTH0_ENABLE`: whether Auth0 logins are accepted.
    pub enable: bool,
    /// `CORE_API_AUTH_AUTH0_TENANTS`, in configuration order (which is the order of the
    /// discovery `auths` entries and of issuer matching).
    pub tenants: Vec<Auth0Tenant>,
}

impl Auth0Config {
    /// These settings, overridden by the process environment; then validated (as
    /// [`CoreAuthConfig::with_env`](crate::config::CoreAuthConfig::with_env)).
    pub fn with_env(self) -> Result<Self, TenantError> {
        self.with_lookup(|k| std::env::var(k).ok())
    }

    /// These settings, overridden by the two variables `lookup` finds; then validated. The
    /// tenants are parsed (and must be valid) even when Auth0 is disabled; enabled with no
    /// tenant is an error.
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TenantError> {
        if let Some(v) = lookup("CORE_API_AUTH_AUTH0_ENABLE") {
            self.enable = parse_bool(&v).ok_or(TenantError::InvalidEnable)?;
        }
        if let Some(list) = lookup("CORE_API_AUTH_AUTH0_TENANTS") {
            self.tenants = Auth0Tenant::parse_list(&list)?;
        }
        if self.enable && self.tenants.is_empty() {
            return Err(TenantError::NoTenants);
        }
        Ok(self)
    }

    /// The discovery `auths` entries of the enabled tenants, in order (empty when disabled);
    /// they follow [`LOCAL_JWT`](crate::discovery::LOCAL_JWT).
    pub fn auths(&self) -> Vec<String> {
        if !self.enable {
            return Vec::new();
        }
        self.tenants.iter().map(Auth0Tenant::auths_entry).collect()
    }
}

/// A bad Auth0 configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantError {
    /// `CORE_API_AUTH_AUTH0_ENABLE` is not a boolean.
    InvalidEnable,
    /// Auth0 is enabled but `CORE_API_AUTH_AUTH0_TENANTS` lists no tenant.
    NoTenants,
    /// Entry number `index` (from 1) of the tenant list is invalid.
    Tenant {
        /// 1-based position in the comma-separated list.
        index: usize,
        /// What is wrong with it.
        problem: TenantProblem,
    },
}

/// What is wrong with one tenant entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantProblem {
    /// Nothing between two commas.
    Empty,
    /// Neither `auth0://…` nor valid standard base64.
    Base64,
    /// The base64 decodes, but not to a JSON object of the tenant's shape.
    Json,
    /// The `auth0://` URL is malformed.
    Url(&'static str),
    /// No domain.
    MissingDomain,
    /// The domain holds characters a host name (with optional port) cannot have.
    InvalidDomain,
    /// No audience.
    MissingAudience,
    /// An allowed user is the empty string.
    EmptyUser,
}

impl fmt::Display for TenantProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantProblem::Empty => f.write_str("the entry is empty"),
            TenantProblem::Base64 => f.write_str(
                "neither auth0://<clientid>@<domain>?aud=<audience>&user=<sub> nor standard base64",
            ),
            TenantProblem::Json => f.write_str(
                "the base64 does not decode to {\"domain\",\"audience\",\"clientid\",\"users\":[…]}",
            ),
            TenantProblem::Url(what) => write!(f, "bad auth0:// URL: {what}"),
            TenantProblem::MissingDomain => f.write_str("the domain is missing"),
            TenantProblem::InvalidDomain => {
                f.write_str("the domain must be a host name, optionally with :port")
            }
            TenantProblem::MissingAudience => f.write_str("the audience is missing"),
            TenantProblem::EmptyUser => f.write_str("an allowed user is empty"),
        }
    }
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantError::InvalidEnable => f.write_str(
                "CORE_API_AUTH_AUTH0_ENABLE must be true or false (1, t, T, TRUE, true, True, 0, f, …)",
            ),
            TenantError::NoTenants => f.write_str(
                "CORE_API_AUTH_AUTH0_ENABLE is true but CORE_API_AUTH_AUTH0_TENANTS lists no tenant",
            ),
            TenantError::Tenant { index, problem } => {
                write!(f, "CORE_API_AUTH_AUTH0_TENANTS entry #{index}: {problem}")
            }
        }
    }
}

impl std::error::Error for TenantError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        STANDARD.encode(json)
    }

    #[test]
    fn base64_json_and_url_spellings_agree() {
        let json = b64(
            r#"{"domain":"t.auth0.com","audience":"https://api","clientid":"cid","users":["auth0|1","github|2"]}"#,
        );
        let url = "auth0://cid@t.auth0.com?aud=https%3A%2F%2Fapi&user=auth0%7C1&user=github|2";
        let a = Auth0Tenant::parse(&json).unwrap();
        let b = Auth0Tenant::parse(url).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.allowed_users(), ["auth0|1", "github|2"]);
        assert_eq!(a.client_id(), "cid");
        assert_eq!(
            Auth0Tenant::parse_list(&format!("{json},{url}")).unwrap(),
            vec![a.clone(), a]
        );
    }

    #[test]
    fn url_without_clientid_or_users() {
        let t = Auth0Tenant::parse("auth0://t.auth0.com:8443/?aud=x").unwrap();
        assert_eq!(t.domain(), "t.auth0.com:8443");
        assert_eq!(t.client_id(), "");
        assert!(t.allowed_users().is_empty());
        assert!(!t.allows(""));
    }

    #[test]
    fn bad_entries_have_clear_errors() {
        let err = |s: &str| Auth0Tenant::parse_list(s).unwrap_err().to_string();
        assert_eq!(
            err("auth0://c@d?aud=a,,auth0://c@d?aud=a"),
            "CORE_API_AUTH_AUTH0_TENANTS entry #2: the entry is empty"
        );
        assert!(err("not base64!").contains("entry #1: neither auth0://"));
        assert!(err(&b64("[1,2]")).contains("does not decode to"));
        assert!(err(&b64(r#"{"domain":"d","users":"x"}"#)).contains("does not decode to"));
        assert!(err(&b64(r#"{"domain":"d"}"#)).contains("the audience is missing"));
        assert!(err(&b64(r#"{"audience":"a"}"#)).contains("the domain is missing"));
        assert!(err("auth0://c@d?user=x").contains("the audience is missing"));
        assert!(err("auth0://c@d/path?aud=a").contains("a path after the domain"));
        assert!(err("auth0://c:secret@d?aud=a").contains("a password"));
        assert!(err("auth0://c@d?aud=a&users=x").contains("unknown query parameter"));
        assert!(err("auth0://c@d?aud=a&aud=b").contains("aud is given twice"));
        assert!(err("auth0://c@d?aud=%zz").contains("bad percent-encoding"));
        assert!(err("auth0://c@d/x/y?aud=a").contains("path"));
        assert!(err("auth0://c@ev il?aud=a").contains("host name"));
        assert!(err("auth0://c@d?aud=a&user=").contains("an allowed user is empty"));
    }

    #[test]
    fn config_from_variables() {
        let lookup = |enable: &'static str, tenants: &'static str| {
            move |k: &str| match k {
                "CORE_API_AUTH_AUTH0_ENABLE" => Some(enable.to_owned()),
                "CORE_API_AUTH_AUTH0_TENANTS" => Some(tenants.to_owned()),
                _ => None,
            }
        };
        let c = Auth0Config::default()
            .with_lookup(lookup("false", ""))
            .unwrap();
        assert_eq!(c, Auth0Config::default());
        assert!(c.auths().is_empty());
        assert_eq!(
            Auth0Config::default()
                .with_lookup(lookup("true", ""))
                .unwrap_err(),
            TenantError::NoTenants
        );
        assert_eq!(
            Auth0Config::default()
                .with_lookup(lookup("yes", ""))
                .unwrap_err(),
            TenantError::InvalidEnable
        );
        let c = Auth0Config::default()
            .with_lookup(lookup(
                "1",
                "auth0://a@one.example?aud=x, auth0://b@two.example?aud=y",
            ))
            .unwrap();
        assert_eq!(
            c.auths(),
            [
                "auth0 domain=one.example audience=x clientid=a",
                "auth0 domain=two.example audience=y clientid=b"
            ]
        );
        // Disabled: the tenants are still checked, but not advertised.
        let c = Auth0Config::default()
            .with_lookup(lookup("false", "auth0://a@one.example?aud=x"))
            .unwrap();
        assert_eq!(c.tenants.len(), 1);
        assert!(c.auths().is_empty());
        assert!(
            Auth0Config::default()
                .with_lookup(lookup("false", "garbage!"))
                .is_err()
        );
    }
}
