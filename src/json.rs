//! The JSON helpers every module shares, and the writers of the hot paths' JSON (the minted
//! claims, the login answer), which write exactly what serde_json writes, without its
//! machinery.

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

/// Appends `text` as a JSON string, exactly as serde_json writes it: quoted as it is when no
/// byte needs an escape (serde_json escapes only `"`, `\` and control characters), through
/// serde_json itself otherwise.
pub(crate) fn push_str(buf: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, text);
    } else {
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    }
}

/// Whether any byte is `"`, `\` or a control character. Written without an early exit, so that
/// the compiler turns it into vector instructions: a token (300–700 bytes, none of which needs
/// an escape) is checked in a few dozen instructions instead of several per byte.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| found | escaped(b))
}

/// Whether a JSON string writes `b` escaped (serde_json) or must have it escaped (RFC 8259):
/// `"`, `\` and control characters. The strings the crate reads without serde (the claims it
/// mints) are those with none of these; anything else goes through serde_json.
#[inline]
pub(crate) fn escaped(b: u8) -> bool {
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// Appends `n` in decimal, as serde_json writes an unsigned integer.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `n % 10` is a single digit.
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(digits.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::{needs_escape, push_str, push_u64};

    /// The word-at-a-time check agrees with the byte-by-byte one for every byte at every
    /// position of a word and of the remainder.
    #[test]
    fn needs_escape_flags_exactly_the_escaped_bytes() {
        for (len, fill) in (1..=19).flat_map(|len| {
            [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff].map(|fill| (len, fill))
        }) {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![fill; len];
                    bytes[at] = b;
                    let expected = b == b'"' || b == b'\\' || b < 0x20;
                    assert_eq!(needs_escape(&bytes), expected, "{b:#x} at {at} of {len}");
                }
            }
        }
        assert!(!needs_escape(b""));
        assert!(!needs_escape("eyJhbGciOiJIUzI1NiJ9.ünï€😀".as_bytes()));
    }

    #[test]
    fn writers_match_serde_json() {
        for text in [
            "",
            "admin",
            "datarhei-core",
            "a\"b",
            "back\\slash",
            "line\nbreak\ttab\r\u{8}\u{c}",
            "\u{0}\u{1f}",
            "\u{7f} del",
            "ünïcödé € 😀",
            "\u{2028}\u{2029}",
            "<script>&amp;</script>",
        ] {
            let mut buf = Vec::new();
            push_str(&mut buf, text);
            assert_eq!(buf, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        let pair = crate::TokenPair {
            access_token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln".to_owned(),
            refresh_token: "odd \"token\"\n".to_owned(),
        };
        assert_eq!(pair.json_line(), super::json_line(&pair));
        // With a remembered device's token: a third member, as serde_json writes the struct.
        #[derive(serde::Serialize)]
        struct WithDevice<'a> {
            access_token: &'a str,
            refresh_token: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            device_trust_token: Option<&'a str>,
        }
        for device in [None, Some("Zm9v-YmFy_"), Some("odd \"device\"\u{1}")] {
            let reference = super::json_line(&WithDevice {
                access_token: &pair.access_token,
                refresh_token: &pair.refresh_token,
                device_trust_token: device,
            });
            assert_eq!(pair.json_line_with(device), reference, "{device:?}");
        }
        assert_eq!(
            &pair.json_line_with(Some("t"))[..],
            &b"{\"access_token\":\"eyJhbGciOiJIUzI1NiJ9.e30.c2ln\",\"refresh_token\":\"odd \\\"token\\\"\\n\",\"device_trust_token\":\"t\"}\n"[..]
        );
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            600,
            86_400,
            1_700_000_000,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            push_u64(&mut buf, n);
            assert_eq!(buf, serde_json::to_vec(&n).unwrap(), "{n}");
        }
    }
}
