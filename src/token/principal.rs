//! [`Principal`]: who a token is for (the subject) and what the app says about them (extra
//! claims such as roles or a tenant), minted after Core's claims (docs/protocol.md §4).
//!
//! The extra claims are kept pre-serialized, as the JSON members the minter appends after
//! Core's claims (`,"roles":["admin"],"tenant":"acme"`), in the order they were added. Names that
//! Core or the JWT registry use (`exp sub usefor iss jti exi iat nbf aud sid`) are refused, and so
//! are extra claims larger than a limit (1 KiB serialized by default), when the principal is
//! built — never later, at login.
//!
//! ```
//! use tower_jwt_login::token::{Principal, PrincipalError};
//!
//! let alice = Principal::builder("alice")
//!     .claim("roles", ["admin", "editor"])
//!     .claim("tenant", "acme")
//!     .build()
//!     .unwrap();
//! assert_eq!(alice.subject(), "alice");
//! assert_eq!(alice.extra_members(), Some(r#","roles":["admin","editor"],"tenant":"acme""#));
//! assert!(alice.has_role("admin"));
//!
//! // A bare subject converts: no extra claims, Core's exact tokens.
//! let bob = Principal::from("bob");
//! assert_eq!(bob.extra_members(), None);
//!
//! // Core's claims cannot be overridden.
//! let err = Principal::builder("mallory").claim("exp", u64::MAX).build().unwrap_err();
//! assert_eq!(err, PrincipalError::Reserved("exp".to_owned()));
//! ```

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Claim names a principal cannot set: Core's (`exi`, `exp`, `iat`, `iss`, `jti`, `sub`,
/// `usefor`), the crate's session id (`sid`) and the registered `nbf` and `aud`.
pub const RESERVED_CLAIMS: [&str; 10] = [
    "exp", "sub", "usefor", "iss", "jti", "exi", "iat", "nbf", "aud", "sid",
];

/// Default limit of a principal's serialized extra claims, in bytes (1 KiB).
pub const DEFAULT_MAX_EXTRA_LEN: usize = 1024;

/// Whether `name` is one of the [`RESERVED_CLAIMS`].
pub(crate) fn is_reserved(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name)
}

/// Why a [`Principal`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrincipalError {
    /// The claim name is one of the [`RESERVED_CLAIMS`].
    Reserved(String),
    /// The claim was added twice.
    Duplicate(String),
    /// The serialized extra claims are longer than the limit.
    TooLarge {
        /// Their length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A value did not serialize to JSON (a map with non-string keys, a failing `Serialize`),
    /// or [`PrincipalBuilder::claims`] was given something other than a JSON object.
    NotJson(String),
}

impl fmt::Display for PrincipalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalError::Reserved(name) => write!(f, "claim `{name}` is reserved"),
            PrincipalError::Duplicate(name) => write!(f, "claim `{name}` added twice"),
            PrincipalError::TooLarge { len, limit } => {
                write!(
                    f,
                    "extra claims take {len} bytes, more than the limit of {limit}"
                )
            }
            PrincipalError::NotJson(why) => write!(f, "extra claims are no JSON object: {why}"),
        }
    }
}

impl std::error::Error for PrincipalError {}

/// The subject of a token plus the app's extra claims. See the [module docs](self).
///
/// Cheap to clone (the extra claims sit behind an `Arc`).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    /// The JSON members, each with its leading comma; `None` without extra claims.
    extra: Option<Arc<str>>,
}

impl Principal {
    /// A principal without extra claims.
    pub fn new(subject: impl Into<String>) -> Self {
        Principal {
            subject: subject.into(),
            extra: None,
        }
    }

    /// Starts a principal with extra claims.
    pub fn builder(subject: impl Into<String>) -> PrincipalBuilder {
        PrincipalBuilder {
            subject: subject.into(),
            members: String::new(),
            names: Vec::new(),
            limit: DEFAULT_MAX_EXTRA_LEN,
            error: None,
        }
    }

    /// The subject (`sub`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The extra claims as the JSON members appended to the token's claims, each with its
    /// leading comma (`,"roles":["admin"]`), in the order they were added; `None` without.
    pub fn extra_members(&self) -> Option<&str> {
        self.extra.as_deref()
    }

