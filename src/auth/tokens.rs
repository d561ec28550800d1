//! Random secrets and their stored form. Session tokens and API keys carry 256 random bits,
//! so a plain SHA-256 is a safe way to store them (a slow hash guards guessable passwords,
//! not random keys) and lets a presented key be found by its hash in one indexed lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::db::migrations::hex;

/// Every API key starts with this, so secret scanners (and people) can recognise a leaked one.
pub const API_KEY_PREFIX: &str = "rbk_";

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A URL-safe random token of 256 bits.
pub fn random_token() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A new API key: `rbk_` and 256 random bits.
pub fn new_api_key() -> Result<String, RandomError> {
    Ok(format!("{API_KEY_PREFIX}{}", random_token()?))
}

/// The part of a key shown in listings: enough to tell keys apart, useless to an attacker.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(API_KEY_PREFIX.len() + 6).collect()
}

/// The stored form of a token or key.
pub fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_prefixed_unique_and_url_safe() {
        let (a, b) = (new_api_key().unwrap(), new_api_key().unwrap());
        assert!(a.starts_with("rbk_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        );
        assert_eq!(display_prefix(&a).len(), 10);
    }

    #[test]
    fn stored_form_is_sha256_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
