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
