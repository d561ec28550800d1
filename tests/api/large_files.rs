//! A large file is hashed in pieces: the server's memory does not grow with the file.

use std::io::Read;

use reelbase::db::users::{self, Role};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::TestDb;
use crate::helpers::media::make_video;
use crate::helpers::process::Served;

const GIB: u64 = 1 << 30;

/// The peak resident memory of a process, from `/proc/<pid>/status`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn streamed_sha256(path: &std::path::Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_one_gigabyte_file_is_hashed_without_reading_it_into_memory() {
    let db = TestDb::create().await;
    let data = std::env::temp_dir().join(format!("reelbase-{}", db.name));
    let root = data.join("media");
    std::fs::create_dir_all(&root).unwrap();
    // A real video (index first) followed by a sparse gigabyte: ffprobe reads the start, the
    // hash must read everything.
    let big = root.join("big.mp4");
    make_video(&big, 1, 660, true);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(GIB)
        .unwrap();
    let expected = streamed_sha256(&big);

    let url = db.socket_url();
    let (data_text, root_text) = (data.display().to_string(), root.display().to_string());
    let mut served = Served::start(&[
        ("REELBASE_DATABASE_URL", url.as_str()),
        ("REELBASE_DATA_DIR", data_text.as_str()),
        ("REELBASE_MEDIA_ROOTS", root_text.as_str()),
        ("REELBASE_WATCH_ENABLED", "false"),
        ("REELBASE_LOG", "info"),
    ]);
    let addr = served.wait_for("listening")["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let hash = reelbase::auth::password::hash("a long enough password".to_owned())
        .await
        .unwrap();
    users::create(&pool, "ops", &hash, Role::User)
        .await
        .unwrap();
    let key = reelbase::auth::create_api_key(&pool, "ops", "test", 1)
        .await
        .unwrap()
        .key;
    let before = peak_rss(served.pid());

    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/files/register"))
        .header("x-api-key", &key)
        .json(&json!({ "file_path": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["content_hash"], expected.as_str());
    assert_eq!(body["size_bytes"], GIB);

    let after = peak_rss(served.pid());
    let grown = after.saturating_sub(before);
    assert!(
        after < 256 << 20 && grown < 64 << 20,
        "peak RSS {} MiB (grew {} MiB) while hashing 1 GiB",
        after >> 20,
        grown >> 20
    );
    std::fs::remove_file(&big).unwrap();
}
