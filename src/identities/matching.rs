//! Matching face vectors against the identity library. Every face vector of a known person
//! lives in the `identity_faces` table (the record) and in the vector store's `reelbase_faces`
//! collection (the index searched: pgvector, or Qdrant when configured), with its identity in
//! the payload. Stored tracks are matched again when the library changes (a new person, a
//! merge, a deletion), so a change takes effect without a restart or a re-run.

use std::collections::HashMap;

use serde_json::json;
use sqlx::PgPool;

use crate::pipeline::face::tracks::SAME_PERSON;
use crate::vectors::{Filter, Point, PointId, Search, VectorError, VectorStore};

pub const COLLECTION: &str = "reelbase_faces";
/// Hits looked at per search: a point of an identity deleted meanwhile is passed over.
const CANDIDATES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("the vector store: {0}")]
    Store(#[from] VectorError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The names of the active identities, by id.
pub async fn names(pool: &PgPool) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM identities WHERE status = 'active'")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The known person nearest to `vector` within `SAME_PERSON`, with the cosine distance.
pub async fn nearest(
    store: &VectorStore,
    known: &HashMap<String, String>,
    vector: &[f32],
) -> Result<Option<(String, f64)>, VectorError> {
    if known.is_empty() {
        return Ok(None);
    }
    let search =
        Search::new(vector.to_vec(), CANDIDATES).score_threshold((1.0 - SAME_PERSON) as f32);
    let hits = match store.search(COLLECTION, &search).await {
        Err(VectorError::MissingCollection(_)) => return Ok(None),
        other => other?,
    };
    Ok(hits.into_iter().find_map(|hit| {
        let id = hit.payload["identity_id"].as_str()?;
        known
            .contains_key(id)
            .then(|| (id.to_owned(), 1.0 - f64::from(hit.score)))
    }))
}

/// Puts face vectors (their `identity_faces` ids) into the store.
pub async fn index(
    store: &VectorStore,
    faces: &[(i64, String, Vec<f32>)],
) -> Result<(), VectorError> {
    if faces.is_empty() {
        return Ok(());
    }
    store.ensure_collection(COLLECTION, 128).await?;
    let points: Vec<Point> = faces
        .iter()
        .map(|(id, identity, vector)| Point {
            id: PointId::Num(*id as u64),
            vector: vector.clone(),
            payload: json!({"identity_id": identity}),
        })
        .collect();
    store.upsert(COLLECTION, &points).await
}

/// Removes an identity's face vectors from the store.
pub async fn forget(store: &VectorStore, identity: &str) -> Result<(), VectorError> {
    match store
        .delete_where(COLLECTION, &Filter::new("identity_id", identity))
        .await
    {
        Err(VectorError::MissingCollection(_)) => Ok(()),
        other => other,
    }
}

/// Makes the store hold exactly the database's face vectors: points whose row is gone are
/// deleted (point ids are `identity_faces` ids, all issued by its sequence, so every id that
/// ever existed is at most the sequence's last value), and when the counts then differ (a new
/// store, a switch to Qdrant, rows restored from the folder) every vector is written again.
/// Returns how many were written.
pub async fn reindex(pool: &PgPool, store: &VectorStore) -> Result<usize, MatchError> {
    store.ensure_collection(COLLECTION, 128).await?;
    let present: Vec<i64> = sqlx::query_scalar("SELECT id FROM identity_faces ORDER BY id")
        .fetch_all(pool)
        .await?;
    let issued: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM identity_faces_id_seq",
    )
    .fetch_one(pool)
    .await?;
    let present_set: std::collections::HashSet<i64> = present.iter().copied().collect();
    let gone: Vec<PointId> = (1..=issued)
        .filter(|id| !present_set.contains(id))
        .map(|id| PointId::Num(id as u64))
        .collect();
    for chunk in gone.chunks(1000) {
        store.delete(COLLECTION, chunk).await?;
    }
    if store.count(COLLECTION, None).await? == present.len() as u64 {
        return Ok(0);
    }
    let faces: Vec<(i64, String, Vec<f32>)> =
        sqlx::query_as("SELECT id, identity_id, vector FROM identity_faces ORDER BY id")
            .fetch_all(pool)
            .await?;
    for chunk in faces.chunks(500) {
        index(store, chunk).await?;
    }
    Ok(faces.len())
}

/// A stored track: id, identity, distance, vector.
type TrackMatch = (i64, Option<String>, Option<f64>, Vec<f32>);

/// Matches every track a person did not bind against the library as it is now; returns how
/// many tracks changed identity.
pub async fn rematch_tracks(pool: &PgPool, store: &VectorStore) -> Result<u64, MatchError> {
    let known = names(pool).await?;
    let tracks: Vec<TrackMatch> =
        sqlx::query_as("SELECT id, identity_id, distance, vector FROM face_tracks WHERE NOT bound")
            .fetch_all(pool)
            .await?;
    let mut changed = 0;
    for (id, current, distance, vector) in tracks {
        let found = nearest(store, &known, &vector).await?;
        let identity = found.as_ref().map(|(who, _)| who.clone());
        let same_distance = match (distance, found.as_ref()) {
            (Some(a), Some((_, b))) => (a - b).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        if identity == current && same_distance {
            continue;
        }
        changed += u64::from(identity != current);
        sqlx::query("UPDATE face_tracks SET identity_id = $1, distance = $2 WHERE id = $3")
            .bind(&identity)
            .bind(found.map(|(_, d)| d))
            .bind(id)
            .execute(pool)
            .await?;
    }
    Ok(changed)
}
