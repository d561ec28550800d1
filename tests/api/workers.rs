//! Standalone `reelbase worker` processes sharing one queue: a worker killed mid-step leaves
//! its step to another once its heartbeat goes stale.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::media::{make_video, pipeline_app};
use crate::helpers::process::reelbase;

fn start_worker(db_url: &str, data_dir: &std::path::Path, ffmpeg: &std::path::Path) -> Child {
    reelbase()
        .arg("worker")
        .env("REELBASE_DATABASE_URL", db_url)
        .env("REELBASE_DATA_DIR", data_dir)
        .env("REELBASE_FFMPEG", ffmpeg)
        .env("REELBASE_WORKER_POLL_MS", "200")
        .env("REELBASE_WORKER_STALE_MS", "1500")
        .env("REELBASE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker starts")
}

/// The step's (status, worker, attempts).
async fn step(pool: &sqlx::PgPool, job: i64) -> (String, Option<String>, i32) {
    sqlx::query_as(
        "SELECT status, worker, attempts FROM job_steps WHERE job_id = $1 AND processor = 'cut'",
    )
    .bind(job)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_step_is_finished_by_another() {
    // The server only registers and queues; the two workers are separate processes.
    let (app, key, root) = pipeline_app(|s| s.workers = 0).await;
    let path = root.join("clip.mp4");
    make_video(&path, 2, 480, true);
    let (_, registered) = app.register(&key, &path).await;
    let uuid = registered["file_uuid"].as_str().unwrap();
    let (status, queued) = app
        .post_json(
            &format!("/api/v1/files/{uuid}/process"),
            &key,
            &json!({"processors": ["cut"]}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let job = queued["job_id"].as_i64().unwrap();

    // An ffmpeg that hangs when asked to decode: the first worker stalls inside its step.
    let dir = root.parent().unwrap().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let slow = dir.join("ffmpeg-hangs");
    let hung = dir.join("hung.pid");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *rawvideo*) echo $$ > '{}'; exec sleep 600;; esac\nexec ffmpeg \"$@\"\n",
        hung.display()
    );
    std::fs::write(&slow, script).unwrap();
    Command::new("chmod").arg("+x").arg(&slow).status().unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let db_url = format!("postgres:///{db}");
    let data_dir = root.parent().unwrap();

    let mut first = start_worker(&db_url, data_dir, &slow);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_id = loop {
        let (status, worker, _) = step(&app.pool, job).await;
        if status == "running" {
            break worker.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the first worker never took the step"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    first.kill().unwrap();
    first.wait().unwrap();

    let mut second = start_worker(&db_url, data_dir, std::path::Path::new("ffmpeg"));
    let progress = app.wait_for_job(&key, uuid, Duration::from_secs(60)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    // The killed worker's decoder is an orphan now: end it.
    if let Ok(pid) = std::fs::read_to_string(&hung) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }

    assert_eq!(progress["job_status"], "completed", "{progress}");
    let (status, worker, attempts) = step(&app.pool, job).await;
    assert_eq!(status, "completed");
    assert_eq!(attempts, 2, "taken once by each worker");
    assert_ne!(worker.as_deref(), Some(first_id.as_str()));
    let (_, cut) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/cut"), &key)
        .await;
    assert_eq!(cut["result"]["frames"], 50);
}
