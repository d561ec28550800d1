//! `GET /health/detailed`: every field measured from the thing it names.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reelbase::db::users::Role;
use reelbase::pipeline::manifest;
use serde_json::Value;

use crate::helpers::{RedisServer, SilentListener, TestApp, spawn_app_with_key};

async fn detailed(app: &TestApp, key: &str) -> Value {
    let response = app
        .client
        .get(app.url("/health/detailed"))
        .header("x-api-key", key);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The report's pipeline block, once measured: a report made while the first check is still
/// running says `null` ("not measured in time"), which a loaded machine can take a moment past.
async fn pipeline(app: &TestApp, key: &str) -> Value {
    for _ in 0..50 {
        let block = detailed(app, key).await["pipeline"].clone();
        if !block.is_null() {
            return block;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the pipeline block stayed null");
}

/// A scripts or models folder in a temporary place, with files and a manifest.
fn folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("reelbase-{name}-{}-{}", std::process::id(), rand()));
    std::fs::create_dir_all(&dir).unwrap();
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    manifest::write(&dir, "MANIFEST.sha256", &|p: &Path| {
        !p.ends_with("MANIFEST.sha256")
    })
    .unwrap();
    dir
}

fn rand() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

#[tokio::test]
async fn every_field_is_present_with_its_type() {
    let scripts = folder(
        "scripts",
        &[
            ("asr.py", "print(1)"),
            ("lib/util.py", "x = 1"),
            ("_shared.py", "y = 2"),
        ],
    );
    let models = folder("models", &[("tiny.bin", "weights")]);
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.scripts_dir = scripts.clone();
        s.models_dir = models.clone();
    })
    .await;

    pipeline(&app, &key).await;
    let report = detailed(&app, &key).await;

    assert_eq!(report["status"], "ok");
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    for service in ["postgres", "redis"] {
        assert_eq!(report["services"][service]["status"], "ok", "{service}");
        assert!(
            report["services"][service]["latency_ms"].is_u64(),
            "{service}"
        );
    }
    assert!(
        report["services"].get("qdrant").is_none(),
        "Qdrant is not configured"
    );
    let resources = &report["resources"];
    assert!(resources["memory_available_mb"].as_u64().unwrap() > 0);
    let used = resources["memory_used_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&used));
    assert!(resources["disk"]["available_mb"].is_u64());
    let pipeline = &report["pipeline"];
    assert_eq!(pipeline["scripts_ready"], true);
    assert_eq!(
        pipeline["scripts_count"], 2,
        "both .py files, nested ones too, but not the `_` helper"
    );
    assert_eq!(pipeline["models_ready"], true);
    assert_eq!(pipeline["models_count"], 1);
    assert_eq!(pipeline["scripts_integrity"]["matched"], 3);
    assert_eq!(pipeline["scripts_integrity"]["total"], 3);
    assert_eq!(pipeline["scripts_integrity"]["ok"], true);
    assert!(pipeline["ffmpeg"].is_boolean());
    let processors = pipeline["processors"].as_object().unwrap();
    let mut names: Vec<&str> = processors.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "asr",
            "asrx",
            "cut",
            "face",
            "ocr",
            "pose",
            "scene",
            "visual_chunk",
            "yolo"
        ]
    );
    assert!(processors.values().all(Value::is_boolean));
    let identities = &report["identities"];
    assert_eq!(
        identities["directory_exists"], false,
        "no identity folder in this test"
    );
    for field in ["files_count", "db_count"] {
        assert!(identities[field].is_u64(), "identities.{field}");
    }
    for field in ["index_ok", "synced"] {
        assert!(identities[field].is_boolean(), "identities.{field}");
    }
    let tmdb = &report["integrations"]["tmdb"];
    assert_eq!(tmdb["api_key_configured"], false);
    assert_eq!(tmdb["enabled"], false);
    assert!(tmdb["api_reachable"].is_null());
    let schema = &report["schema"];
    assert_eq!(schema["table_exists"], true);
    assert_eq!(schema["applied"][0]["filename"], "0001_users_and_auth.sql");
    assert_eq!(schema["required"], serde_json::json!([]));
    assert_eq!(schema["ok"], true);
}

#[tokio::test]
async fn cpu_use_is_sampled_over_an_interval() {
    let (app, key) = spawn_app_with_key(Role::User, |_| {}).await;

    tokio::time::sleep(Duration::from_millis(1300)).await; // one sample interval and a bit

    let cpu = detailed(&app, &key).await["resources"]["cpu_used_percent"].clone();
    let cpu = cpu
        .as_f64()
        .unwrap_or_else(|| panic!("a number after one interval: {cpu}"));
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
}

#[tokio::test]
async fn tampered_missing_and_extra_scripts_are_reported() {
    let scripts = folder("scripts", &[("a.py", "1"), ("b.py", "2"), ("c.py", "3")]);
    std::fs::write(scripts.join("a.py"), "tampered").unwrap();
    std::fs::remove_file(scripts.join("b.py")).unwrap();
    std::fs::write(scripts.join("extra.py"), "not in the manifest").unwrap();
    let (app, key) = spawn_app_with_key(Role::User, |s| s.scripts_dir = scripts.clone()).await;

    let integrity = pipeline(&app, &key).await["scripts_integrity"].clone();

    assert_eq!(integrity["matched"], 1);
    assert_eq!(integrity["total"], 3);
    assert_eq!(integrity["ok"], false);
    assert_eq!(integrity["mismatched"], serde_json::json!(["a.py"]));
    assert_eq!(integrity["missing"], serde_json::json!(["b.py"]));
    assert_eq!(integrity["unlisted"], serde_json::json!(["extra.py"]));
}

