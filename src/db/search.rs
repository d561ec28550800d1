//! Full-text search over what was said (`asr`) and written on screen (`ocr`): the
//! `text_spans` rows, through PostgreSQL's English text search.

use serde::Serialize;
use sqlx::{PgPool, Row};

/// Sources a search can be limited to.
pub const SOURCES: &[&str] = &["asr", "ocr"];

/// One place where the words were said or shown.
#[derive(Debug, Serialize)]
pub struct Hit {
    pub file_uuid: String,
    pub file_name: String,
    pub file_path: String,
    /// `asr` (speech) or `ocr` (on-screen text).
    pub source: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub speaker: Option<String>,
    /// 0 to 1 for both sources (tesseract's percentages are scaled).
    pub confidence: Option<f64>,
    pub rank: f32,
}

/// Best matches first (then by file and time), with the total number of matches.
pub async fn find(
    pool: &PgPool,
    query: &str,
    source: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Hit>, i64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.file_uuid, f.file_name, f.file_path, t.source, t.start_time, t.end_time, \
                t.text, t.speaker, \
                CASE WHEN t.source = 'ocr' THEN t.confidence / 100 ELSE t.confidence END \
                    AS confidence, \
                ts_rank(t.search, q) AS rank, \
                count(*) OVER () AS total \
         FROM text_spans t \
         JOIN files f ON f.file_uuid = t.file_uuid, \
              websearch_to_tsquery('english', $1) q \
         WHERE t.search @@ q AND ($2::text IS NULL OR t.source = $2) \
         ORDER BY rank DESC, t.file_uuid, t.start_time, t.id \
         LIMIT $3 OFFSET $4",
    )
    .bind(query)
    .bind(source)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => count(pool, query, source).await?,
    };
    let hits = rows
        .iter()
        .map(|row| {
            Ok(Hit {
                file_uuid: row.try_get("file_uuid")?,
                file_name: row.try_get("file_name")?,
                file_path: row.try_get("file_path")?,
                source: row.try_get("source")?,
                start: row.try_get("start_time")?,
                end: row.try_get("end_time")?,
                text: row.try_get("text")?,
                speaker: row.try_get("speaker")?,
                confidence: row.try_get("confidence")?,
                rank: row.try_get("rank")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((hits, total))
}

/// The number of matches, for a page past the last one.
async fn count(pool: &PgPool, query: &str, source: Option<&str>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM text_spans t, websearch_to_tsquery('english', $1) q \
         WHERE t.search @@ q AND ($2::text IS NULL OR t.source = $2)",
    )
    .bind(query)
    .bind(source)
    .fetch_one(pool)
    .await
}
