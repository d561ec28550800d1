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
pub const SETTLE: Duration = Duration::from_millis(1500);

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

    pub async fn patch_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self.client.patch(self.url(path));
        answer(request.header("x-api-key", key).json(body)).await
    }

    /// DELETE with a key; the status.
    pub async fn delete_with_key(&self, path: &str, key: &str) -> u16 {
        let request = self.client.delete(self.url(path)).header("x-api-key", key);
        let response = request.send().await.expect("request reaches the app");
        response.status().as_u16()
    }

    /// Registers `path` (expecting a new record) and returns its file_uuid.
    pub async fn register_new(&self, key: &str, path: &Path) -> String {
        let (status, body) = self.register(key, path).await;
        assert_eq!(status, 201, "{body}");
        body["file_uuid"].as_str().unwrap().to_owned()
    }

    /// Queues `processors` for a file (expecting 202) and waits for the job to end; returns
    /// the file's progress.
    pub async fn process_and_wait(
        &self,
        key: &str,
        file_uuid: &str,
        processors: &[&str],
        limit: Duration,
    ) -> serde_json::Value {
        let path = format!("/api/v1/files/{file_uuid}/process");
        let body = serde_json::json!({ "processors": processors });
        let (status, queued) = self.post_json(&path, key, &body).await;
        assert_eq!(status, 202, "{queued}");
        self.wait_for_job(key, file_uuid, limit).await
    }

    /// PUT; a body-less answer reads as `null`.
    pub async fn put_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self.client.put(self.url(path));
        answer(request.header("x-api-key", key).json(body)).await
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

/// A font every machine with the set-up's packages has.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// A boundary of the generated video: the first frame of the new shot, and its kind.
pub type TruthBoundary = (u64, &'static str);

/// An 11 s, 25 fps, 320x180 video with known shot boundaries: hard cuts at frames 50 and 100,
/// a fade through black at 150, a one-second dissolve over frames 225-249 (middle 237), and
/// the word `REELBASE` on screen from 6 s to 10 s.
pub fn make_truth_video(path: &Path) -> Vec<TruthBoundary> {
    let sources = [
        "testsrc=d=2:s=320x180:r=25",
        "smptebars=d=2:s=320x180:r=25",
        "rgbtestsrc=d=2:s=320x180:r=25",
        "color=c=0x203060:s=320x180:r=25:d=4",
        "testsrc2=d=2:s=320x180:r=25",
    ];
    let graph = format!(
        "[0]format=yuv420p[v0];[1]format=yuv420p[v1];\
         [2]fade=out:st=1.5:d=0.5,format=yuv420p[v2];\
         [3]drawtext=fontfile={FONT}:text=REELBASE:fontsize=40:fontcolor=white:\
         x=(w-text_w)/2:y=(h-text_h)/2,fade=in:st=0:d=0.5,format=yuv420p[v3];\
         [4]format=yuv420p[v4];[v3][v4]xfade=transition=fade:duration=1:offset=3[v34];\
         [v0][v1][v2][v34]concat=n=4:v=1:a=0[v]"
    );
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    for source in sources {
        command.args(["-f", "lavfi", "-i", source]);
    }
    command.args(["-filter_complex", &graph, "-map", "[v]"]);
    command.args(["-c:v", "libx264", "-preset", "ultrafast"]);
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
    vec![(50, "cut"), (100, "cut"), (150, "fade"), (237, "dissolve")]
}

/// Four 2 s shots in two looks: two on a blue ground, two on an orange one, each with a
/// large white box in a different place, so every change is a cut but only the middle one
/// changes the scene.
pub fn make_two_scene_video(path: &Path) {
    let shot = |colour: &str, x: u32, y: u32| {
        format!(
            "color=c={colour}:s=320x180:r=25:d=2,drawbox=x={x}:y={y}:w=160:h=120:color=white:t=fill"
        )
    };
    let sources = [
        shot("0x102080", 0, 0),
        shot("0x102080", 160, 60),
        shot("0xd07020", 0, 60),
        shot("0xd07020", 160, 0),
    ];
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    for source in &sources {
        command.args(["-f", "lavfi", "-i", source]);
    }
    command.args([
        "-filter_complex",
        "[0][1][2][3]concat=n=4:v=1:a=0,format=yuv420p[v]",
    ]);
    command.args(["-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast"]);
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success());
}

/// An app with a pipeline worker (two steps at once, quick polls), and the rest as `media_app`.
pub async fn pipeline_app(
    customize: impl FnOnce(&mut reelbase::config::Settings),
) -> (TestApp, String, PathBuf) {
    let mut root = PathBuf::new();
    let (app, key) = spawn_app_with_key(Role::User, |settings| {
        root = settings.data_dir.join("media");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        settings.media_roots = vec![root.clone()];
        settings.workers = 2;
        settings.worker_poll = Duration::from_millis(200);
        settings.worker_stale = Duration::from_secs(3);
        customize(settings);
    })
    .await;
    (app, key, root)
}

impl TestApp {
    /// The `result` of a processor's document for a file (expecting 200).
    pub async fn result(&self, key: &str, file_uuid: &str, processor: &str) -> serde_json::Value {
        let path = format!("/api/v1/files/{file_uuid}/results/{processor}");
        let (status, body) = self.get_with_key(&path, key).await;
        assert_eq!(status, 200, "{processor}: {body}");
        body["result"].clone()
    }

    /// Polls a file's progress until its job has ended; returns the last answer.
    pub async fn wait_for_job(
        &self,
        key: &str,
        file_uuid: &str,
        limit: Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (status, progress) = self
                .get_with_key(&format!("/api/v1/files/{file_uuid}/progress"), key)
                .await;
            assert_eq!(status, 200, "{progress}");
            if matches!(
                progress["job_status"].as_str(),
                Some("completed" | "failed")
            ) {
                return progress;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job still running: {progress}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request reaches the app");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, value)
}
