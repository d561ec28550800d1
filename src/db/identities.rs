//! Queries on `identities`.

use sqlx::PgPool;

use crate::identities::IdentityRecord;

type Row = (String, String, String, String, Option<i64>);

fn record((id, name, source, status, tmdb_id): Row) -> IdentityRecord {
    IdentityRecord {
        id,
        name,
        source,
        status,
        tmdb_id,
    }
}

pub async fn ids(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM identities ORDER BY id")
        .fetch_all(pool)
        .await
}

pub async fn all(pool: &PgPool) -> Result<Vec<IdentityRecord>, sqlx::Error> {
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, name, source, status, tmdb_id FROM identities ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(record).collect())
}

/// Inserts or updates one identity; returns true when it was new.
pub async fn upsert(pool: &PgPool, identity: &IdentityRecord) -> Result<bool, sqlx::Error> {
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO identities (id, name, source, status, tmdb_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET name = $2, source = $3, status = $4, tmdb_id = $5, \
         updated_at = now() RETURNING (xmax = 0)",
    )
    .bind(&identity.id)
    .bind(&identity.name)
    .bind(&identity.source)
    .bind(&identity.status)
    .bind(identity.tmdb_id)
    .fetch_one(pool)
    .await?;
    Ok(inserted)
}

pub async fn delete(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM identities WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
