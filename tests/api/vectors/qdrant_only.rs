//! What only the Qdrant backend has: its API key, its network, and collections the health
//! check can read back.

use std::time::Duration;

use reelbase::config::{Secret, ServiceUrl};
use reelbase::health::Fault;
use reelbase::integrations::qdrant::Qdrant;
use reelbase::vectors::{self, VectorError};
use serde_json::json;

use crate::helpers::app::test_settings;
use crate::helpers::stubs::QdrantStub;
use crate::helpers::{TestDb, free_port};

fn url(text: &str) -> ServiceUrl {
    ServiceUrl::new(url::Url::parse(text).unwrap())
}

/// A Qdrant-backed store for `address` with `key`; the database is never touched.
async fn store_at(address: &str, key: Option<&str>) -> std::sync::Arc<vectors::VectorStore> {
    let db = TestDb::create().await;
    let mut settings = test_settings(&db);
    settings.qdrant_url = Some(url(address));
    settings.qdrant_api_key = key.map(Secret::new);
    let unused = sqlx::PgPool::connect_lazy(&db.socket_url()).unwrap();
    vectors::from_settings(&settings, unused)
}

#[tokio::test]
async fn qdrant_is_chosen_when_its_url_is_set_and_pgvector_otherwise() {
    let stub = QdrantStub::start(None).await;
    let db = TestDb::create().await;
    let pool = sqlx::PgPool::connect_lazy(&db.socket_url()).unwrap();

    let with_url = store_at(&stub.url(), None).await;
    let without = vectors::from_settings(&test_settings(&db), pool);

    assert_eq!(
        (with_url.backend(), without.backend()),
        ("qdrant", "pgvector")
    );
}

#[tokio::test]
async fn a_wrong_api_key_or_an_absent_qdrant_is_an_unavailable_store_of_its_kind() {
    let stub = QdrantStub::start(Some("right-key")).await;
    let wrong_key = store_at(&stub.url(), Some("wrong-key")).await;
    let nobody = store_at(&format!("http://127.0.0.1:{}", free_port()), None).await;

    let refused = wrong_key.ensure_collection("faces", 4).await;
    let absent = nobody.count("faces", None).await;

    assert!(
        matches!(refused, Err(VectorError::Unavailable(Fault::Auth))),
        "{refused:?}"
    );
    assert!(
        matches!(absent, Err(VectorError::Unavailable(Fault::Refused))),
        "{absent:?}"
    );
    assert!(stub.collections().is_empty());
}

#[tokio::test]
async fn collections_the_client_makes_pass_the_health_check_and_a_resized_one_fails_it() {
    let stub = QdrantStub::start(Some("k")).await;
    let store = store_at(&stub.url(), Some("k")).await;
    let check = Qdrant::new(
        url(&stub.url()),
        Some(Secret::new("k")),
        Duration::from_secs(2),
    );

    store.ensure_reelbase_collections().await.unwrap();
    let healthy = check.check().await;
    stub.drop_collection("reelbase_transcripts");
    stub.make_collection("reelbase_transcripts", 768, "Cosine");
    let resized = check.check().await;

    let made = stub.collections();
    assert_eq!(
        made["reelbase_faces"],
        json!({"size": 128, "distance": "Cosine"})
    );
    assert_eq!(
        made["reelbase_visual_chunks"],
        json!({"size": 384, "distance": "Cosine"})
    );
    assert_eq!(healthy, Ok(()));
    assert_eq!(resized, Err(Fault::CollectionMismatch));
}
