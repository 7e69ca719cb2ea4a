//! Secrets and codes: opaque random tokens (device codes, access and refresh tokens, session
//! cookies, one-time links) of which only a SHA-256 hash is stored, and RFC 8628 user codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Letters of a user code: consonants only, without the ambiguous ones (no vowels, so no words;
/// RFC 8628 §6.1 suggests this alphabet).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code (20^8 ≈ 2^34.6 codes).
pub const USER_CODE_LEN: usize = 8;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // No randomness means no secure secrets: nothing sensible can go on.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A fresh opaque secret: 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// What the database keeps of a secret: its SHA-256, hex. The secrets are random 256-bit
/// values, so a fast hash is enough (no guessing to slow down).
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A fresh user code, normalised (8 letters, no dash). Uniform over the alphabet: bytes ≥ 240
/// are drawn again.
pub fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in random_bytes::<16>() {
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    code
}

/// A user code as typed: case-insensitive, dashes and spaces ignored. `None` unless it is 8
/// letters of the alphabet.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ok.then_some(code)
}

/// A normalised user code as shown to people: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn user_codes() {
        for _ in 0..100 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert_eq!(normalize_user_code(&c).as_deref(), Some(c.as_str()));
            let shown = display_user_code(&c);
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(
                normalize_user_code(&shown.to_lowercase()).as_deref(),
                Some(c.as_str())
            );
        }
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("BCDF GHJK").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDF-GHJA"), None); // vowel
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJKL"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ1"), None);
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
