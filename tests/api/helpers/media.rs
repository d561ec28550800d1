//! Media made for a test with ffmpeg's `lavfi` sources, and an app whose media root is a
//! folder of the test's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reelbase::db::users::Role;

use super::{TestApp, spawn_app_with_key};

/// A video of `seconds` at 160x120, 25 fps, with a tone of `hz` (so each `hz` gives different
/// content). `faststart` puts the index first, as streaming-ready files have it.
pub fn make_video(path: &Path, seconds: u32, hz: u32, faststart: bool) {
    let video = format!("testsrc=duration={seconds}:size=160x120:rate=25");
    let audio = format!("sine=frequency={hz}:duration={seconds}");
    let mut command = Command::new("ffmpeg");
    command
        .args([
            "-v", "error", "-y", "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio,
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"]);
    if faststart {
        command.args(["-movflags", "+faststart"]);
    }
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
}

/// A still PNG picture: something ffprobe reads that is not a video.
pub fn make_picture(path: &Path) {
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48",
        ])
        .args(["-frames:v", "1"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

/// An app with a user API key whose media root is a fresh folder of its own (returned). The
/// watcher runs only when `watch` is set, then with a short interval and settle time.
pub async fn media_app(watch: bool) -> (TestApp, String, PathBuf) {
    let mut root = PathBuf::new();
    let (app, key) = spawn_app_with_key(Role::User, |settings| {
        root = settings.data_dir.join("media");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        settings.media_roots = vec![root.clone()];
        settings.watch_enabled = watch;
        settings.watch_interval = Duration::from_millis(100);
        settings.watch_settle = SETTLE;
    })
    .await;
    (app, key, root)
}

/// The watcher's settle time in these tests.
pub const SETTLE: Duration = Duration::from_millis(800);

impl TestApp {
    /// POSTs JSON with an API key; returns the status and the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .expect("request reaches the app");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Registers one path; returns the status and the answer.
    pub async fn register(&self, key: &str, path: &Path) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "file_path": path });
        self.post_json("/api/v1/files/register", key, &body).await
    }

    /// GET with an API key.
    pub async fn get_with_key(&self, path: &str, key: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request reaches the app");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// How many file records the database holds.
    pub async fn file_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM files")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}
