//! Uploads: the watcher over the media roots (slow uploads, temporary names, interrupted
//! uploads, files that arrived while reelbase was down) and SFTPGo's upload hook.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestDb;
use crate::helpers::media::{SETTLE, make_video, media_app};
use crate::helpers::process::Served;

/// Rows with this file name, as (source, size_bytes).
async fn rows_named(pool: &sqlx::PgPool, name: &str) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT source, size_bytes FROM files WHERE file_name = $1")
        .bind(name)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Waits until a row named `name` exists; panics after `limit`.
async fn wait_for_row(pool: &sqlx::PgPool, name: &str, limit: Duration) -> (String, i64) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(row) = rows_named(pool, name).await.pop() {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "{name} was not registered in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Long enough for the watcher to have registered anything complete: several settle times.
async fn several_settle_times() {
    tokio::time::sleep(SETTLE * 3).await;
}

#[tokio::test]
async fn a_slow_upload_is_registered_only_once_it_stops_growing() {
    let (app, _key, root) = media_app(true).await;
    let staged = root.parent().unwrap().join("staged.mp4");
    make_video(&staged, 3, 440, true);
    let bytes = std::fs::read(&staged).unwrap();

    // Written in four pieces, with pauses shorter than the settle time.
    let target = root.join("slow.mp4");
    let mut file = std::fs::File::create(&target).unwrap();
    for piece in bytes.chunks(bytes.len().div_ceil(4)) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        // Pauses far shorter than the settle time, so a loaded machine cannot stretch one past it.
        tokio::time::sleep(SETTLE / 5).await;
        assert!(
            rows_named(&app.pool, "slow.mp4").await.is_empty(),
            "registered mid-upload"
        );
    }
    drop(file);
    let finished = Instant::now();

    let (source, size) = wait_for_row(&app.pool, "slow.mp4", Duration::from_secs(15)).await;
    assert!(
        finished.elapsed() >= SETTLE / 2,
        "registered before it settled"
    );
    assert_eq!(source, "watcher");
    assert_eq!(size, bytes.len() as i64);
    let duration: Option<f64> =
        sqlx::query_scalar("SELECT duration FROM files WHERE file_name = 'slow.mp4'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!((duration.unwrap() - 3.0).abs() < 0.1, "{duration:?}");
}

#[tokio::test]
async fn a_temporary_name_waits_for_its_rename_and_an_interrupted_upload_never_counts() {
    let (app, _key, root) = media_app(true).await;
    let staged = root.parent().unwrap().join("staged.mp4");
    make_video(&staged, 2, 520, false);
    let bytes = std::fs::read(&staged).unwrap();

    // A complete file under an SFTP client's temporary names, and a hidden one.
    std::fs::write(root.join("done.mp4.filepart"), &bytes).unwrap();
    std::fs::write(root.join(".sftpgo-upload.x1.done.mp4"), &bytes).unwrap();
    // Interrupted uploads: half a file left under a temporary name, and half a file left
    // under its final name (its index, at the end, never arrived).
    std::fs::write(root.join("broken.mp4.part"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(root.join("cut.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    several_settle_times().await;
    assert_eq!(
        app.file_rows().await,
        0,
        "nothing complete under a final name yet"
    );

    std::fs::rename(root.join("done.mp4.filepart"), root.join("done.mp4")).unwrap();
    let (source, size) = wait_for_row(&app.pool, "done.mp4", Duration::from_secs(15)).await;
    assert_eq!((source.as_str(), size), ("watcher", bytes.len() as i64));
    several_settle_times().await;
    assert_eq!(
        app.file_rows().await,
        1,
        "only the renamed upload is registered"
    );
}

#[tokio::test]
async fn files_that_arrive_while_reelbase_is_down_are_registered_at_the_next_start() {
    let db = TestDb::create().await;
    let data = std::env::temp_dir().join(format!("reelbase-{}", db.name));
    let root = data.join("media");
    std::fs::create_dir_all(&root).unwrap();
    let url = db.socket_url();
    let roots = root.display().to_string();
    let data_text = data.display().to_string();
    let env = [
        ("REELBASE_DATABASE_URL", url.as_str()),
        ("REELBASE_DATA_DIR", data_text.as_str()),
        ("REELBASE_MEDIA_ROOTS", roots.as_str()),
        ("REELBASE_WATCH_INTERVAL_MS", "100"),
        ("REELBASE_WATCH_SETTLE_MS", "500"),
    ];
    make_video(&root.join("before.mp4"), 1, 610, true);
    std::fs::write(root.join("notes.txt"), "not a video").unwrap();
    let mut first = Served::start(&env);
    first.wait_for("listening");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    wait_for_row(&pool, "before.mp4", Duration::from_secs(15)).await;
    // A copy of known content and a file that is not media are judged once, and remembered.
    std::fs::copy(root.join("before.mp4"), root.join("copy.mp4")).unwrap();
    let judged = || async {
        sqlx::query_as::<_, (String, String, time::OffsetDateTime)>(
            "SELECT file_path, outcome, seen_at FROM ingest_seen ORDER BY file_path",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while judged().await.len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", judged().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before_restart = judged().await;
    let outcomes: Vec<&str> = before_restart.iter().map(|(_, o, _)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["registered", "known", "rejected"],
        "{before_restart:?}"
    );
    first.sigterm();
    assert!(first.wait_exit().success());

    make_video(&root.join("while-down.mp4"), 1, 620, true);
    let mut second = Served::start(&env);
    second.wait_for("listening");
    let (source, _) = wait_for_row(&pool, "while-down.mp4", Duration::from_secs(15)).await;
    assert_eq!(source, "watcher");
    // The file registered before the restart is not registered (or read) again.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    // Nothing unchanged was judged again.
    let after_restart = judged().await;
    assert_eq!(after_restart[..3], before_restart[..], "{after_restart:?}");
}

#[tokio::test]
async fn a_deleted_record_is_not_brought_back_by_the_watcher() {
    let (app, key, root) = media_app(true).await;
    make_video(&root.join("keep-out.mp4"), 1, 630, true);
    wait_for_row(&app.pool, "keep-out.mp4", Duration::from_secs(15)).await;
    let uuid: String =
        sqlx::query_scalar("SELECT file_uuid FROM files WHERE file_name = 'keep-out.mp4'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/files/{uuid}")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    several_settle_times().await;
    assert_eq!(app.file_rows().await, 0);
}

fn upload_event(action: &str, path: &Path, status: i64) -> serde_json::Value {
    // The fields SFTPGo's HTTP hook sends for a filesystem event.
    json!({
        "action": action, "username": "editor", "path": path, "target_path": "",
        "virtual_path": format!("/{}", path.file_name().unwrap().to_string_lossy()),
        "virtual_target_path": "", "ssh_cmd": "", "file_size": 1234, "elapsed": 52,
        "fs_provider": 0, "bucket": "", "endpoint": "", "status": status,
        "protocol": "SFTP", "ip": "127.0.0.1", "session_id": "abc",
        "timestamp": 1_700_000_000_000_000_000i64, "open_flags": 0, "role": ""
    })
}

#[tokio::test]
async fn sftpgo_upload_events_register_through_the_same_path() {
    let (app, key, root) = media_app(false).await;
    let clip = root.join("from-sftp.mp4");
    make_video(&clip, 1, 640, true);
    const HOOK: &str = "/api/v1/ingest/sftpgo";

    // Events that are not finished uploads are acknowledged and change nothing.
    for event in [
        upload_event("download", &clip, 1),
        upload_event("upload", &clip, 2),
        upload_event("upload", &clip, 3),
        upload_event("upload", &root.join("from-sftp.mp4.part"), 1),
        upload_event("delete", &clip, 1),
    ] {
        let (status, body) = app.post_json(HOOK, &key, &event).await;
        assert_eq!(
            (status, &body["registered"]),
            (200, &json!(false)),
            "{event}"
        );
    }
    assert_eq!(app.file_rows().await, 0);

    let (status, body) = app
        .post_json(HOOK, &key, &upload_event("upload", &clip, 1))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["file_name"], "from-sftp.mp4");
    assert_eq!(body["total_frames"], 25);
    let (source, _) = rows_named(&app.pool, "from-sftp.mp4").await.pop().unwrap();
    assert_eq!(source, "sftpgo");

    // A rename into place (an event rule's `fs_target_path`) registers the target.
    let renamed = root.join("renamed.mp4");
    make_video(&renamed, 1, 650, true);
    let event = json!({"action": "rename", "fs_path": root.join("renamed.mp4.filepart"),
        "fs_target_path": renamed, "status": 1});
    let (status, body) = app.post_json(HOOK, &key, &event).await;
    assert_eq!(status, 201, "{body}");

    // The same checks as any registration.
    let outside = upload_event("upload", Path::new("/etc/hostname"), 1);
    let (status, body) = app.post_json(HOOK, &key, &outside).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("outside_media_roots"))
    );
    let (status, _) = app
        .post_json(HOOK, &key, &json!({"action": "upload"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post_json(HOOK, "rbk_not-a-key", &upload_event("upload", &clip, 1))
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.file_rows().await, 2);
}

#[tokio::test]
async fn an_upload_paused_while_its_writer_holds_it_open_is_registered_once_complete() {
    let (app, _key, root) = media_app(true).await;
    let staged = root.parent().unwrap().join("staged-pause.mp4");
    make_video(&staged, 2, 530, true);
    let size = std::fs::metadata(&staged).unwrap().len();
    let half = size / 2;
    let target = root.join("paused.mp4");
    // Half the file, a pause four settle times long with the file still open, then the rest.
    let script = format!(
        "head -c {half} '{s}' > '{t}'; exec 3>>'{t}'; sleep 3.2; tail -c +{from} '{s}' >&3",
        s = staged.display(),
        t = target.display(),
        from = half + 1
    );
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        rows_named(&app.pool, "paused.mp4").await.is_empty(),
        "registered while open"
    );
    assert!(writer.wait().unwrap().success());
    let (_, size_stored) = wait_for_row(&app.pool, "paused.mp4", Duration::from_secs(15)).await;
    assert_eq!(size_stored, size as i64);
    several_settle_times().await;
    assert_eq!(rows_named(&app.pool, "paused.mp4").await.len(), 1);
}

#[tokio::test]
async fn a_partial_record_is_replaced_when_its_file_grows_and_replaced_content_is_marked() {
    let (app, _key, root) = media_app(true).await;
    let staged = root.parent().unwrap().join("staged-grow.mp4");
    make_video(&staged, 2, 540, true);
    let bytes = std::fs::read(&staged).unwrap();
    let target = root.join("grows.mp4");
    // The first half of a streaming-ready mp4 reads as (shorter) media.
    std::fs::write(&target, &bytes[..bytes.len() / 2]).unwrap();
    let (_, first) = wait_for_row(&app.pool, "grows.mp4", Duration::from_secs(15)).await;
    assert!(first < bytes.len() as i64);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap();
    file.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(file);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = rows_named(&app.pool, "grows.mp4").await;
        if rows.len() == 1 && rows[0].1 == bytes.len() as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Other content renamed over it: the old record says its content is gone.
    let other = root.parent().unwrap().join("other.mp4");
    make_video(&other, 1, 550, true);
    std::fs::rename(&other, &target).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let statuses: Vec<String> = sqlx::query_scalar(
            "SELECT status FROM files WHERE file_name = 'grows.mp4' ORDER BY registered_at",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if statuses == ["missing", "registered"] {
            break;
        }
        assert!(Instant::now() < deadline, "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deleted_content_is_not_registered_again_from_a_copy() {
    let (app, key, root) = media_app(true).await;
    let original = root.join("original.mp4");
    make_video(&original, 1, 560, true);
    wait_for_row(&app.pool, "original.mp4", Duration::from_secs(15)).await;
    let uuid: String = sqlx::query_scalar("SELECT file_uuid FROM files")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/files/{uuid}")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    std::fs::copy(&original, root.join("copy.mp4")).unwrap();
    several_settle_times().await;
    assert_eq!(app.file_rows().await, 0);
    // Registering it explicitly brings it back.
    let (status, body) = app.register(&key, &root.join("copy.mp4")).await;
    assert_eq!(
        (status, body["file_uuid"].as_str()),
        (201, Some(uuid.as_str()))
    );
}
