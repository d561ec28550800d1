//! The vector store: named collections of points (an id, a vector, a JSON payload) searched
//! by cosine similarity. Face matching and text search use it through `VectorStore`, whose
//! backends answer alike: pgvector inside our PostgreSQL by default, Qdrant over its REST
//! API when `REELBASE_QDRANT_URL` is set.
//!
//! An enum rather than a trait object: the backends are few and known, and plain `async fn`s
//! need no boxing. Checks every backend would make the same way (collection names, vectors
//! that cosine cannot score, payload shapes) are made here once, so a bad request is the same
//! error whichever backend is behind.

mod error;
mod pgvector;
mod point;
mod qdrant;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

pub use error::VectorError;
pub use pgvector::Pgvector;
pub use point::{BadPointId, Filter, Hit, Point, PointId, Search};
pub use qdrant::QdrantStore;

use crate::config::Settings;
use crate::integrations::qdrant::{COLLECTIONS, Qdrant};

/// How long one call to Qdrant may take. Longer than the health timeout: an upsert of a
/// file's worth of face vectors is real work.
const QDRANT_TIMEOUT: Duration = Duration::from_secs(30);

pub enum VectorStore {
    Pgvector(Pgvector),
    Qdrant(QdrantStore),
}

/// Qdrant when `REELBASE_QDRANT_URL` is set (with `REELBASE_QDRANT_API_KEY` as its `api-key`),
/// else pgvector over `pool`.
pub fn from_settings(settings: &Settings, pool: PgPool) -> Arc<VectorStore> {
    let store = match &settings.qdrant_url {
        Some(url) => {
            let api = Qdrant::new(url.clone(), settings.qdrant_api_key.clone(), QDRANT_TIMEOUT);
            VectorStore::Qdrant(QdrantStore::new(Arc::new(api)))
        }
        None => VectorStore::Pgvector(Pgvector::new(pool)),
    };
    Arc::new(store)
}

impl std::fmt::Debug for VectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VectorStore({})", self.backend())
    }
}

impl VectorStore {
    pub fn backend(&self) -> &'static str {
        match self {
            VectorStore::Pgvector(_) => "pgvector",
            VectorStore::Qdrant(_) => "qdrant",
        }
    }

    /// Makes the collection (cosine distance) if it does not exist. One that exists with
    /// another size is an error, never recreated.
    pub async fn ensure_collection(&self, name: &str, dimension: usize) -> Result<(), VectorError> {
        check_name(name)?;
        if !(1..=2000).contains(&dimension) {
            return Err(VectorError::Rejected(format!(
                "a collection's vectors have 1 to 2000 dimensions, not {dimension}"
            )));
        }
        match self {
            VectorStore::Pgvector(store) => store.ensure_collection(name, dimension).await,
            VectorStore::Qdrant(store) => store.ensure_collection(name, dimension).await,
        }
    }

    /// The collections reelbase stores vectors in (faces, visual chunks, transcripts).
    pub async fn ensure_reelbase_collections(&self) -> Result<(), VectorError> {
        for (name, dimension) in COLLECTIONS {
            self.ensure_collection(name, *dimension).await?;
        }
        Ok(())
    }

    /// Inserts the points, replacing any with the same id (vector and payload both).
    pub async fn upsert(&self, collection: &str, points: &[Point]) -> Result<(), VectorError> {
        check_name(collection)?;
        for point in points {
            check_vector(&point.vector)?;
            check_payload(&point.payload)?;
        }
        if points.is_empty() {
            return Ok(());
        }
        match self {
            VectorStore::Pgvector(store) => store.upsert(collection, points).await,
            VectorStore::Qdrant(store) => store.upsert(collection, points).await,
        }
    }

    /// The `limit` points most similar to the query vector, most similar first.
    pub async fn search(&self, collection: &str, search: &Search) -> Result<Vec<Hit>, VectorError> {
        check_name(collection)?;
        check_vector(&search.vector)?;
        if let Some(filter) = &search.filter {
            check_filter(filter)?;
        }
        if search.limit == 0 {
            return Ok(Vec::new());
        }
        match self {
            VectorStore::Pgvector(store) => store.search(collection, search).await,
            VectorStore::Qdrant(store) => store.search(collection, search).await,
        }
    }

    /// Deletes the points with these ids; ids not there are no error.
    pub async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<(), VectorError> {
        check_name(collection)?;
        match self {
            VectorStore::Pgvector(store) => store.delete(collection, ids).await,
            VectorStore::Qdrant(store) => store.delete(collection, ids).await,
        }
    }

    /// Deletes every point whose payload matches, e.g. all points of one `file_uuid`.
    pub async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<(), VectorError> {
        check_name(collection)?;
        check_filter(filter)?;
        match self {
            VectorStore::Pgvector(store) => store.delete_where(collection, filter).await,
            VectorStore::Qdrant(store) => store.delete_where(collection, filter).await,
        }
    }

    /// How many points the collection holds (that match `filter`, when given).
    pub async fn count(
        &self,
        collection: &str,
        filter: Option<&Filter>,
    ) -> Result<u64, VectorError> {
        check_name(collection)?;
        if let Some(filter) = filter {
            check_filter(filter)?;
        }
        match self {
            VectorStore::Pgvector(store) => store.count(collection, filter).await,
            VectorStore::Qdrant(store) => store.count(collection, filter).await,
        }
    }
}

/// Names go into Qdrant's URL paths and pgvector's table names: 1 to 40 characters of `a-z`,
/// `0-9` and `_`, starting with a letter, so neither needs escaping.
fn check_name(name: &str) -> Result<(), VectorError> {
    let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    let allowed = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if starts_with_letter && allowed && name.len() <= 40 {
        Ok(())
    } else {
        Err(VectorError::BadName(name.to_owned()))
    }
}

/// Cosine similarity needs finite numbers and a direction: NaN cannot travel in JSON, and a
/// zero vector has no angle to anything.
fn check_vector(vector: &[f32]) -> Result<(), VectorError> {
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(VectorError::Rejected(
            "a vector holds a NaN or infinite value".into(),
        ));
    }
    if !vector.is_empty() && vector.iter().all(|x| *x == 0.0) {
        return Err(VectorError::Rejected(
            "a zero vector has no cosine similarity".into(),
        ));
    }
    Ok(())
}

/// Payloads are JSON objects (Qdrant's rule), so that filters have keys to look at.
fn check_payload(payload: &Value) -> Result<(), VectorError> {
    if payload.is_object() {
        Ok(())
    } else {
        Err(VectorError::Rejected("a payload is a JSON object".into()))
    }
}

/// Filters match one key against a string, an integer or a boolean, as Qdrant's `match`.
fn check_filter(filter: &Filter) -> Result<(), VectorError> {
    let matchable = filter.value.is_string()
        || filter.value.is_i64()
        || filter.value.is_u64()
        || filter.value.is_boolean();
    if matchable && !filter.key.is_empty() {
        Ok(())
    } else {
        Err(VectorError::Rejected(
            "a filter matches a key against a string, an integer or a boolean".into(),
        ))
    }
}