    /// The extra claims deserialized into `T` (parsed on every call; the layer can parse them
    /// once per request, see `JwtAuthLayer::claims_type`). Without extra claims, `T` is
    /// deserialized from `{}`.
    pub fn extra<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        parse_members(self.extra.as_deref())
    }

    /// Whether the extra claim `roles` is an array containing `role` (the convention
    /// [`Requirement::role`](crate::auth::Requirement::role) checks).
    pub fn has_role(&self, role: &str) -> bool {
        members_have_role(self.extra.as_deref(), role)
    }

    /// A principal from claims that were already checked (a verified token's, which the
    /// verifier collected without the reserved names).
    pub(crate) fn from_checked(subject: &str, extra: Option<Arc<str>>) -> Self {
        Principal {
            subject: subject.to_owned(),
            extra,
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject)
            .field("extra", &self.extra.as_deref().unwrap_or_default())
            .finish()
    }
}

impl From<String> for Principal {
    fn from(subject: String) -> Self {
        Principal::new(subject)
    }
}

impl From<&str> for Principal {
    fn from(subject: &str) -> Self {
        Principal::new(subject)
    }
}

/// Builds a [`Principal`]; errors are kept and reported by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use = "call `build` to get the principal"]
pub struct PrincipalBuilder {
    subject: String,
    members: String,
    names: Vec<String>,
    limit: usize,
    error: Option<PrincipalError>,
}

impl PrincipalBuilder {
    /// Adds the claim `name` with `value` (anything `Serialize`), after the ones added before.
    pub fn claim(mut self, name: &str, value: impl Serialize) -> Self {
        if self.error.is_none() {
            match serde_json::to_string(&value) {
                Ok(json) => self.push(name, &json),
                Err(e) => self.error = Some(PrincipalError::NotJson(e.to_string())),
            }
        }
        self
    }

    /// Adds every member of `object` (a struct or map that serializes to a JSON object), in its
    /// serialization order (a struct's field order).
    pub fn claims(mut self, object: impl Serialize) -> Self {
        if self.error.is_some() {
            return self;
        }
        let json = match serde_json::to_string(&object) {
            Ok(json) => json,
            Err(e) => {
                self.error = Some(PrincipalError::NotJson(e.to_string()));
                return self;
            }
        };
        match members_of(&json) {
            Some(members) => {
                for (name, value) in members {
                    self.push(&name, value.get());
                }
            }
            None => self.error = Some(PrincipalError::NotJson("not an object".to_owned())),
        }
        self
    }

    /// The limit of the serialized extra claims in bytes (default [`DEFAULT_MAX_EXTRA_LEN`]).
    pub fn max_extra_len(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The principal, or the first reason it cannot be minted.
    pub fn build(self) -> Result<Principal, PrincipalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.members.len() > self.limit {
            return Err(PrincipalError::TooLarge {
                len: self.members.len(),
                limit: self.limit,
            });
        }
        Ok(Principal {
            subject: self.subject,
            extra: (!self.members.is_empty()).then(|| Arc::from(self.members)),
        })
    }

    fn push(&mut self, name: &str, json_value: &str) {
        if self.error.is_some() {
            return;
        }
        if is_reserved(name) {
            self.error = Some(PrincipalError::Reserved(name.to_owned()));
            return;
        }
        if self.names.iter().any(|n| n == name) {
            self.error = Some(PrincipalError::Duplicate(name.to_owned()));
            return;
        }
        self.names.push(name.to_owned());
        push_member(&mut self.members, name, json_value);
    }
}

/// Appends `,"name":value` (the name escaped as JSON).
pub(crate) fn push_member(out: &mut String, name: &str, json_value: &str) {
    out.push(',');
    // Serializing a string cannot fail.
    out.push_str(&serde_json::to_string(name).unwrap_or_default());
    out.push(':');
    out.push_str(json_value);
}

/// The members of a JSON object, in order, as raw values. `None` for anything but an object,
/// and for duplicate names.
pub(crate) fn members_of(json: &str) -> Option<Vec<(String, &RawValue)>> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, &'de RawValue)> = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                let value: &'de RawValue = map.next_value()?;
                if out.iter().any(|(n, _)| *n == name) {
                    return Err(serde::de::Error::custom("duplicate member"));
                }
                out.push((name, value));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let members = serde::Deserializer::deserialize_map(&mut de, Members).ok()?;
    de.end().ok()?;
    Some(members)
}

