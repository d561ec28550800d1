//! Queries on `users`. Names are matched case-insensitively (one account per spelling).

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

type UserRow = (i64, String, String, String, bool);

fn from_row((id, username, role, password_hash, disabled): UserRow) -> User {
    // The table's CHECK constraint admits only the two roles; anything else is treated as the
    // lesser one rather than trusted.
    let role = Role::parse(&role).unwrap_or(Role::User);
    User {
        id,
        username,
        role,
        password_hash,
        disabled,
    }
}

pub const USER_COLUMNS: &str =
    "u.id, u.username, u.role, u.password_hash, u.disabled_at IS NOT NULL";

/// Whether `name` could be a user name at all: not empty, at most 64 characters, no control
/// characters (PostgreSQL text cannot hold NUL).
pub fn plausible_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn create(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, UserError> {
    let row: Result<UserRow, sqlx::Error> = sqlx::query_as(&format!(
        "INSERT INTO users AS u (username, password_hash, role) VALUES ($1, $2, $3) \
         RETURNING {USER_COLUMNS}"
    ))
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(pool)
    .await;
    match row {
        Ok(row) => Ok(from_row(row)),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(UserError::Exists(username.to_owned()))
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn find_by_name(pool: &PgPool, username: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE lower(u.username) = lower($1)"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}

pub async fn list(pool: &PgPool) -> Result<Vec<UserSummary>, sqlx::Error> {
    let rows: Vec<(String, String, bool, OffsetDateTime)> = sqlx::query_as(
        "SELECT username, role, disabled_at IS NOT NULL, created_at FROM users ORDER BY username",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(username, role, disabled, created_at)| UserSummary {
            username,
            role: Role::parse(&role).unwrap_or(Role::User),
            disabled,
            created_at,
        })
        .collect())
}

/// Returns whether the user exists.
/// Sets a new password and ends the user's sessions (their JWTs run out within the hour).
/// Returns whether the user exists.
pub async fn set_password(pool: &PgPool, username: &str, hash: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, updated_at = now() \
         WHERE lower(username) = lower($1) RETURNING id",
    )
    .bind(username)
    .bind(hash)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id {
        end_sessions(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(id.is_some())
}

/// Disables (or re-enables) a user. Disabling also ends the user's sessions; their JWTs and
/// API keys stop working because every request checks the flag. Returns whether the user
/// exists.
pub async fn set_disabled(
    pool: &PgPool,
    username: &str,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN now() ELSE NULL END, updated_at = now() \
         WHERE lower(username) = lower($1) RETURNING id",
    )
    .bind(username)
    .bind(disabled)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(id), true) = (id, disabled) {
        end_sessions(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(id.is_some())
}

async fn end_sessions(tx: &mut sqlx::PgConnection, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(tx)
        .await?;
    Ok(())
}

pub(crate) fn user_from_row(row: UserRow) -> User {
    from_row(row)
}

pub(crate) type Row = UserRow;
