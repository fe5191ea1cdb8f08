//! [`Principal`]: who a token is for (the subject) and what the app says about them (extra
//! claims such as roles or a tenant), minted after Core's claims (docs/protocol.md §4).
//!
//! The extra claims are kept pre-serialized, as one compact JSON object
//! (`{"roles":["admin"],"tenant":"acme"}`) whose members the minter appends after Core's claims,
//! in the order they were added. Names that
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
//! assert_eq!(alice.extra_json(), Some(r#"{"roles":["admin","editor"],"tenant":"acme"}"#));
//! assert!(alice.has_role("admin"));
//!
//! // A bare subject converts: no extra claims, Core's exact tokens.
//! let bob = Principal::from("bob");
//! assert_eq!(bob.extra_json(), None);
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

/// The subject of a token plus the app's extra claims, minted after Core's claims in the order
/// they were added; names Core or the JWT registry use ([`RESERVED_CLAIMS`]) and extras over the
/// size limit are refused when it is built.
///
/// ```
/// use tower_jwt_login::Principal;
///
/// let p = Principal::builder("alice").claim("roles", ["admin"]).build().unwrap();
/// assert_eq!(p.extra_json(), Some(r#"{"roles":["admin"]}"#));
/// ```
///
/// Cheap to clone (the extra claims sit behind an `Arc`).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    /// The extra claims as a compact JSON object; `None` without.
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

    /// The extra claims as one compact JSON object (`{"roles":["admin"]}`), members in the
    /// order they were added; `None` without.
    pub fn extra_json(&self) -> Option<&str> {
        self.extra.as_deref()
    }

    /// The extra claims deserialized into `T` (parsed on every call; the layer can parse them
    /// once per request, see `JwtAuthLayer::claims_type`). Without extra claims, `T` is
    /// deserialized from `{}`.
    pub fn extra<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        parse_extra(self.extra.as_deref())
    }

    /// Whether the extra claim `roles` is an array containing `role` (the convention
    /// [`Requirement::role`](crate::auth::Requirement::role) checks).
    pub fn has_role(&self, role: &str) -> bool {
        has_role(self.extra.as_deref(), role)
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

    /// The limit of the serialized extra claims (the compact JSON object) in bytes (default
    /// [`DEFAULT_MAX_EXTRA_LEN`]).
    pub fn max_extra_len(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The principal, or the first reason it cannot be minted.
    pub fn build(self) -> Result<Principal, PrincipalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Some(members) = self.members.get(1..).filter(|m| !m.is_empty()) else {
            return Ok(Principal::new(self.subject));
        };
        let mut object = String::with_capacity(members.len() + 2);
        object.push('{');
        object.push_str(members);
        object.push('}');
        if object.len() > self.limit {
            return Err(PrincipalError::TooLarge {
                len: object.len(),
                limit: self.limit,
            });
        }
        Ok(Principal {
            subject: self.subject,
            extra: Some(Arc::from(object)),
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
fn push_member(out: &mut String, name: &str, json_value: &str) {
    out.push(',');
    push_name_value(out, name, json_value);
}

/// Appends `"name":value` (the name escaped as JSON).
pub(crate) fn push_name_value(out: &mut String, name: &str, json_value: &str) {
    if name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        // Serializing a string cannot fail.
        out.push_str(&serde_json::to_string(name).unwrap_or_default());
    } else {
        // Nothing to escape (serde_json escapes only these): written as serde_json would.
        out.push('"');
        out.push_str(name);
        out.push('"');
    }
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

/// The raw JSON of member `name` of the compact object `object`.
pub(crate) fn member_value<'a>(object: &'a str, name: &str) -> Option<&'a str> {
    let members = members_of(object)?;
    members
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.get())
}

/// Deserializes extra claims (a JSON object, or none: read as `{}`) into `T`.
pub(crate) fn parse_extra<T: DeserializeOwned>(
    object: Option<&str>,
) -> Result<T, serde_json::Error> {
    serde_json::from_str(object.unwrap_or("{}"))
}

/// Whether the extra claims have a top-level `"roles":[…]` with the string `role` among its
/// elements. One pass over the object, borrowing: no allocation for names and roles without
/// escapes. Anything else (no `roles`, not an array, no such string, not an object) is `false`.
pub(crate) fn has_role(object: Option<&str>, role: &str) -> bool {
    struct Seek<'r>(&'r str);
    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(name) = map.next_key::<JsonStr<'de>>()? {
                if &*name.0 == "roles" {
                    found |= map.next_value_seed(InRoles(self.0))?;
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    /// The `roles` value: `true` when it is an array with the string.
    struct InRoles<'r>(&'r str);
    impl<'de> serde::de::DeserializeSeed<'de> for InRoles<'_> {
        type Value = bool;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for InRoles<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(item) = seq.next_element::<AnyStr<'de>>()? {
                found |= item.0.as_deref() == Some(self.0);
            }
            Ok(found)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(false)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    let Some(object) = object else {
        return false;
    };
    let mut de = serde_json::Deserializer::from_str(object);
    serde::Deserializer::deserialize_map(&mut de, Seek(role)).unwrap_or(false)
}

/// A JSON string, borrowed when it has no escapes.
struct JsonStr<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(JsonStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// An array element: the string, or `None` for any other value.
struct AnyStr<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'de> serde::Deserialize<'de> for AnyStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(AnyStr(Some(std::borrow::Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(AnyStr(Some(std::borrow::Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AnyStr(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AnyStr(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AnyStr(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AnyStr(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(AnyStr(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(AnyStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// What [`CredentialStore::principal`](crate::store::CredentialStore::principal) found (also
/// [`store::Lookup`](crate::store::Lookup), where credential stores use it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// The subject's current principal: its extra claims go into the minted tokens.
    Found(Principal),
    /// The subject may no longer log in or refresh (disabled, removed). A login is refused like
    /// wrong credentials (401, no hint); a refresh gets the refresh route's 401.
    Refused,
    /// The store does not look principals up: a login mints tokens without extra claims, a
    /// refresh carries the refresh token's extra claims over.
    NotSupported,
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
            p.extra_json(),
            Some(r#"{"tenant":"acme","roles":["admin"],"we\"ird":1}"#)
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
        assert_eq!(p.extra_json(), Some(r#"{"zeta":1,"alpha":"x"}"#));
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
        // `{"b":"…"}` is 8 bytes plus the text.
        let fits = "x".repeat(DEFAULT_MAX_EXTRA_LEN - 8);
        let p = Principal::builder("a").claim("b", &fits).build().unwrap();
        assert_eq!(p.extra_json().unwrap().len(), DEFAULT_MAX_EXTRA_LEN);
        let over = "x".repeat(DEFAULT_MAX_EXTRA_LEN - 7);
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
