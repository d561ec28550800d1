//! Making API keys: one path for the CLI and the admin API. The key is returned once and only
//! its hash is stored.

use sqlx::PgPool;
use time::OffsetDateTime;

use super::tokens;
use crate::db::api_keys::{self, ApiKeyInfo};
use crate::db::users;

pub const API_KEY_DEFAULT_DAYS: i64 = 90;
/// Ten years: a key that must live longer should be rotated instead.
pub const API_KEY_MAX_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum KeyCreateError {
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error("expires_days must be from 1 to {API_KEY_MAX_DAYS}")]
    BadLifetime,
    #[error("the key name must be 1 to 100 characters, none of them control characters")]
    BadName,
    #[error(transparent)]
    Random(#[from] tokens::RandomError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub struct CreatedKey {
    /// The key itself: shown to its owner once, never stored.
    pub key: String,
    pub info: ApiKeyInfo,
}

pub async fn create_api_key(
    pool: &PgPool,
    username: &str,
    name: &str,
    days: i64,
) -> Result<CreatedKey, KeyCreateError> {
    if !(1..=API_KEY_MAX_DAYS).contains(&days) {
        return Err(KeyCreateError::BadLifetime);
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(KeyCreateError::BadName);
    }
    if !users::plausible_name(username) {
        return Err(KeyCreateError::UnknownUser(username.to_owned()));
    }
    let user = users::find_by_name(pool, username)
        .await?
        .ok_or_else(|| KeyCreateError::UnknownUser(username.to_owned()))?;
    let key = tokens::new_api_key()?;
    let expires_at = OffsetDateTime::now_utc() + time::Duration::days(days);
    let prefix = tokens::display_prefix(&key);
    let info = api_keys::create(
        pool,
        user.id,
        name,
        &prefix,
        &tokens::sha256_hex(&key),
        expires_at,
    )
    .await?;
    Ok(CreatedKey { key, info })
}
