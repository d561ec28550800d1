//! `/metrics` for Prometheus, and `reelbase health` for people and scripts.

use std::process::Output;

use reelbase::db::users::Role;

use crate::helpers::process::reelbase;
use crate::helpers::{free_port, spawn_app_with, spawn_app_with_key};

#[tokio::test]
async fn metrics_need_a_caller_and_count_requests_by_route_template() {
    let (app, key) = spawn_app_with_key(Role::Admin, |_| {}).await;
    app.get("/health").await;
    app.get("/health").await;
    let revoke = app
        .client
        .delete(app.url("/api/v1/auth/api-keys/4242"))
        .header("x-api-key", &key);
    revoke.send().await.unwrap();

    let anonymous = app.get("/metrics").await;
    let scraped = app
        .client
        .get(app.url("/metrics"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status(), 401);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = scraped.text().await.unwrap();
    let git = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!("reelbase_build_info{{version=\"{git}\"")),
        "{text}"
    );
    assert!(
        text.contains("reelbase_service_up{service=\"postgres\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("reelbase_service_up{service=\"redis\"} 1"),
        "{text}"
    );
    assert!(text.contains("reelbase_schema_ok 1"), "{text}");
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("reelbase_health_age_seconds "))
        .and_then(|v| v.parse().ok())
        .expect("the snapshot age is exported");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(
        text.contains(
            r#"reelbase_http_requests_total{route="/health",method="GET",status="200"} 2"#
        ),
        "{text}"
    );
    let template = r#"route="/api/v1/auth/api-keys/{id}",method="DELETE",status="404"} 1"#;
    assert!(
        text.contains(template),
        "the template, never the raw path:\n{text}"
    );
    assert!(!text.contains("4242"));
}

async fn health_command(args: Vec<String>, api_key: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = reelbase();
        command.arg("health").args(args);
        if let Some(key) = api_key {
            command.env("REELBASE_API_KEY", key);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn health_command_prints_a_line_per_component_and_exits_0_when_ok() {
    let (app, key) = spawn_app_with_key(Role::Admin, |_| {}).await;

    let output = health_command(vec!["--url".into(), app.url("")], Some(key.clone())).await;
    let json = health_command(
        vec!["--url".into(), app.url(""), "--json".into()],
        Some(key),
    )
    .await;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains(": OK"), "{text}");
    for component in [
        "postgres",
        "redis",
        "schema",
        "resources",
        "pipeline",
        "identities",
        "tmdb",
    ] {
        assert!(
            text.lines().any(|l| l.contains(component)),
            "{component} missing:\n{text}"
        );
    }
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["services"]["postgres"]["status"], "ok");
}

#[tokio::test]
async fn health_command_marks_what_is_wrong_and_exits_1_when_degraded() {
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app_with(|s| {
        s.redis_url = reelbase::config::ServiceUrl::new(url::Url::parse(&closed).unwrap())
    })
    .await;
    app.create_user("ops", "correct horse battery", Role::User)
        .await;
    let key = app.api_key("ops").await;

    let output = health_command(vec!["--url".into(), app.url("")], Some(key)).await;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let redis = text.lines().find(|l| l.contains("redis")).unwrap();
    assert!(
        redis.trim_start().starts_with("FAIL") && redis.contains("refused"),
        "{redis}"
    );
}

#[tokio::test]
async fn health_command_exits_2_when_it_cannot_ask() {
    let (app, _) = spawn_app_with_key(Role::Admin, |_| {}).await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());

    let unreachable = health_command(vec!["--url".into(), nowhere], None).await;
    let refused = health_command(vec!["--url".into(), app.url("")], Some("rbk_wrong".into())).await;

    assert_eq!(unreachable.status.code(), Some(2));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}
