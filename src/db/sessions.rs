//! Server-side sessions (behind the `session_id` cookie) and revoked JWT ids.

use sqlx::PgPool;
use time::OffsetDateTime;

use super::users::{self, USER_COLUMNS, User};

pub async fn create(
    pool: &PgPool,
    token_hash: &str,
    user_id: i64,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    // Expired sessions are pruned here, on the way: logins are rare enough for it to be cheap
    // (the expiry column is indexed), and no background job is needed.
    sqlx::query("DELETE FROM sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The user behind a live session, whether or not they are disabled (the caller decides).
pub async fn find_user(pool: &PgPool, token_hash: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<users::Row> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > now()"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(users::user_from_row))
}

pub async fn delete(pool: &PgPool, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revokes a JWT until it expires. Expired entries are pruned on the way.
pub async fn revoke_token(
    pool: &PgPool,
    jti: &str,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < now()")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn is_revoked(pool: &PgPool, jti: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)")
        .bind(jti)
        .fetch_one(pool)
        .await
}
