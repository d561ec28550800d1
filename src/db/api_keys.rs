//! Queries on `api_keys`. Keys are found by the SHA-256 of the presented key.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::users::{self, USER_COLUMNS, User};

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub username: String,
    pub name: String,
    /// The first characters of the key, to recognise it; the key itself is never stored.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

type InfoRow = (
    i64,
    String,
    String,
    String,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

const INFO_COLUMNS: &str = "k.id, u.username, k.name, k.prefix, k.created_at, k.expires_at, \
                            k.revoked_at, k.last_used_at";

fn info(
    (id, username, name, prefix, created_at, expires_at, revoked_at, last_used_at): InfoRow,
) -> ApiKeyInfo {
    ApiKeyInfo {
        id,
        username,
        name,
        prefix,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
    }
}

pub async fn create(
    pool: &PgPool,
    user_id: i64,
    name: &str,
    prefix: &str,
    key_hash: &str,
    expires_at: OffsetDateTime,
) -> Result<ApiKeyInfo, sqlx::Error> {
    let row: InfoRow = sqlx::query_as(&format!(
        "WITH k AS (INSERT INTO api_keys (user_id, name, prefix, key_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING *) \
         SELECT {INFO_COLUMNS} FROM k JOIN users u ON u.id = k.user_id"
    ))
    .bind(user_id)
    .bind(name)
    .bind(prefix)
    .bind(key_hash)
    .bind(expires_at)
    .fetch_one(pool)
    .await?;
    Ok(info(row))
}

/// The owner of a live key (not revoked, not expired), and records the use.
pub async fn find_user(pool: &PgPool, key_hash: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<users::Row> = sqlx::query_as(&format!(
        "UPDATE api_keys k SET last_used_at = now() FROM users u \
         WHERE u.id = k.user_id AND k.key_hash = $1 AND k.revoked_at IS NULL \
         AND k.expires_at > now() RETURNING {USER_COLUMNS}"
    ))
    .bind(key_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(users::user_from_row))
}

pub async fn list(pool: &PgPool, username: Option<&str>) -> Result<Vec<ApiKeyInfo>, sqlx::Error> {
    let rows: Vec<InfoRow> = sqlx::query_as(&format!(
        "SELECT {INFO_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE $1::text IS NULL OR lower(u.username) = lower($1) ORDER BY k.id"
    ))
    .bind(username)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(info).collect())
}

/// Revokes a key; returns whether a live key with that id existed.
pub async fn revoke(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}