/// The raw JSON value of member `name` in `object_inner` (an object's members without the
/// braces, as `"a":1,"b":[2]`).
pub(crate) fn member_value<'a>(object_inner: &'a str, name: &str) -> Option<&'a str> {
    // The members of `{…}` borrow from a copy; find the value's position in the copy and
    // return the same range of the original (the copy is the original shifted by one byte).
    let mut object = String::with_capacity(object_inner.len() + 2);
    object.push('{');
    object.push_str(object_inner);
    object.push('}');
    let members = members_of(&object)?;
    let (_, value) = members.into_iter().find(|(n, _)| n == name)?;
    let start = value.get().as_ptr() as usize - object.as_ptr() as usize;
    object_inner.get(start - 1..start - 1 + value.get().len())
}

/// Deserializes extra members (`,"a":1,"b":2`, or none) as the object `{"a":1,"b":2}`.
pub(crate) fn parse_members<T: DeserializeOwned>(
    members: Option<&str>,
) -> Result<T, serde_json::Error> {
    let inner = members.and_then(|m| m.get(1..)).unwrap_or_default();
    let mut object = String::with_capacity(inner.len() + 2);
    object.push('{');
    object.push_str(inner);
    object.push('}');
    serde_json::from_str(&object)
}

/// Whether the extra members have `"roles":[…]` with `role` among its strings.
pub(crate) fn members_have_role(members: Option<&str>, role: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Roles {
        #[serde(default)]
        roles: Vec<String>,
    }
    members.is_some_and(|_| {
        parse_members::<Roles>(members).is_ok_and(|r| r.roles.iter().any(|r| r == role))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_in_insertion_order_with_escaped_names() {
        let p = Principal::builder("a")
            .claim("tenant", "acme")
            .claim("roles", ["admin"])
            .claim("we\"ird", 1)
            .build()
            .unwrap();
        assert_eq!(
            p.extra_members(),
            Some(r#","tenant":"acme","roles":["admin"],"we\"ird":1"#)
        );
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Mine {
            tenant: String,
            roles: Vec<String>,
        }
        assert_eq!(
            p.extra::<Mine>().unwrap(),
            Mine {
                tenant: "acme".into(),
                roles: vec!["admin".into()]
            }
        );
    }

    #[test]
    fn struct_claims_keep_field_order() {
        #[derive(Serialize)]
        struct App {
            zeta: u8,
            alpha: &'static str,
        }
        let p = Principal::builder("a")
            .claims(App {
                zeta: 1,
                alpha: "x",
            })
            .build()
            .unwrap();
        assert_eq!(p.extra_members(), Some(r#","zeta":1,"alpha":"x""#));
        let err = Principal::builder("a").claims([1, 2]).build().unwrap_err();
        assert!(matches!(err, PrincipalError::NotJson(_)));
    }

    #[test]
    fn every_reserved_name_and_duplicates_and_size_are_refused() {
        for name in RESERVED_CLAIMS {
            let err = Principal::builder("a").claim(name, 1).build().unwrap_err();
            assert_eq!(err, PrincipalError::Reserved(name.to_owned()));
            let err = Principal::builder("a")
                .claims(serde_json::json!({ name: 1 }))
                .build()
                .unwrap_err();
            assert_eq!(err, PrincipalError::Reserved(name.to_owned()));
        }
        let err = Principal::builder("a")
            .claim("x", 1)
            .claim("x", 2)
            .build()
            .unwrap_err();
        assert_eq!(err, PrincipalError::Duplicate("x".to_owned()));
        // `,"b":"…"` is 7 bytes plus the text.
        let fits = "x".repeat(DEFAULT_MAX_EXTRA_LEN - 7);
        let p = Principal::builder("a").claim("b", &fits).build().unwrap();
        assert_eq!(p.extra_members().unwrap().len(), DEFAULT_MAX_EXTRA_LEN);
        let over = "x".repeat(DEFAULT_MAX_EXTRA_LEN - 6);
        assert_eq!(
            Principal::builder("a")
                .claim("b", &over)
                .build()
                .unwrap_err(),
            PrincipalError::TooLarge {
                len: DEFAULT_MAX_EXTRA_LEN + 1,
                limit: DEFAULT_MAX_EXTRA_LEN
            }
        );
        assert!(
            Principal::builder("a")
                .max_extra_len(4096)
                .claim("b", &over)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn roles() {
        let p = Principal::builder("a")
            .claim("roles", ["reader", "admin"])
            .build()
            .unwrap();
        assert!(p.has_role("admin"));
        assert!(!p.has_role("adm"));
        assert!(!Principal::new("a").has_role("admin"));
        let odd = Principal::builder("a")
            .claim("roles", "admin")
            .build()
            .unwrap();
        assert!(!odd.has_role("admin"));
    }
}
