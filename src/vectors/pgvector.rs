//! The embedded backend: pgvector inside the PostgreSQL reelbase already runs.
//!
//! Each collection is a table `vectors_<name>` (made by the SQL function
//! `vector_collection_ensure`, migration 0006) with an HNSW index on cosine distance and a GIN
//! index on the payload. pgvector's `<=>` is cosine *distance*; scores are `1 - distance`, the
//! cosine similarity Qdrant reports, so callers see the same numbers from either backend.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;

use serde_json::Value;
use sqlx::{PgPool, Row};

use super::error::VectorError;
use super::point::{Filter, Hit, Point, PointId, Search};

/// HNSW's default candidate list (pgvector's `hnsw.ef_search`); raised to the limit when a
/// search asks for more, since the index never returns more than this many rows per pass.
const MIN_EF_SEARCH: usize = 40;
/// pgvector's upper bound for `hnsw.ef_search`.
const MAX_EF_SEARCH: usize = 1000;

pub struct Pgvector {
    pool: PgPool,
    /// Dimensions of the collections seen so far. A collection's dimension never changes
    /// (its column type holds it), so this cache cannot go stale.
    dimensions: RwLock<HashMap<String, usize>>,
}

impl Pgvector {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            dimensions: RwLock::default(),
        }
    }

    pub async fn ensure_collection(&self, name: &str, dimension: usize) -> Result<(), VectorError> {
        let wanted = i32::try_from(dimension).unwrap_or(i32::MAX);
        let existing: i32 = sqlx::query_scalar("SELECT vector_collection_ensure($1, $2)")
            .bind(name)
            .bind(wanted)
            .fetch_one(&self.pool)
            .await?;
        let existing = usize::try_from(existing).unwrap_or(0);
        if existing != dimension {
            return Err(VectorError::Mismatch {
                collection: name.to_owned(),
                existing: format!("size {existing}, cosine"),
                wanted: format!("size {dimension}, cosine"),
            });
        }
        self.remember(name, dimension);
        Ok(())
    }

    pub async fn upsert(&self, collection: &str, points: &[Point]) -> Result<(), VectorError> {
        let dimension = self.dimension(collection).await?;
        // Later points win over earlier ones with the same id, as in Qdrant; PostgreSQL would
        // refuse to update one row twice in a statement.
        let mut latest: HashMap<PointId, &Point> = HashMap::new();
        for point in points {
            check_dimension(collection, dimension, &point.vector)?;
            latest.insert(point.id, point);
        }
        let ids: Vec<String> = latest.keys().map(PointId::to_string).collect();
        let vectors: Vec<String> = latest.values().map(|p| literal(&p.vector)).collect();
        let payloads: Vec<String> = latest.values().map(|p| p.payload.to_string()).collect();
        let sql = format!(
            "INSERT INTO {} (id, embedding, payload) \
             SELECT i, v::vector, p::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) \
                 AS u(i, v, p) \
             ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, \
                 payload = EXCLUDED.payload",
            table(collection)
        );
        sqlx::query(&sql)
            .bind(ids)
            .bind(vectors)
            .bind(payloads)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn search(&self, collection: &str, search: &Search) -> Result<Vec<Hit>, VectorError> {
        let dimension = self.dimension(collection).await?;
        check_dimension(collection, dimension, &search.vector)?;
        let sql = search_sql(collection, search.filter.is_some());
        let ef_search = search.limit.clamp(MIN_EF_SEARCH, MAX_EF_SEARCH);

        // Settings local to this transaction: a candidate list as long as the limit, and
        // iterative scans (pgvector 0.8), so that a selective payload filter still finds
        // `limit` hits instead of filtering down the first `ef_search` candidates.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT set_config('hnsw.ef_search', $1, true), \
                    set_config('hnsw.iterative_scan', 'strict_order', true)",
        )
        .bind(ef_search.to_string())
        .execute(&mut *tx)
        .await?;
        let mut query = sqlx::query(&sql)
            .bind(literal(&search.vector))
            .bind(i64::try_from(search.limit).unwrap_or(i64::MAX))
            .bind(search.score_threshold.map(f64::from));
        if let Some(filter) = &search.filter {
            query = query.bind(containment(filter));
        }
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;

        rows.iter().map(hit).collect()
    }

    pub async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<(), VectorError> {
        self.dimension(collection).await?;
        let ids: Vec<String> = ids.iter().map(PointId::to_string).collect();
        let sql = format!(
            "DELETE FROM {} WHERE id = ANY($1::text[])",
            table(collection)
        );
        sqlx::query(&sql).bind(ids).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<(), VectorError> {
        self.dimension(collection).await?;
        let sql = format!(
            "DELETE FROM {} WHERE payload @> $1::jsonb",
            table(collection)
        );
        sqlx::query(&sql)
            .bind(containment(filter))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn count(
        &self,
        collection: &str,
        filter: Option<&Filter>,
    ) -> Result<u64, VectorError> {
        self.dimension(collection).await?;
        let mut sql = format!("SELECT count(*) FROM {}", table(collection));
        if filter.is_some() {
            sql.push_str(" WHERE payload @> $1::jsonb");
        }
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        if let Some(filter) = filter {
            query = query.bind(containment(filter));
        }
        let count = query.fetch_one(&self.pool).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The collection's dimension, or `MissingCollection`.
    async fn dimension(&self, collection: &str) -> Result<usize, VectorError> {
        if let Some(known) = self
            .dimensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(collection)
        {
            return Ok(*known);
        }
        let found: Option<i32> =
            sqlx::query_scalar("SELECT dimension FROM vector_collections WHERE name = $1")
                .bind(collection)
                .fetch_optional(&self.pool)
                .await?;
        let dimension = found
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| VectorError::MissingCollection(collection.to_owned()))?;
        self.remember(collection, dimension);
        Ok(dimension)
    }

    fn remember(&self, collection: &str, dimension: usize) {
        let mut known = self.dimensions.write().unwrap_or_else(|e| e.into_inner());
        known.insert(collection.to_owned(), dimension);
    }
}

/// The table of a collection. Only called with names `vectors::check_name` accepted
/// (lower-case letters, digits, `_`), so quoting cannot be escaped.
fn table(collection: &str) -> String {
    format!("\"vectors_{collection}\"")
}

/// Nearest first by the index's own order, then the threshold on the few rows that come back
/// (a threshold inside the index scan would stop PostgreSQL from using the index).
fn search_sql(collection: &str, filtered: bool) -> String {
    let filter = if filtered {
        "WHERE payload @> $4::jsonb"
    } else {
        ""
    };
    format!(
        "SELECT id, payload, score FROM ( \
             SELECT id, payload, 1 - (embedding <=> $1::vector) AS score FROM {} {filter} \
             ORDER BY embedding <=> $1::vector LIMIT $2 \
         ) nearest \
         WHERE $3::float8 IS NULL OR score >= $3::float8 \
         ORDER BY score DESC",
        table(collection)
    )
}

fn hit(row: &sqlx::postgres::PgRow) -> Result<Hit, VectorError> {
    let id: String = row.try_get("id")?;
    let score: f64 = row.try_get("score")?;
    let payload: Value = row.try_get("payload")?;
    // Ids are written only by `upsert`, from a `PointId`, so they parse back unless someone
    // edited the table by hand.
    let id = id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Hit {
        id,
        score: score as f32,
        payload,
    })
}

fn check_dimension(collection: &str, expected: usize, vector: &[f32]) -> Result<(), VectorError> {
    if vector.len() == expected {
        return Ok(());
    }
    Err(VectorError::WrongDimension {
        collection: collection.to_owned(),
        expected,
        got: vector.len(),
    })
}

/// pgvector's text form, `[1,0.5,-2]`. Rust prints the shortest text that reads back as the
/// same `f32`, so nothing is lost on the way.
fn literal(vector: &[f32]) -> String {
    let mut text = String::with_capacity(vector.len() * 10 + 2);
    text.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{x}");
    }
    text.push(']');
    text
}

/// `{"key": value}`, for `payload @> …`: true when the payload has that key with that value.
fn containment(filter: &Filter) -> String {
    let mut object = serde_json::Map::new();
    object.insert(filter.key.clone(), filter.value.clone());
    Value::Object(object).to_string()
}
