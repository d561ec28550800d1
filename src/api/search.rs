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
/// A word of the query names one of the detector's labels when it is that label (or its
/// plural), or is at least this close to it (cosine) while no other label is within
/// `OTHER_LABELS`: "kitten" names cat (0.79; dog 0.52), "someone" person (0.85; dog 0.46), but
/// "animal" (dog 0.82, cat 0.67) and "vehicle" (car 0.87, truck 0.77) name none. Only chunks
/// with every label the query names match: otherwise "a dog" would find "a cat" (0.52), the
/// nearest thing there is.
const LABEL_SIMILARITY: f32 = 0.7;
const OTHER_LABELS: f32 = 0.6;
/// A query that names no label ("pet", "animal", "astronaut") matches chunks at least this
/// similar to it ("a camera" is 0.43 from "a person", "pet" 0.61 from "a cat").
const MIN_SIMILARITY: f32 = 0.45;
/// Plurals (and kinds) that name a label without ending in its name: the descriptions say
/// "2 people".
const IRREGULAR: &[(&str, &str)] = &[
    ("people", "person"),
    ("men", "person"),
    ("women", "person"),
    ("children", "person"),
    ("mice", "mouse"),
    ("knives", "knife"),
];
/// Words that carry no object ("a cat and a dog" has two that do).
const FILLER: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "with", "in", "on", "at", "to", "by", "for", "from", "is",
    "are", "some", "any", "this", "that", "these", "those", "there", "it", "its",
];
/// For a query that names a label: chunks looked at (best first) before keeping those with it.
const LABEL_CANDIDATES: usize = 200;
const LABEL_FLOOR: f32 = 0.2;
/// `visual_matches` pages through at most this many nearest chunks.
const MAX_VISUAL_DEPTH: i64 = 1000;

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
            Ok((labels, matches)) => {
                body["visual_matches"] = json!(matches);
                body["visual_labels"] = json!(labels);
            }
            Err(reason) => {
                body["visual_matches"] = json!([]);
                body["warnings"] = json!([format!("search by meaning is unavailable: {reason}")]);
            }
        }
    }
    Ok(Json(body))
}

/// The visual chunks nearest in meaning to `text`, best first, and the detector's labels the
/// query names.
async fn visual_matches(
    state: &AppState,
    text: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<&'static str>, Vec<search::ChunkHit>), String> {
    // `-word` leaves out, as in the full-text search.
    let (wanted_text, unwanted_text): (Vec<&str>, Vec<&str>) =
        text.split_whitespace().partition(|t| !t.starts_with('-'));
    let wanted_text = wanted_text.join(" ");
    let words = content_words(&wanted_text);
    if words.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (excluded, _) = labels_by_name(&content_words(&unwanted_text.join(" ")));
    let tools = state.library.tools();
    let dir = tools.scripts.model(visual_chunk::ENCODER, &tools.hashes)?;
    let (mut named, unnamed) = labels_by_name(&words);
    let mut texts = vec![wanted_text.clone()];
    texts.extend(unnamed.iter().cloned());
    let vectors = tools.encoders.embed(&dir, texts).await?;
    let label_vectors = tools.encoders.phrase_vectors(&dir, &yolo::LABELS).await?;
    for word in &vectors[1..] {
        if let Some(label) = named_label(word, &label_vectors)
            && !named.contains(&label)
        {
            named.push(label);
        }
    }
    let vector = vectors[0].clone();
    // Pages reach only so deep into the nearest chunks (and an offset near i64::MAX must not
    // overflow).
    let wanted = limit.saturating_add(offset).min(MAX_VISUAL_DEPTH) as usize;
    let search = if named.is_empty() {
        Search::new(vector, wanted).score_threshold(MIN_SIMILARITY)
    } else {
        Search::new(vector, LABEL_CANDIDATES.max(wanted)).score_threshold(LABEL_FLOOR)
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
    let shows = |hit: &&crate::vectors::Hit| {
        let has = |label: &&str| {
            hit.payload["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|v| v == label))
        };
        named.iter().all(has) && !excluded.iter().any(has)
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
    Ok((named, chunks))
}

/// The query's words, lower-cased, without filler words.
fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !FILLER.contains(&w.as_str()))
        .take(16)
        .collect()
}

/// Labels the words spell out ("teddy bear", "cats"), and the words that spell none.
fn labels_by_name(words: &[String]) -> (Vec<&'static str>, Vec<String>) {
    let label_of = |phrase: &str| {
        if let Some((_, label)) = IRREGULAR.iter().find(|(plural, _)| *plural == phrase) {
            return Some(*label);
        }
        let singular = [phrase.strip_suffix("es"), phrase.strip_suffix('s')];
        yolo::LABELS
            .iter()
            .copied()
            .find(|label| *label == phrase || singular.iter().flatten().any(|s| s == label))
    };
    let (mut named, mut rest) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < words.len() {
        let pair = words.get(i + 1).map(|next| format!("{} {next}", words[i]));
        if let Some(label) = pair.as_deref().and_then(label_of) {
            named.push(label);
            i += 2;
            continue;
        }
        match label_of(&words[i]) {
            Some(label) => named.push(label),
            None => rest.push(words[i].clone()),
        }
        i += 1;
    }
    named.dedup();
    (named, rest)
}

/// The label a word names by meaning: the nearest of `labels` when near enough, with no
/// other label close.
fn named_label(word: &[f32], labels: &[Vec<f32>]) -> Option<&'static str> {
    let mut scored: Vec<(f32, usize)> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.iter().zip(word).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    match scored.as_slice() {
        [(best, i), (second, _), ..] if *best >= LABEL_SIMILARITY && *second < OTHER_LABELS => {
            yolo::LABELS.get(*i).copied()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_from_the_words_that_spell_them() {
        let words = content_words("A cat and two Teddy Bears, near the dogs and people!");
        assert_eq!(
            words,
            ["cat", "two", "teddy", "bears", "near", "dogs", "people"]
        );
        let (named, rest) = labels_by_name(&words);
        assert_eq!(named, ["cat", "teddy bear", "dog", "person"]);
        assert_eq!(rest, ["two", "near"]);
        assert!(content_words("a the of").is_empty());
    }
}
