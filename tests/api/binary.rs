//! The `reelbase` binary as an operator runs it: configuration, logs and signals.

use crate::helpers::TestDb;
use crate::helpers::process::{Served, reelbase};

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let db = TestDb::create().await;
    let mut served = Served::start(&[("REELBASE_DATABASE_URL", &db.socket_url())]);
    let addr = served.wait_for("listening")["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    served.sigterm();
    let status = served.wait_exit();

    assert!(status.success(), "exit status {status:?}");
    served.wait_for("stopped");
}

#[tokio::test]
async fn passwords_in_settings_never_reach_the_logs() {
    let mut served = Served::start(&[
        (
            "REELBASE_DATABASE_URL",
            "postgres://reel:pg-pass-9731@127.0.0.1:1/reel",
        ),
        ("REELBASE_REDIS_URL", "redis://:redis-pass-4412@127.0.0.1:1"),
        ("REELBASE_TMDB_API_KEY", "tmdb-key-5520"),
    ]);
    served.wait_for("listening");
    served.sigterm();
    served.wait_exit();

    let output = served.all_output();
    assert!(
        output.contains("service is unavailable"),
        "the failures are logged:\n{output}"
    );
    for secret in ["pg-pass-9731", "redis-pass-4412", "tmdb-key-5520"] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
}

#[test]
fn config_command_shows_effective_settings_with_secrets_redacted() {
    let dir = std::env::temp_dir().join(format!("reelbase-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("reelbase.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:4000\"\nhealth_interval_ms = 7000\n",
    )
    .unwrap();

    let output = reelbase()
        .args(["--config", file.to_str().unwrap(), "config"])
        .env("REELBASE_HEALTH_INTERVAL_MS", "9000")
        .env(
            "REELBASE_DATABASE_URL",
            "postgres://reel:pg-pass-9731@db.internal/reel",
        )
        .env("REELBASE_SFTPGO_PASSWORD", "sftp-pass-1234")
        .output()
        .unwrap();

    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(
        text.contains("bind = \"127.0.0.1:4000\""),
        "file beats default:\n{text}"
    );
    assert!(
        text.contains("health_interval_ms = 9000"),
        "env beats file:\n{text}"
    );
    assert!(
        text.contains("postgres://reel:***@db.internal/reel"),
        "{text}"
    );
    assert!(text.contains("sftpgo_password = \"[redacted]\""), "{text}");
    assert!(
        !text.contains("pg-pass-9731") && !text.contains("sftp-pass-1234"),
        "{text}"
    );
}

#[test]
fn invalid_setting_is_refused_at_start_naming_the_variable() {
    let output = reelbase()
        .arg("serve")
        .env("REELBASE_HEALTH_TIMEOUT_MS", "soon")
        .output()
        .unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(78),
        "EX_CONFIG; stderr: {stderr}"
    );
    assert!(stderr.contains("REELBASE_HEALTH_TIMEOUT_MS"), "{stderr}");
    assert!(
        stderr.contains("milliseconds"),
        "says what it expected: {stderr}"
    );
}

#[test]
fn invalid_secret_is_refused_without_echoing_it() {
    let output = reelbase()
        .arg("config")
        .env("REELBASE_REDIS_URL", "ftp://:hunter2-secret@cache")
        .output()
        .unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(stderr.contains("REELBASE_REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");
}

#[tokio::test]
async fn ffmpeg_missing_from_path_reads_false_in_the_report() {
    let db = TestDb::create().await;
    let mut served = Served::start(&[
        ("REELBASE_DATABASE_URL", &db.socket_url()),
        ("PATH", "/nonexistent-reelbase-path"),
    ]);
    let addr = served.wait_for("listening")["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = sqlx::PgPool::connect(&db.socket_url()).await.unwrap();
    let hash = reelbase::auth::password::hash("long-enough-password".into())
        .await
        .unwrap();
    let role = reelbase::db::users::Role::User;
    reelbase::db::users::create(&pool, "ops", &hash, role)
        .await
        .unwrap();
    let key = reelbase::auth::create_api_key(&pool, "ops", "test", 1)
        .await
        .unwrap()
        .key;

    let report: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/health/detailed"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(report["pipeline"]["ffmpeg"], false, "{report}");
    served.sigterm();
    served.wait_exit();
}
