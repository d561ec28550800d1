//! Queries on `results`: each processor's result document per file.

use serde_json::Value;
use sqlx::PgPool;

/// The result document of `processor` for a file, when it has run.
pub async fn document(
    pool: &PgPool,
    file_uuid: &str,
    processor: &str,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT document FROM results WHERE file_uuid = $1 AND processor = $2")
        .bind(file_uuid)
        .bind(processor)
        .fetch_optional(pool)
        .await
}

/// The processors that have a stored result for a file.
pub async fn processors_of(pool: &PgPool, file_uuid: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT processor FROM results WHERE file_uuid = $1")
        .bind(file_uuid)
        .fetch_all(pool)
        .await
}
