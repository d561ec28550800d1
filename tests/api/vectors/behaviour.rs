//! Behaviours every backend shares; `mod.rs` runs each against pgvector and Qdrant.

use reelbase::vectors::{Filter, PointId, Search, VectorError};
use serde_json::json;

use super::{Backend, Harness, cosine, point};

const C: &str = "test_people";

/// A store with collection `C` of 4-d vectors.
async fn with_collection(backend: Backend) -> Harness {
    let harness = Harness::start(backend).await;
    harness.store.ensure_collection(C, 4).await.unwrap();
    harness
}

fn ids(hits: &[reelbase::vectors::Hit]) -> Vec<PointId> {
    hits.iter().map(|h| h.id).collect()
}

pub async fn nearest_points_come_back_most_similar_first_with_cosine_scores(backend: Backend) {
    let h = with_collection(backend).await;
    let vectors: [[f32; 4]; 4] = [
        [1.0, 0.0, 0.0, 0.0],
        [0.9, 0.1, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [-1.0, 0.2, 0.0, 0.3],
    ];
    let points: Vec<_> = (0..4)
        .map(|i| {
            point(
                i as u64 + 1,
                &vectors[i],
                json!({"name": format!("p{}", i + 1)}),
            )
        })
        .collect();
    h.store.upsert(C, &points).await.unwrap();
    let query = [2.0, 0.5, 0.0, 0.0];

    let hits = h
        .store
        .search(C, &Search::new(query.to_vec(), 3))
        .await
        .unwrap();

    assert_eq!(ids(&hits), [2, 1, 3].map(PointId::Num));
    for hit in &hits {
        let PointId::Num(n) = hit.id else { panic!() };
        let expected = cosine(&query, &vectors[n as usize - 1]);
        assert!((hit.score - expected).abs() < 1e-5, "{hit:?} vs {expected}");
        assert_eq!(hit.payload["name"], format!("p{n}"));
    }
}

pub async fn a_payload_filter_keeps_only_matching_points(backend: Backend) {
    let h = with_collection(backend).await;
    let points = [
        point(
            1,
            &[1.0, 0.0, 0.0, 0.0],
            json!({"file_uuid": "aa", "frame": 1}),
        ),
        point(
            2,
            &[0.9, 0.1, 0.0, 0.0],
            json!({"file_uuid": "bb", "frame": 1}),
        ),
        point(
            3,
            &[0.5, 0.5, 0.0, 0.0],
            json!({"file_uuid": "aa", "frame": 2}),
        ),
    ];
    h.store.upsert(C, &points).await.unwrap();
    let query = vec![1.0, 0.0, 0.0, 0.0];

    let in_aa = Search::new(query.clone(), 10).filter(Filter::new("file_uuid", "aa"));
    let frame_two = Search::new(query.clone(), 10).filter(Filter::new("frame", 2));
    let nobody = Search::new(query, 10).filter(Filter::new("file_uuid", "zz"));

    let in_aa = h.store.search(C, &in_aa).await.unwrap();
    assert_eq!(ids(&in_aa), [1, 3].map(PointId::Num));
    assert_eq!(
        ids(&h.store.search(C, &frame_two).await.unwrap()),
        [PointId::Num(3)]
    );
    assert!(h.store.search(C, &nobody).await.unwrap().is_empty());
}

/// One point in fifty matches. At this size (3,000 points of 128 dimensions) PostgreSQL
/// searches through the HNSW index, which hands over 40 candidates at a time: a store that
/// only filtered those would come back with one or two hits, not eight.
pub async fn a_selective_filter_still_fills_the_limit(backend: Backend) {
    let h = Harness::start(backend).await;
    h.store.ensure_collection("test_faces", 128).await.unwrap();
    let vector = |i: u64| -> Vec<f32> {
        (1..=128)
            .map(|g| (i as f32 * g as f32 * 0.37 + g as f32).sin())
            .collect()
    };
    let points: Vec<_> = (0..3000u64)
        .map(|i| {
            let file = if i % 50 == 7 { "rare" } else { "common" };
            point(i, &vector(i), json!({"file_uuid": file}))
        })
        .collect();
    h.store.upsert("test_faces", &points).await.unwrap();

    let search = Search::new(vector(5), 8).filter(Filter::new("file_uuid", "rare"));
    let hits = h.store.search("test_faces", &search).await.unwrap();

    assert_eq!(hits.len(), 8, "{hits:?}");
    assert!(hits.iter().all(|hit| hit.payload["file_uuid"] == "rare"));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

pub async fn a_score_threshold_drops_less_similar_points(backend: Backend) {
    let h = with_collection(backend).await;
    let points = [
        point(1, &[1.0, 0.0, 0.0, 0.0], json!({})),
        point(2, &[1.0, 1.0, 0.0, 0.0], json!({})), // cosine 0.707 to the query
        point(3, &[0.0, 1.0, 0.0, 0.0], json!({})),
    ];
    h.store.upsert(C, &points).await.unwrap();
    let query = vec![1.0, 0.0, 0.0, 0.0];

    let strict = Search::new(query.clone(), 10).score_threshold(0.8);
    let loose = Search::new(query, 10).score_threshold(0.7);

    assert_eq!(
        ids(&h.store.search(C, &strict).await.unwrap()),
        [PointId::Num(1)]
    );
    assert_eq!(
        ids(&h.store.search(C, &loose).await.unwrap()),
        [1, 2].map(PointId::Num)
    );
}

pub async fn upserting_an_existing_id_replaces_its_vector_and_payload(backend: Backend) {
    let h = with_collection(backend).await;
    h.store
        .upsert(
            C,
            &[point(1, &[1.0, 0.0, 0.0, 0.0], json!({"name": "old"}))],
        )
        .await
        .unwrap();

    let moved = point(1, &[0.0, 0.0, 1.0, 0.0], json!({"name": "new"}));
    h.store.upsert(C, &[moved]).await.unwrap();
    let hits = h
        .store
        .search(C, &Search::new(vec![0.0, 0.0, 1.0, 0.0], 5))
        .await
        .unwrap();

    assert_eq!(h.store.count(C, None).await.unwrap(), 1);
    assert_eq!(ids(&hits), [PointId::Num(1)]);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(hits[0].payload, json!({"name": "new"}));
}

pub async fn points_are_deleted_by_id_and_by_payload_filter(backend: Backend) {
    let h = with_collection(backend).await;
    let points: Vec<_> = (1..=6u64)
        .map(|i| {
            let file = if i <= 3 { "aa" } else { "bb" };
            point(i, &[1.0, i as f32, 0.0, 0.0], json!({"file_uuid": file}))
        })
        .collect();
    h.store.upsert(C, &points).await.unwrap();

    h.store
        .delete(C, &[PointId::Num(4), PointId::Num(99)])
        .await
        .unwrap();
    let after_ids = h.store.count(C, None).await.unwrap();
    h.store
        .delete_where(C, &Filter::new("file_uuid", "aa"))
        .await
        .unwrap();
    let hits = h
        .store
        .search(C, &Search::new(vec![1.0, 5.0, 0.0, 0.0], 10))
        .await
        .unwrap();

    assert_eq!(after_ids, 5);
    assert_eq!(ids(&hits), [5, 6].map(PointId::Num));
}

pub async fn counts_cover_the_whole_collection_or_a_filter(backend: Backend) {
    let h = with_collection(backend).await;
    let empty = h.store.count(C, None).await.unwrap();
    let points: Vec<_> = (1..=5u64)
        .map(|i| point(i, &[1.0, 0.0, i as f32, 0.0], json!({"even": i % 2 == 0})))
        .collect();
    h.store.upsert(C, &points).await.unwrap();

    let all = h.store.count(C, None).await.unwrap();
    let even = h
        .store
        .count(C, Some(&Filter::new("even", true)))
        .await
        .unwrap();

    assert_eq!((empty, all, even), (0, 5, 2));
}

pub async fn a_vector_of_the_wrong_dimension_is_a_clear_error(backend: Backend) {
    let h = with_collection(backend).await;
    h.store
        .upsert(C, &[point(1, &[1.0, 0.0, 0.0, 0.0], json!({}))])
        .await
        .unwrap();

    let upsert = h
        .store
        .upsert(C, &[point(2, &[1.0, 0.0, 0.0], json!({}))])
        .await;
    let search = h.store.search(C, &Search::new(vec![1.0; 5], 3)).await;

    let wrong = |r: Result<_, VectorError>| match r {
        Err(VectorError::WrongDimension { expected, got, .. }) => (expected, got),
        other => panic!("{backend:?}: expected a dimension error, got {other:?}"),
    };
    assert_eq!(wrong(upsert.map(|_| ())), (4, 3));
    assert_eq!(wrong(search.map(|_| ())), (4, 5));
    assert_eq!(
        h.store.count(C, None).await.unwrap(),
        1,
        "nothing of the bad batch stored"
    );
}

pub async fn a_missing_collection_is_reported_as_missing(backend: Backend) {
    let h = Harness::start(backend).await;

    let search = h
        .store
        .search("nowhere", &Search::new(vec![1.0, 0.0], 3))
        .await;
    let count = h.store.count("nowhere", None).await;

    assert!(matches!(search, Err(VectorError::MissingCollection(ref n)) if n == "nowhere"));
    assert!(
        matches!(count, Err(VectorError::MissingCollection(_))),
        "{count:?}"
    );
    assert!(search.unwrap_err().is_caller_fault());
}

pub async fn ensuring_a_collection_again_keeps_its_points_and_refuses_another_size(
    backend: Backend,
) {
    let h = with_collection(backend).await;
    h.store
        .upsert(C, &[point(1, &[1.0, 0.0, 0.0, 0.0], json!({}))])
        .await
        .unwrap();

    let again = h.store.ensure_collection(C, 4).await;
    let resized = h.store.ensure_collection(C, 8).await;

    assert!(again.is_ok(), "{again:?}");
    assert!(
        matches!(resized, Err(VectorError::Mismatch { .. })),
        "{resized:?}"
    );
    assert_eq!(h.store.count(C, None).await.unwrap(), 1);
}

pub async fn uuid_and_integer_ids_come_back_as_they_went_in(backend: Backend) {
    let h = with_collection(backend).await;
    let file_uuid: PointId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let mut by_uuid = point(0, &[1.0, 0.0, 0.0, 0.0], json!({}));
    by_uuid.id = file_uuid;
    let by_number = point(u64::MAX, &[0.0, 1.0, 0.0, 0.0], json!({}));
    h.store.upsert(C, &[by_uuid, by_number]).await.unwrap();

    let hits = h
        .store
        .search(C, &Search::new(vec![1.0, 0.5, 0.0, 0.0], 2))
        .await
        .unwrap();
    h.store.delete(C, &[file_uuid]).await.unwrap();

    assert_eq!(ids(&hits), [file_uuid, PointId::Num(u64::MAX)]);
    assert_eq!(
        hits[0].id.to_string(),
        "01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(h.store.count(C, None).await.unwrap(), 1);
}

pub async fn reelbase_collections_are_made_with_their_sizes(backend: Backend) {
    let h = Harness::start(backend).await;

    h.store.ensure_reelbase_collections().await.unwrap();
    let face = point(1, &[0.1; 128], json!({"identity": "x"}));
    let text = point(1, &[0.1; 128], json!({}));

    h.store.upsert("reelbase_faces", &[face]).await.unwrap();
    let wrong = h.store.upsert("reelbase_transcripts", &[text]).await;
    assert!(
        matches!(
            wrong,
            Err(VectorError::WrongDimension {
                expected: 384,
                got: 128,
                ..
            })
        ),
        "{wrong:?}"
    );
    assert_eq!(h.store.count("reelbase_faces", None).await.unwrap(), 1);
    assert_eq!(
        h.store.count("reelbase_visual_chunks", None).await.unwrap(),
        0
    );
}

pub async fn vectors_cosine_cannot_score_are_refused_before_reaching_the_store(backend: Backend) {
    let h = with_collection(backend).await;

    let zero = h.store.upsert(C, &[point(1, &[0.0; 4], json!({}))]).await;
    let nan = h
        .store
        .search(C, &Search::new(vec![f32::NAN, 0.0, 0.0, 0.0], 1))
        .await;
    let not_object = h
        .store
        .upsert(C, &[point(2, &[1.0; 4], json!([1, 2]))])
        .await;
    let bad_name = h.store.count("Robert'); DROP TABLE", None).await;

    assert!(matches!(zero, Err(VectorError::Rejected(_))), "{zero:?}");
    assert!(matches!(nan, Err(VectorError::Rejected(_))), "{nan:?}");
    assert!(
        matches!(not_object, Err(VectorError::Rejected(_))),
        "{not_object:?}"
    );
    assert!(
        matches!(bad_name, Err(VectorError::BadName(_))),
        "{bad_name:?}"
    );
    assert_eq!(h.store.count(C, None).await.unwrap(), 0);
}
