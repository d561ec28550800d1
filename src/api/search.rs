//! `GET /api/v1/search?q=…`: the files and time spans where words were said, written on
//! screen or describe what is visible (`results`, full text), and the visual chunks whose
//! descriptions are closest in meaning to the query (`visual_matches`, text vectors).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, ErrorCode};
use crate::db::search::{self, SOURCES};
use crate::pipeline::visual_chunk;
use crate::vectors::{PointId, Search, VectorError};

/// Longest query accepted, in characters.
const MAX_QUERY: usize = 500;
/// Visual chunks less similar than this to the query are not matches. all-MiniLM-L6-v2
/// scores a query naming what is in a chunk ("a cat" / "a cat and a cup") about 0.5-0.8 and
/// unrelated pairs below 0.25.
const MIN_SIMILARITY: f32 = 0.35;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    source: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            "the query string does not parse: give `q` once, and whole numbers for `limit` and \
             `offset`",
        )
    })?;
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "`q` must hold the words to look for",
        ));
    }
    if text.chars().count() > MAX_QUERY {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`q` must be at most {MAX_QUERY} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "`q` must not hold control characters",
        ));
    }
    let source = query.source.as_deref().filter(|s| !s.is_empty());
    if let Some(source) = source
        && !SOURCES.contains(&source)
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("`source` must be one of {}", SOURCES.join(", ")),
        ));
    }
    let limit = query.limit.unwrap_or(20);
    let offset = query.offset.unwrap_or(0);
    if !(1..=200).contains(&limit) || offset < 0 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`limit` must be 1 to 200 and `offset` 0 or more",
        ));
    }
    let (hits, total) = search::find(&state.db.pool, text, source, limit, offset)
        .await
        .map_err(|error| ApiError::unavailable("search needs PostgreSQL", &error))?;
    let mut body = json!({
        "query": text,
        "results": hits,
        "total": total,
        "limit": limit,
        "offset": offset,
    });
    if source.is_none_or(|s| s == "visual") {
        match visual_matches(&state, text, limit, offset).await {
            Ok(matches) => body["visual_matches"] = json!(matches),
            Err(reason) => {
                body["visual_matches"] = json!([]);
                body["warnings"] = json!([format!("search by meaning is unavailable: {reason}")]);
            }
        }
    }
    Ok(Json(body))
}

/// The visual chunks nearest in meaning to `text`, best first.
async fn visual_matches(
    state: &AppState,
    text: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<search::ChunkHit>, String> {
    let tools = state.library.tools();
    let dir = tools.scripts.model(visual_chunk::ENCODER, &tools.hashes)?;
    let encoders = tools.encoders.clone();
    let query = text.to_owned();
    let vector = tokio::task::spawn_blocking(move || encoders.get(&dir).map(|e| e.embed(&query)))
        .await
        .map_err(|e| format!("the text encoder stopped: {e}"))??;
    let wanted = (limit + offset) as usize;
    let found = match tools
        .vectors
        .search(
            visual_chunk::COLLECTION,
            &Search::new(vector, wanted).score_threshold(MIN_SIMILARITY),
        )
        .await
    {
        Ok(found) => found,
        // Nothing has been analysed yet.
        Err(VectorError::MissingCollection(_)) => Vec::new(),
        Err(e) => return Err(format!("the vector store: {e}")),
    };
    let hits: Vec<(i64, f32)> = found
        .iter()
        .skip(offset as usize)
        .filter_map(|hit| match hit.id {
            PointId::Num(id) => i64::try_from(id).ok().map(|id| (id, hit.score)),
            PointId::Uuid(_) => None,
        })
        .collect();
    search::chunks(&state.db.pool, &hits)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))
}
