//! Values that must never leak: a secret string that hides itself from `Debug` and `Display`,
//! and a connection URL that shows itself with the password masked.

use std::fmt;

use url::Url;

const MASK: &str = "[redacted]";
/// Inside a URL: characters that need no percent-encoding, so the mask stays readable.
const URL_MASK: &str = "***";

/// A secret (API key, password, signing key). The only way to read it is `expose`, so every
/// place that handles the plain value is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// A service URL that may carry a password (`postgres://user:pw@host/db`). `Display` and
/// `Debug` mask the password and any `password=` query parameter; `expose` gives the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(Url);

impl ServiceUrl {
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    pub fn expose(&self) -> &Url {
        &self.0
    }

    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Cannot fail: the URL already has a password, so it has a host that can hold one.
            let _ = shown.set_password(Some(URL_MASK));
        }
        let masked: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(key, value)| {
                let hide = is_secret_name(&key);
                (
                    key.into_owned(),
                    if hide {
                        URL_MASK.to_owned()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        if !masked.is_empty() {
            shown.query_pairs_mut().clear().extend_pairs(masked);
        }
        shown.to_string()
    }
}

/// Query parameters whose values are credentials (`password`, `sslpassword`, `api_key`,
/// `token`, `access_token`, `secret`…), matched loosely: better to hide a harmless value
/// than show a secret.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "key",
        "token",
        "secret",
        "auth",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The placeholders `reelbase config` prints instead of secrets. A value equal to one was
/// pasted back from that output, and must be refused rather than used as a real secret.
pub fn is_placeholder(value: &str) -> bool {
    value == MASK || value == URL_MASK
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_shows_itself() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn service_url_masks_password_in_userinfo_and_query() {
        let url = Url::parse("postgres://app:s3cret@db:5432/reel?password=other&sslmode=require")
            .unwrap();
        let shown = ServiceUrl::new(url).to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(
            shown.contains("app:") && shown.contains("sslmode=require"),
            "{shown}"
        );
    }

    #[test]
    fn service_url_without_password_is_unchanged() {
        let url = Url::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(ServiceUrl::new(url).to_string(), "redis://127.0.0.1:6379");
    }
}
