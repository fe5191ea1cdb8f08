//! RFC 6238 time-based one-time passwords as authenticator apps compute them: HMAC-SHA-1, a
//! 30-second step, 6 digits, one step of clock skew either way; and the `otpauth://` URI that
//! enrols a secret in such an app.
//!
//! Written on RustCrypto's `hmac` and `sha1` (the HMAC the crate signs its tokens with), checked
//! against the test vectors of RFC 4226 (Appendix D) and RFC 6238 (Appendix B) below.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

/// The time step, in seconds (RFC 6238's default, and every authenticator app's).
pub(crate) const STEP_SECS: u64 = 30;
/// The digits of a code.
pub(crate) const DIGITS: u32 = 6;
/// Length of a secret in bytes: 160 bits, as RFC 4226 §4 recommends for HMAC-SHA-1.
pub(crate) const SECRET_LEN: usize = 20;

/// A TOTP secret in clear: zeroized on drop, never logged.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// A fresh random secret.
pub(crate) fn new_secret() -> Secret {
    let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
    crate::token::fill_random(&mut secret);
    secret
}

/// The secret as the authenticator app's manual entry takes it: RFC 4648 base32, no padding.
pub(crate) fn base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(BASE32_NOPAD.encode(secret))
}

/// The time step of Unix time `now`.
pub(crate) fn step_at(now: u64) -> u64 {
    now / STEP_SECS
}

/// RFC 4226 §5.3: HMAC-SHA-1 of the counter, dynamically truncated, modulo `10^digits`.
pub(crate) fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of every length; the error arm cannot happen.
    let Ok(keyed) = <Hmac<Sha1> as Mac>::new_from_slice(secret) else {
        return u32::MAX;
    };
    hotp_keyed(keyed, counter, digits)
}

/// [`hotp`] from an HMAC already keyed with the secret (keying costs as much as the MAC).
fn hotp_keyed(mut mac: Hmac<Sha1>, counter: u64, digits: u32) -> u32 {
    mac.update(&counter.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    let offset = usize::from(tag.get(19).copied().unwrap_or(0) & 0x0f);
    let mut word = [0u8; 4];
    if let Some(bytes) = tag.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    let binary = u32::from_be_bytes(word) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// The 6-digit code of `step` as ASCII digits, zero-padded.
fn code_digits(secret: &[u8], step: u64) -> [u8; DIGITS as usize] {
    digits_of(hotp(secret, step, DIGITS))
}

fn digits_of(mut value: u32) -> [u8; DIGITS as usize] {
    let mut out = [b'0'; DIGITS as usize];
    for slot in out.iter_mut().rev() {
        // `value % 10` is a single digit.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out
}

/// The code an authenticator app shows at Unix time `now` (for tests and the docs' examples).
pub(crate) fn code_at(secret: &[u8], now: u64) -> String {
    String::from_utf8_lossy(&code_digits(secret, step_at(now))).into_owned()
}

/// The six digits of a submitted code, or `None` when it is not six ASCII digits (spaces, as
/// apps group `123 456`, are dropped first).
pub(crate) fn parse_code(input: &str) -> Option<[u8; DIGITS as usize]> {
    let mut out = [0u8; DIGITS as usize];
    let mut n = 0;
    for b in input.bytes().filter(|b| *b != b' ') {
        if !b.is_ascii_digit() {
            return None;
        }
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == out.len()).then_some(out)
}

/// The step whose code `code` is, among the current step and one either side (RFC 6238 §5.2's
/// skew), or `None`. Every candidate is computed and compared in constant time, so the answer
/// does not show which step matched or how many digits did; should two steps share the code,
/// the latest wins.
pub(crate) fn matching_step(secret: &[u8], code: &[u8; DIGITS as usize], now: u64) -> Option<u64> {
    let current = step_at(now);
    let mut found = subtle::Choice::from(0);
    let mut step = 0u64;
    for candidate in [
        current.saturating_sub(1),
        current,
        current.saturating_add(1),
    ] {
        let expected = code_digits(secret, candidate);
        let hit = expected.ct_eq(code);
        step = u64::conditional_select(&step, &candidate, hit);
        found |= hit;
    }
    bool::from(found).then_some(step)
}

/// What the `otpauth://` label and `issuer` parameter escape: everything but unreserved
/// characters (RFC 3986 §2.3), so a space is `%20` as the Key URI format asks (never `+`).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The Key URI of Google Authenticator's format, which every authenticator app reads:
/// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`.
pub(crate) fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Zeroizing<String> {
    let issuer = utf8_percent_encode(issuer, URI_COMPONENT).to_string();
    let account = utf8_percent_encode(account, URI_COMPONENT);
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret).as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D: the HOTP values of the secret "12345678901234567890".
    #[test]
    fn rfc4226_hotp_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), value, "counter {counter}");
        }
    }

    /// RFC 6238 Appendix B, the SHA-1 column (8 digits there; the 6-digit code is its tail).
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        let vectors: [(u64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, value) in vectors {
            assert_eq!(hotp(secret, step_at(time), 8), value, "T = {time}");
            let six = format!("{:06}", value % 1_000_000);
            assert_eq!(code_at(secret, time), six, "T = {time}");
        }
    }

    #[test]
    fn codes_match_within_one_step_either_way_only() {
        let secret = b"12345678901234567890";
        let now = 1111111111; // step 37037037
        let step = step_at(now);
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = (now as i64 + offset * STEP_SECS as i64) as u64;
            let code = parse_code(&code_at(secret, at)).unwrap();
            let expected = accepted.then(|| (step as i64 + offset) as u64);
            assert_eq!(
                matching_step(secret, &code, now),
                expected,
                "offset {offset}"
            );
        }
        assert_eq!(matching_step(secret, b"000000", 59), None);
    }

    #[test]
    fn codes_are_six_digits_spaces_allowed() {
        assert_eq!(parse_code("050471"), Some(*b"050471"));
        assert_eq!(parse_code("050 471"), Some(*b"050471"));
        for bad in [
            "",
            "50471",
            "0504711",
            "05047a",
            "０５０４７１",
            "-50471",
            "05047\n",
        ] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn otpauth_uri_escapes_label_and_issuer() {
        let uri = otpauth_uri(b"12345678901234567890", "datarhei Core", "ad min@x/y");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/datarhei%20Core:ad%20min%40x%2Fy?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=datarhei%20Core&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(new_secret().len(), 20);
        assert_ne!(new_secret(), new_secret());
    }
}
