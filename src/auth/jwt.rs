//! JSON Web Tokens, HS256 only. Verification accepts exactly one header algorithm, so
//! `alg: none` and algorithm-confusion tokens are refused before any signature check, and it
//! compares signatures in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::Secret;

/// A token issued later than this far in the future is refused (clock skew allowance).
const MAX_SKEW_S: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    pub role: String,
    /// Unique token id; logout revokes it.
    pub jti: String,
    /// Expiry and issue time, Unix seconds.
    pub exp: i64,
    pub iat: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token has expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// The HMAC key. Never printed: `Secret` redacts itself.
#[derive(Clone)]
pub struct JwtKey(Secret);

impl JwtKey {
    pub fn new(secret: Secret) -> Self {
        Self(secret)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // Cannot fail: HMAC takes keys of any length.
        Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes()).expect("HMAC accepts any key")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        };
        let encode = |value: &[u8]| URL_SAFE_NO_PAD.encode(value);
        let head = encode(&serde_json::to_vec(&header).expect("header serialises"));
        let body = encode(&serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{head}.{body}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = encode(&mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks structure, algorithm, signature and expiry, in that order.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&decode(head)?).map_err(|_| JwtError::Malformed)?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm);
        }
        let mut mac = self.mac();
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&decode(signature)?)
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(body)?).map_err(|_| JwtError::Malformed)?;
        if claims.exp <= now || claims.iat > now + MAX_SKEW_S {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> JwtKey {
        JwtKey::new(Secret::new(text))
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "ana".into(),
            role: "admin".into(),
            jti: "j1".into(),
            exp,
            iat: 1_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_with_the_same_key_only() {
        let token = key("k1").sign(&claims(2_000));
        assert_eq!(key("k1").verify(&token, 1_500), Ok(claims(2_000)));
        assert_eq!(key("k2").verify(&token, 1_500), Err(JwtError::Signature));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token = key("k").sign(&claims(2_000));
        assert_eq!(key("k").verify(&token, 2_000), Err(JwtError::Expired));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let signed = key("k").sign(&claims(2_000));
        let body = signed.split('.').nth(1).unwrap();
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let head = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            for token in [format!("{head}.{body}."), format!("{head}.{body}.AAAA")] {
                assert_eq!(
                    key("k").verify(&token, 1_500),
                    Err(JwtError::Algorithm),
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        let token = key("k").sign(&claims(2_000));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(2_000);
        forged.role = "superuser".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            key("k").verify(&parts.join("."), 1_500),
            Err(JwtError::Signature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30"] {
            assert_eq!(
                key("k").verify(token, 0),
                Err(JwtError::Malformed),
                "{token:?}"
            );
        }
    }
}
