//! `/health`, `/health/live` and `/health/ready` when everything is well.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_has_exactly_the_five_public_fields_with_their_types() {
    let app = spawn_app().await;

    let (status, body) = app.get_json("/health").await;

    assert_eq!(status, 200);
    let fields = body.as_object().expect("an object");
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "build_git_hash",
            "build_timestamp",
            "status",
            "uptime_ms",
            "version"
        ]
    );
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_ms"].is_u64(), "{body}");
    assert!(
        body["build_git_hash"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn build_facts_come_from_the_build() {
    let app = spawn_app().await;

    let (_, body) = app.get_json("/health").await;

    let stamp = body["build_timestamp"].as_str().expect("a string");
    let parsed = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{stamp:?} is not RFC 3339: {e}"));
    assert_eq!(
        parsed.offset(),
        time::UtcOffset::UTC,
        "built time is in UTC"
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let expected = if std::env::var("REELBASE_GIT_HASH").is_ok_and(|h| !h.is_empty()) {
        std::env::var("REELBASE_GIT_HASH").unwrap()
    } else if head.status.success() {
        String::from_utf8(head.stdout).unwrap().trim().to_owned()
    } else {
        "not-a-git-build".to_owned()
    };
    assert_eq!(body["build_git_hash"], Value::String(expected));
}

#[tokio::test]
async fn uptime_grows_between_calls() {
    let app = spawn_app().await;

    let (_, first) = app.get_json("/health").await;
    app.fresh_snapshot().await; // at least one health interval passes
    let (_, second) = app.get_json("/health").await;

    let (a, b) = (
        first["uptime_ms"].as_u64().unwrap(),
        second["uptime_ms"].as_u64().unwrap(),
    );
    assert!(
        b >= a + 200,
        "uptime went from {a} to {b} across a 200 ms interval"
    );
}

#[tokio::test]
async fn health_is_never_cached_and_answers_head() {
    let app = spawn_app().await;

    let get = app.get("/health").await;
    let head = app.client.head(app.url("/health")).send().await.unwrap();

    assert_eq!(get.headers()["cache-control"], "no-store");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["cache-control"], "no-store");
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");
}

#[tokio::test]
async fn live_and_ready_are_ok_when_all_is_well() {
    let app = spawn_app().await;

    for path in ["/health/live", "/health/ready"] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, serde_json::json!({"status": "ok"}), "{path}");
    }
}
