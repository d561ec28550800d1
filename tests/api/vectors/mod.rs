//! The vector store's behaviour, the same tests against both backends: pgvector in the test's
//! own database, and the real Qdrant client against the loopback Qdrant stub. `both!` turns
//! each behaviour into `vectors::pgvector::NAME` and `vectors::qdrant::NAME`.

mod behaviour;
mod qdrant_only;

use std::sync::Arc;

use reelbase::config::{Secret, ServiceUrl};
use reelbase::vectors::{self, Point, PointId, VectorStore};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::TestDb;
use crate::helpers::app::test_settings;
use crate::helpers::stubs::QdrantStub;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Pgvector,
    Qdrant,
}

/// A store of one backend. A Qdrant stub serves until the test's runtime ends, so nothing
/// else needs keeping.
pub struct Harness {
    pub store: Arc<VectorStore>,
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        let db = TestDb::create().await;
        let mut settings = test_settings(&db);
        match backend {
            Backend::Pgvector => {
                let conn = PgConnection::connect(&db.socket_url()).await.unwrap();
                reelbase::db::migrations::migrate(conn).await.unwrap();
            }
            Backend::Qdrant => {
                let stub = QdrantStub::start(Some("vectors-key")).await;
                let url = url::Url::parse(&stub.url()).unwrap();
                settings.qdrant_url = Some(ServiceUrl::new(url));
                settings.qdrant_api_key = Some(Secret::new("vectors-key"));
            }
        }
        let pool = PgPool::connect_lazy(&db.socket_url()).unwrap();
        let store = vectors::from_settings(&settings, pool);
        Self { store }
    }
}

pub fn point(id: u64, vector: &[f32], payload: Value) -> Point {
    Point {
        id: PointId::Num(id),
        vector: vector.to_vec(),
        payload,
    }
}

/// Cosine similarity computed here, as the truth the stores' scores are checked against.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Declares each listed `async fn(Backend)` in `behaviour` as a test for each backend.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod pgvector {
            $(
                #[tokio::test]
                async fn $name() {
                    super::behaviour::$name(super::Backend::Pgvector).await
                }
            )*
        }
        mod qdrant {
            $(
                #[tokio::test]
                async fn $name() {
                    super::behaviour::$name(super::Backend::Qdrant).await
                }
            )*
        }
    };
}

both!(
    nearest_points_come_back_most_similar_first_with_cosine_scores,
    a_payload_filter_keeps_only_matching_points,
    a_selective_filter_still_fills_the_limit,
    a_score_threshold_drops_less_similar_points,
    upserting_an_existing_id_replaces_its_vector_and_payload,
    points_are_deleted_by_id_and_by_payload_filter,
    counts_cover_the_whole_collection_or_a_filter,
    a_vector_of_the_wrong_dimension_is_a_clear_error,
    a_missing_collection_is_reported_as_missing,
    ensuring_a_collection_again_keeps_its_points_and_refuses_another_size,
    uuid_and_integer_ids_come_back_as_they_went_in,
    reelbase_collections_are_made_with_their_sizes,
    vectors_cosine_cannot_score_are_refused_before_reaching_the_store,
);
