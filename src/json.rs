//! The two JSON helpers every module shares.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Serializes `value` as compact JSON followed by `\n` (Core's encoder adds the newline).
pub(crate) fn json_line<T: Serialize + ?Sized>(value: &T) -> Bytes {
    let mut buf = Vec::with_capacity(128);
    // Serializing the crate's own plain structs into a Vec cannot fail; `{}` is a safe fallback
    // that still parses as JSON should that ever change.
    if serde_json::to_writer(&mut buf, value).is_err() {
        buf.clear();
        buf.extend_from_slice(b"{}");
    }
    buf.push(b'\n');
    Bytes::from(buf)
}

/// Parses a JSON *object* into `T`. serde's derived structs also accept a JSON array
/// (positionally); tokens and login bodies must be objects, so arrays are refused here.
/// Duplicate keys, wrong types and nesting deeper than serde_json's limit are refused by the
/// parse itself.
///
/// The whole text must be UTF-8 (RFC 8259 §8.1): serde_json skips ignored members without
/// validating them, so without this check a token with invalid UTF-8 inside an unknown claim
/// would verify (found by the `verify_differential` fuzz target; `jsonwebtoken` refuses it).
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str(text).ok()
}
