//! Qdrant in `services` and TMDb in `integrations`, against loopback stubs shaped like their
//! published APIs.

use std::time::Duration;

use reelbase::config::{Secret, ServiceUrl, Settings};
use reelbase::db::users::Role;
use serde_json::Value;

use crate::helpers::stubs::{Behaviour, QdrantStub, TmdbStub};
use crate::helpers::{SilentListener, TestApp, free_port, spawn_app_with_key};

fn url(text: &str) -> ServiceUrl {
    ServiceUrl::new(url::Url::parse(text).unwrap())
}

async fn detailed(app: &TestApp, key: &str) -> Value {
    // Past the one-second sharing window, so each call measures anew.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let request = app
        .client
        .get(app.url("/health/detailed"))
        .header("x-api-key", key);
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn qdrant_collections_are_created_at_start_and_reported_ok() {
    let qdrant = QdrantStub::start(Some("qdrant-key-77")).await;
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.qdrant_url = Some(url(&qdrant.url()));
        s.qdrant_api_key = Some(Secret::new("qdrant-key-77"));
    })
    .await;

    let report = detailed(&app, &key).await;

    let collections = qdrant.collections();
    assert_eq!(collections["reelbase_faces"]["size"], 128);
    assert_eq!(collections["reelbase_visual_chunks"]["size"], 384);
    assert_eq!(collections["reelbase_transcripts"]["distance"], "Cosine");
    assert_eq!(report["services"]["qdrant"]["status"], "ok", "{report}");
    assert!(report["services"]["qdrant"]["latency_ms"].is_u64());
    assert_eq!(report["status"], "ok");
    assert!(!report.to_string().contains("qdrant-key-77"));
}

#[tokio::test]
async fn a_deleted_collection_degrades_qdrant_with_its_reason() {
    let qdrant = QdrantStub::start(None).await;
    let (app, key) =
        spawn_app_with_key(Role::User, |s| s.qdrant_url = Some(url(&qdrant.url()))).await;

    qdrant.drop_collection("reelbase_faces");
    let report = detailed(&app, &key).await;
    let snapshot = app.fresh_snapshot().await;

    assert_eq!(report["services"]["qdrant"]["status"], "degraded");
    assert_eq!(report["services"]["qdrant"]["error"], "missing_collection");
    assert_eq!(report["status"], "degraded");
    assert_eq!(
        snapshot.service("qdrant").unwrap().error.unwrap().as_str(),
        "missing_collection"
    );
    assert_eq!(app.get_json("/health").await.1["status"], "degraded");
}

#[tokio::test]
async fn a_collection_of_another_size_degrades_qdrant_and_is_left_alone() {
    let qdrant = QdrantStub::start(None).await;
    qdrant.make_collection("reelbase_faces", 512, "Cosine");
    let (app, key) =
        spawn_app_with_key(Role::User, |s| s.qdrant_url = Some(url(&qdrant.url()))).await;

    let report = detailed(&app, &key).await;

    assert_eq!(report["services"]["qdrant"]["status"], "degraded");
    assert_eq!(report["services"]["qdrant"]["error"], "collection_mismatch");
    assert_eq!(
        qdrant.collections()["reelbase_faces"]["size"],
        512,
        "never recreated"
    );
    assert_eq!(qdrant.collections()["reelbase_transcripts"]["size"], 384);
}

#[tokio::test]
async fn qdrant_faults_are_classified_and_it_recovers() {
    let qdrant = QdrantStub::start(None).await;
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.qdrant_url = Some(url(&qdrant.url()));
        s.health_slow = Duration::from_millis(300);
        s.health_timeout = Duration::from_millis(1500);
    })
    .await;

    qdrant.set(Behaviour::Slow(Duration::from_millis(150)));
    let slow = detailed(&app, &key).await["services"]["qdrant"].clone();
    qdrant.set(Behaviour::ServerError);
    let failing = detailed(&app, &key).await["services"]["qdrant"].clone();
    qdrant.set(Behaviour::Normal);
    let recovered = detailed(&app, &key).await["services"]["qdrant"].clone();

    // Readiness plus three collections: four slow answers, over the 300 ms threshold.
    assert_eq!(
        (slow["status"].as_str(), slow["error"].as_str()),
        (Some("degraded"), Some("slow"))
    );
    assert_eq!(
        (failing["status"].as_str(), failing["error"].as_str()),
        (Some("error"), Some("protocol"))
    );
    assert_eq!(recovered["status"], "ok");
}

