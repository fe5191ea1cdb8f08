//! Remembered devices: after a login with a code, the client may ask to skip the code on this
//! device for 30 days or a year. It gets an opaque random token; the store keeps only its keyed
//! hash, bound to the user, with its expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// How long a device is remembered: the login's `remember_device` (`"30d"` or `"1y"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RememberDevice {
    /// `"30d"`: 30 days.
    Days30,
    /// `"1y"`: 365 days.
    Year,
}

impl RememberDevice {
    /// `"30d"` or `"1y"`; anything else is `None` (the login then remembers nothing).
    ///
    /// ```
    /// use tower_jwt_login::factor::RememberDevice;
    /// assert_eq!(RememberDevice::from_name("30d"), Some(RememberDevice::Days30));
    /// assert_eq!(RememberDevice::from_name("1y").unwrap().seconds(), 365 * 86_400);
    /// assert_eq!(RememberDevice::from_name("7d"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "30d" => Some(RememberDevice::Days30),
            "1y" => Some(RememberDevice::Year),
            _ => None,
        }
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            RememberDevice::Days30 => 30 * 86_400,
            RememberDevice::Year => 365 * 86_400,
        }
    }
}

/// A new device token: 256 random bits, base64url without padding (43 characters).
pub(crate) fn new_token() -> Zeroizing<String> {
    let mut random = Zeroizing::new([0u8; 32]);
    crate::token::fill_random(random.as_mut_slice());
    Zeroizing::new(URL_SAFE_NO_PAD.encode(random.as_slice()))
}

/// Whether `token` can be one of ours (43 base64url characters); others are not looked up.
pub(crate) fn plausible(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_base64url_characters_and_fresh() {
        let a = new_token();
        assert!(plausible(&a));
        assert_ne!(a, new_token());
        assert!(!plausible(""));
        assert!(!plausible(&"a".repeat(44)));
        assert!(!plausible(&format!("{}=", &a[..42])));
    }
}
