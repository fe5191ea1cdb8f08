//! Recovery codes: ten per user, each 80 random bits written as `xxxx-xxxx-xxxx-xxxx` in
//! Crockford's base32 (lower case), stored only as keyed hashes, each usable once.

use zeroize::Zeroizing;

/// How many codes `enable` and a regeneration give.
pub(crate) const COUNT: usize = 10;
/// Symbols of a code (16 × 5 bits = 80 bits).
const SYMBOLS: usize = 16;
/// Crockford's base32 alphabet in lower case: no `i`, `l`, `o`, `u`.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh set of [`COUNT`] codes, formatted for the user.
pub(crate) fn generate() -> Vec<Zeroizing<String>> {
    (0..COUNT).map(|_| one()).collect()
}

fn one() -> Zeroizing<String> {
    let mut random = Zeroizing::new([0u8; SYMBOLS]);
    crate::token::fill_random(random.as_mut_slice());
    let mut code = Zeroizing::new(String::with_capacity(SYMBOLS + 3));
    for (i, b) in random.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        // 32 symbols divide 256: no bias.
        let symbol = ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'0');
        code.push(char::from(symbol));
    }
    code
}

/// The canonical form of a submitted code (what is hashed): hyphens and spaces dropped, lower
/// case, Crockford's look-alikes read as digits (`o` → `0`, `i` and `l` → `1`). `None` for
/// anything that cannot be a recovery code.
pub(crate) fn normalize(input: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(SYMBOLS));
    for b in input.bytes() {
        let b = match b.to_ascii_lowercase() {
            b'-' | b' ' => continue,
            b'o' => b'0',
            b'i' | b'l' => b'1',
            b => b,
        };
        if !ALPHABET.contains(&b) || out.len() == SYMBOLS {
            return None;
        }
        out.push(char::from(b));
    }
    (out.len() == SYMBOLS).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_formatted_distinct_and_normalize_to_themselves() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 19);
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(groups.iter().all(|g| g.len() == 4));
            let canonical = normalize(code).unwrap();
            assert_eq!(canonical.as_str(), code.replace('-', ""));
        }
        let mut unique: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
    }

    #[test]
    fn normalizing_forgives_case_grouping_and_look_alikes() {
        let canonical = normalize("ab12-cd34-ef56-gh78").unwrap();
        for variant in [
            "AB12-CD34-EF56-GH78",
            "ab12cd34ef56gh78",
            " ab12 cd34 ef56 gh78 ",
        ] {
            assert_eq!(normalize(variant).unwrap(), canonical, "{variant:?}");
        }
        assert_eq!(
            normalize("oiL0-0000-0000-0000").unwrap().as_str(),
            "0110000000000000"
        );
        for bad in [
            "",
            "123456",
            "ab12-cd34-ef56-gh7",
            "ab12-cd34-ef56-gh789",
            "ab12-cd34-ef56-gh7u",
            "ab12-cd34-ef56-gh7!",
        ] {
            assert!(normalize(bad).is_none(), "{bad:?}");
        }
    }
}