#[tokio::test]
async fn qdrant_refusing_silent_or_wrong_key_is_an_error_of_its_kind() {
    let silent = SilentListener::start().await;
    let keyed = QdrantStub::start(Some("right-key")).await;
    let cases = [
        (format!("http://127.0.0.1:{}", free_port()), None, "refused"),
        (format!("http://127.0.0.1:{}", silent.port), None, "timeout"),
        (keyed.url(), Some("wrong-key"), "auth"),
    ];
    for (address, api_key, expected) in cases {
        let (app, key) = spawn_app_with_key(Role::User, |s| {
            s.qdrant_url = Some(url(&address));
            s.qdrant_api_key = api_key.map(Secret::new);
            s.health_timeout = Duration::from_millis(600);
            s.health_slow = Duration::from_millis(600);
        })
        .await;

        let qdrant = detailed(&app, &key).await["services"]["qdrant"].clone();

        assert_eq!(qdrant["status"], "error", "{expected}: {qdrant}");
        assert_eq!(qdrant["error"], expected);
    }
}

async fn tmdb_report(customize: impl FnOnce(&mut Settings)) -> (TestApp, String, Value) {
    let (app, key) = spawn_app_with_key(Role::User, customize).await;
    let report = detailed(&app, &key).await["integrations"]["tmdb"].clone();
    (app, key, report)
}

#[tokio::test]
async fn tmdb_is_not_probed_unless_enabled_with_a_key() {
    let stub = TmdbStub::start("tmdb-key-1").await;
    let base = url(&stub.url());

    let (_, _, disabled) = tmdb_report(|s| {
        s.tmdb_base_url = base.clone();
        s.tmdb_api_key = Some(Secret::new("tmdb-key-1"));
    })
    .await;
    let (_, _, no_key) = tmdb_report(|s| {
        s.tmdb_base_url = base.clone();
        s.tmdb_enabled = true;
    })
    .await;

    let expect = |configured: bool, enabled: bool| serde_json::json!({"api_key_configured": configured, "enabled": enabled, "api_reachable": null});
    assert_eq!(disabled, expect(true, false));
    assert_eq!(no_key, expect(false, true));
    assert_eq!(stub.requests(), 0);
}

#[tokio::test]
async fn tmdb_reachable_is_probed_once_and_cached() {
    let stub = TmdbStub::start("tmdb-key-2").await;
    let (app, key, first) = tmdb_report(|s| {
        s.tmdb_base_url = url(&stub.url());
        s.tmdb_api_key = Some(Secret::new("tmdb-key-2"));
        s.tmdb_enabled = true;
    })
    .await;

    let second = detailed(&app, &key).await["integrations"]["tmdb"].clone();

    assert_eq!(first["api_reachable"], true);
    assert!(first.get("error").is_none());
    assert_eq!(second, first);
    assert_eq!(
        stub.requests(),
        1,
        "the second report used the cached probe"
    );
    assert!(!first.to_string().contains("tmdb-key-2"));
}

#[tokio::test]
async fn tmdb_down_wrong_key_and_rate_limited_are_reported_without_changing_status() {
    let down = url(&format!("http://127.0.0.1:{}", free_port()));
    let stub = TmdbStub::start("right-key").await;
    let limited = TmdbStub::start("right-key").await;
    limited.set(Behaviour::RateLimited { retry_after_s: 120 });

    let cases = [
        (down, "right-key", false, "refused"),
        (url(&stub.url()), "wrong-key", true, "auth"),
        (url(&limited.url()), "right-key", true, "rate_limited"),
    ];
    for (base, tmdb_key, reachable, error) in cases {
        let (app, key, report) = tmdb_report(|s| {
            s.tmdb_base_url = base.clone();
            s.tmdb_api_key = Some(Secret::new(tmdb_key));
            s.tmdb_enabled = true;
        })
        .await;
        assert_eq!(report["api_reachable"], reachable, "{error}: {report}");
        assert_eq!(report["error"], error);
        assert_eq!(
            detailed(&app, &key).await["status"],
            "ok",
            "TMDb never changes status"
        );
    }
    assert_eq!(limited.requests(), 1, "no second probe before Retry-After");
}
