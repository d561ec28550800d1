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
use crate::pipeline::{visual_chunk, yolo};
use crate::vectors::{PointId, Search, VectorError};

/// Longest query accepted, in characters.
const MAX_QUERY: usize = 500;
/// When the query is this close to one of the detector's labels (cosine), and closer by
/// `LABEL_MARGIN` than to any other, it names that label ("kitten": cat 0.79, dog 0.52;
/// "motorbike rider": motorcycle 0.70, bicycle 0.53; "man": person 0.41, car 0.29), and only
/// chunks with that label match: otherwise "dog" would find "a cat" (0.52), the nearest thing
/// there is.
const LABEL_SIMILARITY: f32 = 0.4;
const LABEL_MARGIN: f32 = 0.1;
/// A query that names no label ("a man filming", "astronaut") matches chunks at least this
/// similar to it.
const MIN_SIMILARITY: f32 = 0.4;
/// For a query that names a label: chunks looked at (best first) before keeping those with it.
const LABEL_CANDIDATES: usize = 200;
const LABEL_FLOOR: f32 = 0.2;

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
            Ok((label, matches)) => {
                body["visual_matches"] = json!(matches);
                body["visual_label"] = json!(label);
            }
            Err(reason) => {
                body["visual_matches"] = json!([]);
                body["warnings"] = json!([format!("search by meaning is unavailable: {reason}")]);
            }
        }
    }
    Ok(Json(body))
}

/// The visual chunks nearest in meaning to `text`, best first, and the detector's label the
/// query names, if it names one.
async fn visual_matches(
    state: &AppState,
    text: &str,
    limit: i64,
    offset: i64,
) -> Result<(Option<&'static str>, Vec<search::ChunkHit>), String> {
    let tools = state.library.tools();
    let dir = tools.scripts.model(visual_chunk::ENCODER, &tools.hashes)?;
    let vector = tools
        .encoders
        .embed(&dir, vec![text.to_owned()])
        .await?
        .pop()
        .ok_or("the text encoder gave no vector")?;
    let labels = tools.encoders.phrase_vectors(&dir, &yolo::LABELS).await?;
    let label = named_label(&vector, &labels);
    let wanted = (limit + offset) as usize;
    let search = match label {
        Some(_) => Search::new(vector, LABEL_CANDIDATES.max(wanted)).score_threshold(LABEL_FLOOR),
        None => Search::new(vector, wanted).score_threshold(MIN_SIMILARITY),
    };
    let found = match tools
        .vectors
        .search(visual_chunk::COLLECTION, &search)
        .await
    {
        Ok(found) => found,
        // Nothing has been analysed yet.
        Err(VectorError::MissingCollection(_)) => Vec::new(),
        Err(e) => return Err(format!("the vector store: {e}")),
    };
    let shows = |hit: &&crate::vectors::Hit| match label {
        Some(label) => hit.payload["labels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v == label)),
        None => true,
    };
    let hits: Vec<(i64, f32)> = found
        .iter()
        .filter(shows)
        .take(wanted)
        .skip(offset as usize)
        .filter_map(|hit| match hit.id {
            PointId::Num(id) => i64::try_from(id).ok().map(|id| (id, hit.score)),
            PointId::Uuid(_) => None,
        })
        .collect();
    let chunks = search::chunks(&state.db.pool, &hits)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    Ok((label, chunks))
}

/// The label `query` names: the nearest of `labels` when near enough and nearer than the
/// rest by a margin.
fn named_label(query: &[f32], labels: &[Vec<f32>]) -> Option<&'static str> {
    let mut scored: Vec<(f32, usize)> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.iter().zip(query).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    match scored.as_slice() {
        [(best, i), (second, _), ..]
            if *best >= LABEL_SIMILARITY && best - second >= LABEL_MARGIN =>
        {
            yolo::LABELS.get(*i).copied()
        }
        _ => None,
    }
}