#[tokio::test]
async fn a_missing_model_and_a_missing_folder_are_reported() {
    let models = folder("models", &[("face.dat", "w1"), ("pose.task", "w2")]);
    std::fs::remove_file(models.join("pose.task")).unwrap();
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.models_dir = models.clone();
        s.scripts_dir = PathBuf::from("/nonexistent/reelbase/scripts");
    })
    .await;

    let pipeline = pipeline(&app, &key).await;

    assert_eq!(pipeline["models_count"], 1);
    assert_eq!(
        pipeline["models_integrity"]["missing"],
        serde_json::json!(["pose.task"])
    );
    assert_eq!(pipeline["models_integrity"]["ok"], false);
    assert_eq!(pipeline["scripts_ready"], false);
    assert_eq!(pipeline["scripts_count"], 0);
}

#[tokio::test]
async fn ffmpeg_is_false_when_it_cannot_run() {
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.ffmpeg = PathBuf::from("/nonexistent/bin/ffmpeg")
    })
    .await;

    let pipeline = pipeline(&app, &key).await;

    assert_eq!(pipeline["ffmpeg"], false);
    assert!(
        pipeline["processors"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == false)
    );
}

#[tokio::test]
async fn ffmpeg_is_true_when_both_tools_run() {
    let installed = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "tools/setup installs ffmpeg"
    );
    let (app, key) = spawn_app_with_key(Role::User, |_| {}).await;

    assert_eq!(pipeline(&app, &key).await["ffmpeg"], true);
}

#[tokio::test]
async fn a_burst_of_callers_shares_one_round_of_checks() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.redis_url = reelbase::config::ServiceUrl::new(url::Url::parse(&url).unwrap());
        s.health_interval = Duration::from_secs(3600); // keep the monitor out of the count
    })
    .await;
    let before = ping_count(&redis).await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let request = app
            .client
            .get(app.url("/health/detailed"))
            .header("x-api-key", &key);
        calls.spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() });
    }
    let reports = calls.join_all().await;

    let pings = ping_count(&redis).await - before;
    assert_eq!(reports.len(), 100);
    assert!(
        reports
            .iter()
            .all(|r| r["services"]["redis"]["status"] == "ok")
    );
    assert!(
        (1..=2).contains(&pings),
        "100 callers caused {pings} PINGs; expected one round"
    );
}

async fn ping_count(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_silent_dependency_keeps_the_whole_report_within_the_timeout() {
    let silent = SilentListener::start().await;
    let url = format!("redis://127.0.0.1:{}", silent.port);
    let (app, key) = spawn_app_with_key(Role::User, |s| {
        s.redis_url = reelbase::config::ServiceUrl::new(url::Url::parse(&url).unwrap());
        s.health_timeout = Duration::from_millis(800);
    })
    .await;

    let started = Instant::now();
    let report = detailed(&app, &key).await;
    let took = started.elapsed();

    assert_eq!(report["status"], "degraded");
    assert_eq!(report["services"]["redis"]["status"], "error");
    assert_eq!(report["services"]["redis"]["error"], "timeout");
    assert_eq!(report["services"]["postgres"]["status"], "ok");
    // The report promises the timeout plus a little; tools/bench-detailed measures the real
    // margin, this test only that nothing waits on the silent host beyond it.
    assert!(took < Duration::from_millis(800 + 700), "took {took:?}");
}

#[tokio::test]
async fn a_fifo_listed_in_the_manifest_is_missing_and_never_hangs_the_report() {
    let scripts = folder("scripts", &[("a.py", "1"), ("b.py", "2")]);
    std::fs::remove_file(scripts.join("b.py")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(scripts.join("b.py"))
        .status()
        .unwrap();
    assert!(made.success());
    let (app, key) = spawn_app_with_key(Role::User, |s| s.scripts_dir = scripts.clone()).await;

    let started = Instant::now();
    let integrity = pipeline(&app, &key).await["scripts_integrity"].clone();

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(integrity["matched"], 1);
    assert_eq!(integrity["missing"], serde_json::json!(["b.py"]));
}

#[tokio::test]
async fn a_malformed_manifest_is_reported_not_taken_for_an_empty_one() {
    let scripts = folder("scripts", &[("a.py", "1")]);
    let manifest = scripts.join("MANIFEST.sha256");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("garbage line\n");
    std::fs::write(&manifest, text).unwrap();
    let (app, key) = spawn_app_with_key(Role::User, |s| s.scripts_dir = scripts.clone()).await;

    let integrity = pipeline(&app, &key).await["scripts_integrity"].clone();

    assert_eq!(integrity["ok"], false);
    assert!(
        integrity["error"].as_str().unwrap().contains("line 2"),
        "{integrity}"
    );
}
