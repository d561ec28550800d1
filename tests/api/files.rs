//! Registering files through the API: probe facts, content hashes, duplicates, what is refused
//! (every way out of the media roots, folders, devices, non-media), batches, and the records'
//! list, lookup and deletion.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::media::{make_picture, make_video, media_app};

fn sha256_hex(path: &std::path::Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_registered_video_has_its_probe_facts_and_content_hash() {
    let (app, key, root) = media_app(false).await;
    let path = root.join("street.mp4");
    make_video(&path, 2, 440, false);

    let (status, body) = app.register(&key, &path).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["already_exists"], false);
    assert_eq!(body["file_name"], "street.mp4");
    assert_eq!(
        body["file_path"],
        path.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(body["file_type"], "video");
    assert_eq!(body["container"], "mp4");
    assert_eq!(
        (body["width"].as_i64(), body["height"].as_i64()),
        (Some(160), Some(120))
    );
    assert_eq!(body["fps"].as_f64(), Some(25.0));
    assert_eq!(body["total_frames"].as_i64(), Some(50));
    assert!(
        (body["duration"].as_f64().unwrap() - 2.0).abs() < 0.1,
        "{body}"
    );
    assert_eq!(body["audio_streams"], 1);
    assert_eq!(body["status"], "registered");
    assert_eq!(body["content_hash"], sha256_hex(&path));
    let uuid = body["file_uuid"].as_str().unwrap();
    assert!(
        uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{uuid}"
    );
    assert!(body["message"].is_string());

    let (status, record) = app
        .get_with_key(&format!("/api/v1/files/{uuid}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["content_hash"], body["content_hash"]);
    assert_eq!(
        record["size_bytes"],
        std::fs::metadata(&path).unwrap().len()
    );
    let source: String = sqlx::query_scalar("SELECT source FROM files WHERE file_uuid = $1")
        .bind(uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(source, "api");
}

#[tokio::test]
async fn the_same_content_twice_is_one_record_and_a_moved_file_follows() {
    let (app, key, root) = media_app(false).await;
    let first = root.join("a.mp4");
    make_video(&first, 1, 500, true);
    let copy = root.join("copy-of-a.mp4");
    std::fs::copy(&first, &copy).unwrap();

    let (status, original) = app.register(&key, &first).await;
    assert_eq!(status, 201);
    let (status, again) = app.register(&key, &first).await;
    assert_eq!((status, &again["already_exists"]), (200, &json!(true)));
    let (status, duplicate) = app.register(&key, &copy).await;
    assert_eq!(status, 200, "{duplicate}");
    assert_eq!(duplicate["already_exists"], true);
    assert_eq!(duplicate["file_uuid"], original["file_uuid"]);
    // The copy does not take over the record: the original is still where it was.
    assert_eq!(duplicate["file_path"], original["file_path"]);
    assert_eq!(app.file_rows().await, 1);

    // The original goes away; registering the copy now moves the record to it.
    std::fs::remove_file(&first).unwrap();
    let (status, moved) = app.register(&key, &copy).await;
    assert_eq!(status, 200);
    assert_eq!(moved["file_uuid"], original["file_uuid"]);
    assert_eq!(
        moved["file_path"],
        copy.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(moved["file_name"], "copy-of-a.mp4");
    assert_eq!(app.file_rows().await, 1);
}

#[tokio::test]
async fn files_that_are_not_media_get_422_and_are_not_stored() {
    let (app, key, root) = media_app(false).await;
    std::fs::write(root.join("notes.txt"), "shot list: 1. wide 2. close\n").unwrap();
    std::fs::write(root.join("empty.mp4"), b"").unwrap();
    std::fs::write(root.join("noise.mov"), vec![0x5au8; 64 * 1024]).unwrap();
    make_picture(&root.join("still.png"));
    // An upload cut off half-way: the index of this mp4 is at its end, so it is lost.
    let whole = root.join("whole.mp4");
    make_video(&whole, 2, 600, false);
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(root.join("cut.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&whole).unwrap();

    for name in [
        "notes.txt",
        "empty.mp4",
        "noise.mov",
        "still.png",
        "cut.mp4",
    ] {
        let (status, body) = app.register(&key, &root.join(name)).await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["error"]["code"], "not_media", "{name}");
    }
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn every_way_out_of_the_media_roots_is_refused() {
    let (app, key, root) = media_app(false).await;
    let outside = root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.mp4");
    make_video(&secret, 1, 700, true);
    symlink(&secret, root.join("link-out.mp4")).unwrap();
    symlink(&outside, root.join("dir-out")).unwrap();
    symlink(outside.join("missing.mp4"), root.join("dangling-out.mp4")).unwrap();
    std::fs::create_dir(root.join("folder")).unwrap();
    let fifo = root.join("pipe.mp4");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let r = root.display();

    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{r}/../outside/secret.mp4"), 400, "invalid_path"),
        (
            format!("{r}/folder/../../outside/secret.mp4"),
            400,
            "invalid_path",
        ),
        ("media/secret.mp4".to_owned(), 400, "invalid_path"),
        (String::new(), 400, "invalid_path"),
        (format!("{r}/a\u{0}b.mp4"), 400, "invalid_path"),
        (secret.display().to_string(), 403, "outside_media_roots"),
        ("/etc/hostname".to_owned(), 403, "outside_media_roots"),
        ("/etc/no-such-file".to_owned(), 403, "outside_media_roots"),
        ("/dev/zero".to_owned(), 403, "outside_media_roots"),
        (format!("{r}/link-out.mp4"), 403, "outside_media_roots"),
        (
            format!("{r}/dir-out/secret.mp4"),
            403,
            "outside_media_roots",
        ),
        (
            format!("{r}/dir-out/missing.mp4"),
            403,
            "outside_media_roots",
        ),
        (format!("{r}/dangling-out.mp4"), 403, "outside_media_roots"),
        (format!("{r}/folder"), 400, "not_a_file"),
        (fifo.display().to_string(), 400, "not_a_file"),
        (format!("{r}/not-there.mp4"), 404, "file_not_found"),
    ];
    for (path, status, code) in cases {
        let body = json!({ "file_path": path });
        let (got, answer) = app.post_json("/api/v1/files/register", &key, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path:?}"
        );
        // No answer quotes what lies outside.
        assert!(!answer.to_string().contains("outside/"), "{answer}");
    }
    assert_eq!(app.file_rows().await, 0);

    // A link that stays inside the roots is fine, and the record names the real file.
    let inside = root.join("folder/real.mp4");
    make_video(&inside, 1, 800, true);
    symlink(&inside, root.join("link-in.mp4")).unwrap();
    let (status, body) = app.register(&key, &root.join("link-in.mp4")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["file_path"],
        inside.canonicalize().unwrap().to_str().unwrap()
    );
}

#[tokio::test]
async fn a_folder_registers_the_files_matching_a_pattern() {
    let (app, key, root) = media_app(false).await;
    make_video(&root.join("one.mp4"), 1, 300, true);
    make_video(&root.join("two.mp4"), 1, 350, true);
    std::fs::write(root.join("readme.mp4"), "not a video").unwrap();
    std::fs::write(root.join("skip.txt"), "ignored by the pattern").unwrap();
    std::fs::write(root.join("upload.mp4.part"), "in progress").unwrap();
    std::fs::create_dir(root.join("deeper")).unwrap();
    make_video(&root.join("deeper/three.mp4"), 1, 400, true);

    let body = json!({ "file_path": root, "pattern": r"\.mp4$" });
    let (status, answer) = app.post_json("/api/v1/files/register", &key, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["matched"], 3, "{answer}");
    assert_eq!(answer["registered"], 2);
    assert_eq!(answer["failed"], 1);
    assert_eq!(answer["success"], false);
    assert_eq!(answer["errors"][0]["code"], "not_media");
    assert!(
        answer["errors"][0]["file_path"]
            .as_str()
            .unwrap()
            .ends_with("readme.mp4")
    );
    let names: Vec<&str> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one.mp4", "two.mp4"]);

    let body = json!({ "file_path": root, "pattern": r"\.mp4$", "recursive": true });
    let (_, answer) = app.post_json("/api/v1/files/register", &key, &body).await;
    assert_eq!(
        (
            answer["registered"].as_i64(),
            answer["already_existing"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(app.file_rows().await, 3);

    let refused = [
        (
            json!({"file_path": root, "pattern": "(unclosed"}),
            400,
            "invalid_pattern",
        ),
        (
            json!({"file_path": root.join("one.mp4"), "pattern": ".*"}),
            400,
            "not_a_directory",
        ),
        (
            json!({"file_path": "/etc", "pattern": ".*"}),
            403,
            "outside_media_roots",
        ),
        (
            json!({"file_path": root, "pattern": ".*", "extra": 1}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in refused {
        let (got, answer) = app.post_json("/api/v1/files/register", &key, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn records_are_listed_looked_up_and_deleted_without_touching_the_source() {
    let (app, key, root) = media_app(false).await;
    let mut uuids = Vec::new();
    for (name, hz) in [("a.mp4", 310), ("b.mp4", 320), ("c.mp4", 330)] {
        make_video(&root.join(name), 1, hz, true);
        let (_, body) = app.register(&key, &root.join(name)).await;
        uuids.push(body["file_uuid"].as_str().unwrap().to_owned());
    }

    let (status, page) = app.get_with_key("/api/v1/files?limit=2", &key).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            page["total"].as_i64(),
            page["files"].as_array().unwrap().len()
        ),
        (Some(3), 2)
    );
    let (_, rest) = app
        .get_with_key("/api/v1/files?limit=2&offset=2", &key)
        .await;
    assert_eq!(rest["files"].as_array().unwrap().len(), 1);
    let (_, none) = app
        .get_with_key("/api/v1/files?status=completed", &key)
        .await;
    assert_eq!(none["total"], 0);
    for bad in ["?status=done", "?limit=0", "?limit=x", "?offset=-1"] {
        let (status, body) = app.get_with_key(&format!("/api/v1/files{bad}"), &key).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }

    let (status, found) = app
        .get_with_key("/api/v1/files/lookup?file_name=b.mp4", &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["files"][0]["file_uuid"], uuids[1].as_str());
    let (status, _) = app
        .get_with_key("/api/v1/files/lookup?file_name=zzz.mp4", &key)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get_with_key("/api/v1/files/lookup", &key).await;
    assert_eq!(status, 400);
    let (status, body) = app.get_with_key("/api/v1/files/NOT-A-UUID", &key).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_file_uuid"))
    );
    let (status, _) = app
        .get_with_key(&format!("/api/v1/files/{}", "0".repeat(32)), &key)
        .await;
    assert_eq!(status, 404);

    // Deleting removes the record and the outputs, never the video.
    let output = app_data_dir(&root).join("output");
    std::fs::create_dir_all(&output).unwrap();
    let mine = output.join(format!("{}.cut.json", uuids[0]));
    let theirs = output.join(format!("{}.cut.json", uuids[1]));
    std::fs::write(&mine, "{}").unwrap();
    std::fs::write(&theirs, "{}").unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/files/{}", uuids[0])))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["outputs_removed"], 1);
    assert!(!mine.exists() && theirs.exists());
    assert!(root.join("a.mp4").exists(), "the source video stays");
    let (status, _) = app
        .get_with_key(&format!("/api/v1/files/{}", uuids[0]), &key)
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.file_rows().await, 2);

    // Registering it again brings it back under the same id.
    let (status, back) = app.register(&key, &root.join("a.mp4")).await;
    assert_eq!(status, 201);
    assert_eq!(back["file_uuid"], uuids[0].as_str());
}

/// The data folder of a `media_app` (its media root is `<data>/media`).
fn app_data_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.parent().unwrap().to_owned()
}

#[tokio::test]
async fn registration_needs_a_caller() {
    let (app, _key, root) = media_app(false).await;
    make_video(&root.join("a.mp4"), 1, 900, true);
    let response = app
        .client
        .post(app.url("/api/v1/files/register"))
        .json(&json!({ "file_path": root.join("a.mp4") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(app.file_rows().await, 0);
}

/// Runs `reelbase files ARGS` with the app's database and media root, from `cwd`.
fn files_cli(
    app_db: &str,
    root: &std::path::Path,
    cwd: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    crate::helpers::process::reelbase()
        .arg("files")
        .args(args)
        .current_dir(cwd)
        .env("REELBASE_DATABASE_URL", app_db)
        .env("REELBASE_MEDIA_ROOTS", root)
        .output()
        .unwrap()
}

// Multi-threaded: the CLI runs as a blocking child process while this test's server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_registers_and_lists_directly_or_through_a_server() {
    let (app, key, root) = media_app(false).await;
    make_video(&root.join("cli-a.mp4"), 1, 910, true);
    make_video(&root.join("cli-b.mp4"), 2, 920, true);
    std::fs::write(root.join("cli-notes.txt"), "no video here").unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let db_url = format!("postgres:///{db}");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    // Relative paths are taken from the working folder, as a shell user expects.
    let out = files_cli(
        &db_url,
        &root,
        &root,
        &["register", "cli-a.mp4", "cli-notes.txt"],
    );
    assert_eq!(out.status.code(), Some(1), "one of two failed");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("registered") && stdout.contains("cli-a.mp4"),
        "{stdout}"
    );
    assert!(
        stderr.contains("cli-notes.txt") && stderr.contains("not_media"),
        "{stderr}"
    );

    let out = files_cli(
        &db_url,
        &root,
        &root,
        &["register", "--pattern", r"^cli-.*\.mp4$", "."],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("exists") && stdout.contains("cli-a.mp4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("registered") && stdout.contains("cli-b.mp4"),
        "{stdout}"
    );
    let source: String =
        sqlx::query_scalar("SELECT source FROM files WHERE file_name = 'cli-b.mp4'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(source, "cli");

    let out = files_cli(&db_url, &root, &root, &["list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let out = files_cli(&db_url, &root, &root, &["list", "--status", "done"]);
    assert_eq!(out.status.code(), Some(64));

    // Through the server, with a key; and without one, a clear refusal.
    let url = app.url("");
    let out = crate::helpers::process::reelbase()
        .args(["files", "list", "--url", &url])
        .env("REELBASE_API_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 of 2 files"),
        "{}",
        text(&out.stdout)
    );
    let out = crate::helpers::process::reelbase()
        .args(["files", "register", "--url", &url])
        .arg(root.join("cli-a.mp4"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("API key"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn playlists_long_paths_and_odd_names_are_refused_without_reading_elsewhere() {
    let (app, key, root) = media_app(false).await;
    let outside = root.parent().unwrap().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    make_video(&outside.join("secret.mp4"), 1, 930, true);
    // An HLS playlist inside the root naming a video outside it.
    let playlist = root.join("list.m3u8");
    let text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:1.0,\n{}\n#EXT-X-ENDLIST\n",
        outside.join("secret.mp4").display()
    );
    std::fs::write(&playlist, text).unwrap();
    let concat = root.join("list.ffconcat");
    std::fs::write(
        &concat,
        format!(
            "ffconcat version 1.0\nfile '{}'\n",
            outside.join("secret.mp4").display()
        ),
    )
    .unwrap();
    for path in [&playlist, &concat] {
        let (status, body) = app.register(&key, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("not_media")),
            "{path:?}"
        );
    }

    let started = std::time::Instant::now();
    let deep = format!("{}/{}", root.display(), "a/".repeat(200_000));
    let (status, body) = app
        .post_json(
            "/api/v1/files/register",
            &key,
            &json!({ "file_path": deep }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_path"))
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let (status, _) = app
        .get_with_key("/api/v1/files/lookup?file_name=%00", &key)
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn a_new_hard_link_does_not_make_the_next_registration_read_the_file_again() {
    let (app, key, root) = media_app(false).await;
    let path = root.join("linked.mp4");
    make_video(&path, 1, 940, true);
    let (status, _) = app.register(&key, &path).await;
    assert_eq!(status, 201);
    std::fs::hard_link(&path, root.parent().unwrap().join("other-name.mp4")).unwrap();
    let (status, again) = app.register(&key, &path).await;
    assert_eq!((status, &again["already_exists"]), (200, &json!(true)));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT ctime_ns FROM files")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, meta.ctime() * 1_000_000_000 + meta.ctime_nsec());
}
