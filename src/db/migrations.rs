//! Schema migrations: SQL files from `migrations/`, embedded in the binary by `build.rs`,
//! applied in file-name order and recorded with their SHA-256 in `schema_migrations`.
//!
//! Applying takes a PostgreSQL advisory lock on a connection of its own, so two instances
//! starting at once apply each migration exactly once: the second waits, then finds nothing
//! left to do. The lock is session-scoped, so a crashed migrator releases it by disconnecting.
//! An applied migration whose file has changed since is reported and blocks further
//! migration; it is never silently accepted.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// "reelbase" in ASCII: the advisory lock key for migrations.
const LOCK_KEY: i64 = 0x7265_656c_6261_7365;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    filename   TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database error while migrating: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "applied migrations were changed after they were applied: {}; restore the original \
         files or repair the database by hand",
        .0.join(", ")
    )]
    Altered(Vec<String>),
    #[error("migration {filename} failed: {source}")]
    Failed {
        filename: &'static str,
        source: sqlx::Error,
    },
}

/// A migration shipped in this binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub filename: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        hex(&Sha256::digest(self.sql.as_bytes()))
    }
}

pub fn shipped() -> impl Iterator<Item = Migration> {
    embedded::MIGRATIONS
        .iter()
        .map(|(filename, sql)| Migration { filename, sql })
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MigrationName {
    pub filename: String,
}

/// The `schema` block of detailed health.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SchemaStatus {
    pub table_exists: bool,
    /// Applied migrations, in the order they were applied.
    pub applied: Vec<MigrationName>,
    /// Shipped in this binary but not applied.
    pub required: Vec<MigrationName>,
    /// Applied, but the shipped file differs from what was applied.
    pub altered: Vec<MigrationName>,
    /// Applied, but not shipped in this binary (the database is newer than the binary).
    pub unknown: Vec<MigrationName>,
    pub ok: bool,
}

struct AppliedRow {
    filename: String,
    checksum: String,
}

async fn applied_rows(conn: &mut PgConnection) -> Result<Vec<AppliedRow>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT filename, checksum FROM schema_migrations ORDER BY applied_at, filename",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(filename, checksum)| AppliedRow { filename, checksum })
        .collect())
}

/// Reads the migration state without changing anything.
pub async fn status(pool: &PgPool) -> Result<SchemaStatus, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    let rows = if table_exists {
        applied_rows(&mut conn).await?
    } else {
        Vec::new()
    };
    Ok(compare(table_exists, &rows))
}

fn compare(table_exists: bool, rows: &[AppliedRow]) -> SchemaStatus {
    let name = |filename: &str| MigrationName {
        filename: filename.to_owned(),
    };
    let shipped: Vec<Migration> = shipped().collect();
    let applied: Vec<MigrationName> = rows.iter().map(|r| name(&r.filename)).collect();
    let required = shipped
        .iter()
        .filter(|m| !rows.iter().any(|r| r.filename == m.filename))
        .map(|m| name(m.filename))
        .collect::<Vec<_>>();
    let altered = rows
        .iter()
        .filter(|r| {
            shipped
                .iter()
                .any(|m| m.filename == r.filename && m.checksum() != r.checksum)
        })
        .map(|r| name(&r.filename))
        .collect::<Vec<_>>();
    let unknown = rows
        .iter()
        .filter(|r| !shipped.iter().any(|m| m.filename == r.filename))
        .map(|r| name(&r.filename))
        .collect::<Vec<_>>();
    let ok = table_exists && required.is_empty() && altered.is_empty() && unknown.is_empty();
    SchemaStatus {
        table_exists,
        applied,
        required,
        altered,
        unknown,
        ok,
    }
}

/// Applies every shipped migration not yet applied, each in its own transaction. Returns the
/// names it applied. `connect` opens a connection outside the pool: the advisory lock lives
/// as long as that connection, never in a pooled one that could outlive this call.
pub async fn migrate(mut conn: PgConnection) -> Result<Vec<&'static str>, MigrateError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut conn)
        .await?;
    let result = apply_pending(&mut conn).await;
    // Closing the connection releases the lock even if the unlock below fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn apply_pending(conn: &mut PgConnection) -> Result<Vec<&'static str>, MigrateError> {
    // Checked first: `IF NOT EXISTS` alone makes PostgreSQL send a notice on every start.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
    }
    let rows = applied_rows(conn).await?;
    let state = compare(true, &rows);
    if !state.altered.is_empty() {
        return Err(MigrateError::Altered(
            state.altered.into_iter().map(|m| m.filename).collect(),
        ));
    }
    let mut done = Vec::new();
    for migration in shipped().filter(|m| !rows.iter().any(|r| r.filename == m.filename)) {
        let failed = |source| MigrateError::Failed {
            filename: migration.filename,
            source,
        };
        let mut tx = conn.begin().await?;
        // raw_sql: a migration file may hold several statements.
        tx.execute(sqlx::raw_sql(migration.sql))
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (filename, checksum) VALUES ($1, $2)")
            .bind(migration.filename)
            .bind(migration.checksum())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(migration = migration.filename, "migration applied");
        done.push(migration.filename);
    }
    Ok(done)
}

pub use crate::digest::hex;
