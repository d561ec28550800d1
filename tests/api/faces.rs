//! Faces and the identity library end to end: photos of known people composited into a video
//! at known times; the `face` processor finds and tracks them, strangers get one label each,
//! and adding, renaming, merging and deleting people changes who is named, with the identity
//! folder and the database in sync throughout.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::helpers::faces::{base64_of, make_face_video};
use crate::helpers::media::pipeline_app;

async fn identities_block(app: &TestApp, key: &str) -> Value {
    for _ in 0..100 {
        let (_, report) = app.get_with_key("/health/detailed", key).await;
        if !report["identities"].is_null() && !report["pipeline"].is_null() {
            return report["identities"].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no identities block");
}

async fn assert_synced(app: &TestApp, key: &str, count: u64) {
    // The report is refreshed in the background; wait for one that has seen the change.
    for _ in 0..50 {
        let block = identities_block(app, key).await;
        if block["db_count"] == count {
            assert_eq!(
                (&block["files_count"], &block["synced"], &block["index_ok"]),
                (&json!(count), &json!(true), &json!(true)),
                "{block}"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the report never counted {count} identities");
}

/// A person made from one photo (expecting 201); the new identity.
async fn create_identity(app: &TestApp, key: &str, name: &str, photo: &str) -> Value {
    let body = json!({"name": name, "photos": [base64_of(photo)]});
    let (status, person) = app.post_json("/api/v1/identities", key, &body).await;
    assert_eq!(status, 201, "{person}");
    person
}

async fn tracks(app: &TestApp, key: &str, uuid: &str) -> Vec<Value> {
    let (status, body) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/faces"), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["tracks"].as_array().unwrap().clone()
}

/// The one label every track shown during (start, end) has; fails when there is no such
/// track or they differ.
fn only_label(tracks: &[Value], start: f64, end: f64) -> String {
    let labels = labels_during(tracks, start, end);
    assert!(
        !labels.is_empty(),
        "no track during {start}-{end} s: {tracks:?}"
    );
    assert!(labels.iter().all(|l| l == &labels[0]), "{labels:?}");
    labels[0].clone()
}

/// The tracks shown during (start, end), by label.
fn labels_during(tracks: &[Value], start: f64, end: f64) -> Vec<String> {
    tracks
        .iter()
        .filter(|t| {
            t["start_time"].as_f64().unwrap() < end && t["end_time"].as_f64().unwrap() > start
        })
        .map(|t| t["label"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_are_tracked_and_named_as_the_library_changes() {
    let (app, key, root) = pipeline_app(|_| {}).await;
    let path = root.join("two-people.mp4");
    // One person (a photo not used for the library) from 2 to 6 s, another from 6.5 to 10 s.
    make_face_video(
        &path,
        10.0,
        &[("obama3.jpg", 2.0, 6.0), ("biden.jpg", 6.5, 10.0)],
    );
    let uuid = app.register_new(&key, &path).await;
    let progress = app
        .process_and_wait(&key, &uuid, &["face"], Duration::from_secs(180))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");

    // Nobody is known yet: two strangers, each one label, at the right times.
    let found = tracks(&app, &key, &uuid).await;
    let (first, second) = (only_label(&found, 2.5, 5.5), only_label(&found, 7.0, 9.5));
    assert_ne!(first, second);
    assert!(
        first.starts_with("UNKNOWN_") && second.starts_with("UNKNOWN_"),
        "{found:?}"
    );
    assert!(
        labels_during(&found, 0.0, 1.5).is_empty(),
        "no face before 2 s: {found:?}"
    );
    for track in &found {
        let (start, end) = (
            track["start_time"].as_f64().unwrap(),
            track["end_time"].as_f64().unwrap(),
        );
        let inside = |a: f64, b: f64| start >= a - 0.6 && end <= b + 0.6;
        assert!(inside(2.0, 6.0) || inside(6.5, 10.0), "{track}");
    }
    let (_, result) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/face"), &key)
        .await;
    assert_eq!(
        result["result"]["people"].as_array().unwrap().len(),
        2,
        "{result}"
    );

    // The first person joins the library from another photo: named at once, not the other.
    let person = create_identity(&app, &key, "Barack Obama", "obama.jpg").await;
    assert_eq!(person["faces"], 1);
    let id = person["id"].as_str().unwrap().to_owned();
    let found = tracks(&app, &key, &uuid).await;
    assert_eq!(only_label(&found, 2.5, 5.5), "Barack Obama");
    assert!(only_label(&found, 7.0, 9.5).starts_with("UNKNOWN_"));
    let (_, seen) = app
        .get_with_key(&format!("/api/v1/identities/{id}/appearances"), &key)
        .await;
    let spans = seen["appearances"].as_array().unwrap();
    assert!(!spans.is_empty(), "{seen}");
    for span in spans {
        assert_eq!(span["file_uuid"], json!(uuid));
        assert!(
            span["start_time"].as_f64().unwrap() >= 1.4
                && span["end_time"].as_f64().unwrap() <= 6.6
        );
    }
    assert_synced(&app, &key, 1).await;
    let folder = app.settings.identities_dir.join(&id);
    for file in ["identity.json", "faces.json", "profile.jpg", "photo-1.jpg"] {
        assert!(
            folder.join(file).is_file(),
            "{file} in {}",
            folder.display()
        );
    }

    // Renamed: the tracks follow, on disk too.
    let (status, renamed) = app
        .patch_json(
            &format!("/api/v1/identities/{id}"),
            &key,
            &json!({"name": "B. Obama"}),
        )
        .await;
    assert_eq!((status, &renamed["name"]), (200, &json!("B. Obama")));
    let found = tracks(&app, &key, &uuid).await;
    assert_eq!(only_label(&found, 2.5, 5.5), "B. Obama");
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(folder.join("identity.json")).unwrap()).unwrap();
    assert_eq!(on_disk["name"], "B. Obama");

    // A second identity made from another photo of the same man, merged into the first.
    let twin = create_identity(&app, &key, "Obama again", "obama2.jpg").await;
    assert_synced(&app, &key, 2).await;
    let (status, merged) = app
        .post_json(
            &format!("/api/v1/identities/{id}/merge"),
            &key,
            &json!({"from": [twin["id"]]}),
        )
        .await;
    assert_eq!((status, &merged["faces"]), (200, &json!(2)), "{merged}");
    // The twin's photo moved in under the next number; the folder and faces.json agree.
    assert!(folder.join("photo-2.jpg").is_file());
    let faces: Value =
        serde_json::from_slice(&std::fs::read(folder.join("faces.json")).unwrap()).unwrap();
    let photos: Vec<&str> = faces["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["photo"].as_str().unwrap())
        .collect();
    assert_eq!(photos, ["photo-1.jpg", "photo-2.jpg"]);
    assert_synced(&app, &key, 1).await;

    // The other person joins too and is named; a track bound by hand stays bound, and
    // unbound it goes back to matching.
    let other = create_identity(&app, &key, "Someone", "biden.jpg").await;
    let found = tracks(&app, &key, &uuid).await;
    assert_eq!(only_label(&found, 7.0, 9.5), "Someone");
    let stranger = tracks(&app, &key, &uuid)
        .await
        .into_iter()
        .find(|t| t["start_time"].as_f64().unwrap() > 6.0)
        .unwrap();
    let bind = format!("/api/v1/files/{uuid}/faces/{}/identity", stranger["track"]);
    let (status, _) = app
        .put_json(&bind, &key, &json!({"identity_id": other["id"]}))
        .await;
    assert_eq!(status, 204);
    let found = tracks(&app, &key, &uuid).await;
    assert!(
        found
            .iter()
            .any(|t| t["label"] == "Someone" && t["bound"] == true),
        "{found:?}"
    );
    assert_eq!(app.delete_with_key(&bind, &key).await, 204);
    let found = tracks(&app, &key, &uuid).await;
    assert!(found.iter().all(|t| t["bound"] == false), "{found:?}");
    assert_eq!(only_label(&found, 7.0, 9.5), "Someone");

    // Deleted: back to a stranger, folder gone, still in sync.
    assert_eq!(
        app.delete_with_key(&format!("/api/v1/identities/{id}"), &key)
            .await,
        204
    );
    assert!(!folder.exists());
    let found = tracks(&app, &key, &uuid).await;
    assert!(only_label(&found, 2.5, 5.5).starts_with("UNKNOWN_"));
    assert_synced(&app, &key, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_refuses_what_it_cannot_use() {
    let (app, key, root) = pipeline_app(|s| s.workers = 0).await;
    let blank = root.join("blank.png");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240",
            "-frames:v",
            "1",
        ])
        .arg(&blank)
        .status()
        .unwrap();
    assert!(status.success());
    use base64::Engine;
    let no_face = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&blank).unwrap());
    let cases = [
        (json!({"name": "x", "photos": [no_face]}), 422, "no_face"),
        (
            json!({"name": "x", "photos": ["bm90IGFuIGltYWdl"]}),
            400,
            "invalid_photo",
        ),
        (
            json!({"name": "x", "photos": ["%%%"]}),
            400,
            "invalid_photo",
        ),
        (
            json!({"name": "x", "photos": ["/9j/4AAQSkZJRgABAQ=="]}),
            400,
            "invalid_photo",
        ),
        (json!({"name": "x", "photos": []}), 400, "bad_request"),
        (
            json!({"name": " ", "photos": [base64_of("obama.jpg")]}),
            400,
            "bad_request",
        ),
        (
            json!({"name": "x\u{7}", "photos": [base64_of("obama.jpg")]}),
            400,
            "bad_request",
        ),
        (json!({"name": "x"}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app.post_json("/api/v1/identities", &key, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let (status, listed) = app.get_with_key("/api/v1/identities", &key).await;
    assert_eq!(
        (status, &listed["total"]),
        (200, &json!(0)),
        "nothing half-made: {listed}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&app.settings.identities_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.iter().all(|n| n == "_index.json"),
        "no folders left behind: {leftovers:?}"
    );
    for path in [
        "/api/v1/identities/0123456789abcdef0123456789abcdef",
        "/api/v1/identities/not-an-id/appearances",
    ] {
        let (status, body) = app.get_with_key(path, &key).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    let (status, _) = app
        .put_json(
            &format!("/api/v1/files/{}/faces/3/identity", "a".repeat(32)),
            &key,
            &json!({"identity_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .get_with_key(&format!("/api/v1/files/{}/faces", "b".repeat(32)), &key)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("file_not_found"))
    );
    let anonymous = app
        .client
        .get(app.url("/api/v1/identities"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// A cast of four: two with face photos, one without a photo, one whose photo shows no face.
async fn tmdb_cast(key: &str) -> crate::helpers::stubs::TmdbCastStub {
    let read = |name: &str| std::fs::read(crate::helpers::faces::photo(name)).unwrap();
    let card = std::env::temp_dir().join(format!("reelbase-card-{}.jpg", std::process::id()));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240",
            "-frames:v",
            "1",
        ])
        .arg(&card)
        .status()
        .unwrap();
    assert!(status.success());
    let cast = vec![
        (101, "Barack Obama", Some(("p101.jpg", read("obama.jpg")))),
        (102, "Joe Biden", Some(("p102.jpg", read("biden.jpg")))),
        (103, "Without Photo", None),
        (
            104,
            "Test Card",
            Some(("p104.jpg", std::fs::read(&card).unwrap())),
        ),
    ];
    crate::helpers::stubs::TmdbCastStub::start(key, (603, "The Test Film"), cast).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmdb_cast_becomes_identities_that_name_faces() {
    use reelbase::config::{Secret, ServiceUrl};
    let stub = tmdb_cast("tmdb-cast-key-7").await;
    let base = ServiceUrl::new(url::Url::parse(&stub.url()).unwrap());
    let (app, key, root) = pipeline_app(|s| {
        s.tmdb_enabled = true;
        s.tmdb_api_key = Some(Secret::new("tmdb-cast-key-7"));
        s.tmdb_base_url = base.clone();
    })
    .await;
    // The first request meets a 429 with a one-second Retry-After, which is waited out.
    stub.rate_limit_once();
    let (status, report) = app
        .post_json(
            "/api/v1/identities/import/tmdb",
            &key,
            &json!({"title": "test film"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["tmdb_id"], &report["title"]),
        (&json!(603), &json!("The Test Film"))
    );
    let created: Vec<&str> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["Barack Obama", "Joe Biden"], "{report}");
    assert!(
        report["created"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["source"] == "tmdb")
    );
    let skipped: Vec<i64> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tmdb_id"].as_i64().unwrap())
        .collect();
    assert_eq!(skipped, [103, 104], "{report}");
    assert_synced(&app, &key, 2).await;

    // Again: nothing new, and no request leaves (everything comes from the cache).
    let before = stub.requests();
    let (status, again) = app
        .post_json(
            "/api/v1/identities/import/tmdb",
            &key,
            &json!({"title": "test film"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (
            again["created"].as_array().unwrap().len(),
            again["existing"].as_array().unwrap().len()
        ),
        (0, 2)
    );
    assert_eq!(stub.requests(), before, "a second run needs no network");

    // Footage of them comes back named at the right times.
    let path = root.join("cast.mp4");
    make_face_video(
        &path,
        8.0,
        &[("obama2.jpg", 1.0, 4.0), ("biden.jpg", 4.5, 8.0)],
    );
    let uuid = app.register_new(&key, &path).await;
    let progress = app
        .process_and_wait(&key, &uuid, &["face"], Duration::from_secs(180))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let found = tracks(&app, &key, &uuid).await;
    assert_eq!(only_label(&found, 1.5, 3.5), "Barack Obama");
    assert_eq!(only_label(&found, 5.0, 7.5), "Joe Biden");

    // Refusals say what is wrong without the key.
    for (body, status, code) in [
        (json!({"title": "no such film"}), 404, "not_found"),
        (json!({}), 400, "bad_request"),
        (json!({"title": "x", "tmdb_id": 5}), 400, "bad_request"),
        (json!({"title": "x", "kind": "book"}), 400, "bad_request"),
    ] {
        let (got, answer) = app
            .post_json("/api/v1/identities/import/tmdb", &key, &body)
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let (app, key, _) = pipeline_app(|s| {
        s.workers = 0;
        s.tmdb_enabled = true;
        s.tmdb_api_key = Some(Secret::new("wrong-key-secret"));
        s.tmdb_base_url = base.clone();
    })
    .await;
    let (status, answer) = app
        .post_json(
            "/api/v1/identities/import/tmdb",
            &key,
            &json!({"tmdb_id": 603}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (502, Some("tmdb_failed"))
    );
    assert!(!answer.to_string().contains("wrong-key-secret"));
    let (app, key, _) = pipeline_app(|s| s.workers = 0).await;
    let (status, answer) = app
        .post_json(
            "/api/v1/identities/import/tmdb",
            &key,
            &json!({"tmdb_id": 603}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("tmdb_disabled"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_from_disk_brings_back_face_vectors() {
    let (app, key, _) = pipeline_app(|s| s.workers = 0).await;
    let person = create_identity(&app, &key, "Joe", "biden.jpg").await;
    sqlx::query("DELETE FROM identity_faces")
        .execute(&app.pool)
        .await
        .unwrap();
    let dir = &app.settings.identities_dir;
    let direction = reelbase::identities::sync::Direction::FromDisk;
    let summary = reelbase::identities::sync::sync(dir, &app.pool, direction)
        .await
        .unwrap();
    assert_eq!(summary.faces_restored, 1);
    let id = person["id"].as_str().unwrap();
    let (_, view) = app
        .get_with_key(&format!("/api/v1/identities/{id}"), &key)
        .await;
    assert_eq!(view["faces"], 1, "{view}");
    let again = reelbase::identities::sync::sync(dir, &app.pool, direction)
        .await
        .unwrap();
    assert_eq!(again.faces_restored, 0, "restored once, not twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_qdrant_as_the_vector_store_faces_are_named_the_same() {
    use reelbase::config::{Secret, ServiceUrl};
    let qdrant = crate::helpers::stubs::QdrantStub::start(Some("qdrant-key-3")).await;
    let address = ServiceUrl::new(url::Url::parse(&qdrant.url()).unwrap());
    let (app, key, root) = pipeline_app(|s| {
        s.qdrant_url = Some(address.clone());
        s.qdrant_api_key = Some(Secret::new("qdrant-key-3"));
    })
    .await;
    let person = create_identity(&app, &key, "Joe Biden", "biden.jpg").await;
    let in_pgvector: i64 = sqlx::query_scalar("SELECT count(*) FROM vectors_reelbase_faces")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(in_pgvector, 0, "the vectors went to Qdrant, not pgvector");
    let path = root.join("one-person.mp4");
    make_face_video(&path, 6.0, &[("biden.jpg", 1.0, 5.0)]);
    let uuid = app.register_new(&key, &path).await;
    let progress = app
        .process_and_wait(&key, &uuid, &["face"], Duration::from_secs(120))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let found = tracks(&app, &key, &uuid).await;
    assert_eq!(only_label(&found, 1.5, 4.5), "Joe Biden");
    // A merge the store refuses changes nothing, on disk either, and can be tried again.
    let other = create_identity(&app, &key, "Someone else", "obama.jpg").await;
    let other_id = other["id"].as_str().unwrap();
    let dir = &app.settings.identities_dir;
    let merge = format!(
        "/api/v1/identities/{}/merge",
        person["id"].as_str().unwrap()
    );
    qdrant.set(crate::helpers::stubs::Behaviour::ServerError);
    let (status, _) = app
        .post_json(&merge, &key, &json!({"from": [other_id]}))
        .await;
    assert_eq!(status, 503);
    qdrant.set(crate::helpers::stubs::Behaviour::Normal);
    assert!(dir.join(other_id).join("photo-1.jpg").is_file());
    assert!(
        !dir.join(person["id"].as_str().unwrap())
            .join("photo-2.jpg")
            .exists()
    );
    let (status, merged) = app
        .post_json(&merge, &key, &json!({"from": [other_id]}))
        .await;
    assert_eq!((status, &merged["faces"]), (200, &json!(2)), "{merged}");
    assert_synced(&app, &key, 1).await;

    // Deleting the person takes their vectors out of Qdrant too: nobody is named.
    let id = person["id"].as_str().unwrap();
    assert_eq!(
        app.delete_with_key(&format!("/api/v1/identities/{id}"), &key)
            .await,
        204
    );
    let found = tracks(&app, &key, &uuid).await;
    assert!(
        found.iter().all(|t| t["identity_id"].is_null()),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindexing_drops_vectors_of_rows_that_are_gone() {
    let (app, key, _) = pipeline_app(|s| s.workers = 0).await;
    for (name, photo) in [("A", "obama.jpg"), ("B", "biden.jpg")] {
        let (status, body) = app
            .post_json(
                "/api/v1/identities",
                &key,
                &json!({"name": name, "photos": [base64_of(photo)]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let count = "SELECT count(*) FROM vectors_reelbase_faces";
    let points: i64 = sqlx::query_scalar(count)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(points, 2);
    // A row removed behind the library's back (a restore, a hand edit) leaves a stale point.
    sqlx::query("DELETE FROM identity_faces WHERE id = (SELECT min(id) FROM identity_faces)")
        .execute(&app.pool)
        .await
        .unwrap();
    let store = reelbase::app::tools(&app.settings, &app.pool).vectors;
    reelbase::identities::matching::reindex(&app.pool, &store)
        .await
        .unwrap();
    let points: i64 = sqlx::query_scalar(count)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(points, 1, "the stale point is gone");
}
