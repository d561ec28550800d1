//! Full-text search over what was said (`asr`), written on screen (`ocr`) and seen
//! (`visual`: the descriptions of visual chunks): the `text_spans` rows, through
//! PostgreSQL's English text search. And the visual chunks that vector search found.

use serde::Serialize;
use sqlx::{PgPool, Row};

/// Sources a search can be limited to.
pub const SOURCES: &[&str] = &["asr", "ocr", "visual"];

/// One place where the words were said or shown.
#[derive(Debug, Serialize)]
pub struct Hit {
    pub file_uuid: String,
    pub file_name: String,
    pub file_path: String,
    /// `asr` (speech), `ocr` (on-screen text) or `visual` (what is visible).
    pub source: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub speaker: Option<String>,
    /// 0 to 1 for every source (tesseract's percentages are scaled; for `visual`, the
    /// detector's mean score).
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

/// A visual chunk found by the meaning of its description.
#[derive(Debug, Serialize)]
pub struct ChunkHit {
    pub file_uuid: String,
    pub file_name: String,
    pub file_path: String,
    pub chunk: i32,
    pub start: f64,
    pub end: f64,
    pub description: String,
    pub counts: serde_json::Value,
    pub frame_time: f64,
    /// The saved representative frame, under the output folder.
    pub frame: Option<String>,
    /// Cosine similarity of the query and the description, -1 to 1.
    pub similarity: f32,
}

/// The chunks behind vector store hits (`(row id, similarity)`), in the hits' order; ids
/// whose rows are gone (a deleted file, a re-run) are left out.
pub async fn chunks(pool: &PgPool, hits: &[(i64, f32)]) -> Result<Vec<ChunkHit>, sqlx::Error> {
    let ids: Vec<i64> = hits.iter().map(|(id, _)| *id).collect();
    let rows = sqlx::query(
        "SELECT c.id, c.file_uuid, f.file_name, f.file_path, c.chunk, c.start_time, \
                c.end_time, c.description, c.counts, c.frame_time, c.frame \
         FROM visual_chunks c JOIN files f ON f.file_uuid = c.file_uuid \
         WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for (id, similarity) in hits {
        let Some(row) = rows
            .iter()
            .find(|r| r.try_get::<i64, _>("id").ok() == Some(*id))
        else {
            continue;
        };
        found.push(ChunkHit {
            file_uuid: row.try_get("file_uuid")?,
            file_name: row.try_get("file_name")?,
            file_path: row.try_get("file_path")?,
            chunk: row.try_get("chunk")?,
            start: row.try_get("start_time")?,
            end: row.try_get("end_time")?,
            description: row.try_get("description")?,
            counts: row.try_get("counts")?,
            frame_time: row.try_get("frame_time")?,
            frame: row.try_get("frame")?,
            similarity: *similarity,
        });
    }
    Ok(found)
}
