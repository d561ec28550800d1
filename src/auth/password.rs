//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane, OWASP's
//! recommendation). Hashing is deliberately slow, so it runs on the blocking pool, never on
//! the async workers.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password could not be hashed")]
    Hash,
    #[error("the password hashing task failed")]
    Task,
}

/// A hash of a password nobody knows, verified against when the user does not exist, so an
/// unknown name costs the same time as a wrong password and the two cannot be told apart.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let unguessable = crate::auth::tokens::random_token().unwrap_or_else(|_| "x".repeat(43));
    hash_now(&unguessable).unwrap_or_default()
});

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| PasswordError::Hash)
}

fn verify_now(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes at once at most this many: each takes 19 MiB and a core for tens of milliseconds,
/// and a burst of logins must queue rather than exhaust memory.
static SLOTS: Semaphore = Semaphore::const_new(4);

pub async fn hash(password: String) -> Result<String, PasswordError> {
    let _slot = SLOTS.acquire().await.map_err(|_| PasswordError::Task)?;
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|_| PasswordError::Task)?
}

/// Verifies `password` against `stored`, or against the dummy hash when there is no user.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let Ok(_slot) = SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let user_exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        verify_now(&password, &stored) && user_exists
    })
    .await
    .unwrap_or(false)
}

/// Computes the dummy hash ahead of the first login, so that login is not slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_verifies_and_wrong_one_does_not() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("correct horse".into(), Some(stored.clone())).await);
        assert!(!verify("battery staple".into(), Some(stored)).await);
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify("anything".into(), None).await);
        assert!(!verify("anything".into(), Some("not a hash".into())).await);
    }
}
