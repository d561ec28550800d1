//! `GET /api/v1/search?q=…`: the files and time spans where words were said or shown.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, ErrorCode};
use crate::db::search::{self, SOURCES};

/// Longest query accepted, in characters.
const MAX_QUERY: usize = 500;

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
    Ok(Json(json!({
        "query": text,
        "results": hits,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}
