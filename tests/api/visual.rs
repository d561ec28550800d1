//! What is visible, end to end: scikit-image's pictures of a cameraman, a motorcycle and a
//! cat composited into a two-shot video at known times; `yolo` finds them, `pose` finds the
//! man's keypoints, `visual_chunk` follows the objects into described chunks, and search
//! finds the footage by word and by meaning.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;
use crate::helpers::media::pipeline_app;
use crate::helpers::objects::make_object_video;

/// The times at which `label` was detected.
fn times_of(yolo: &Value, label: &str) -> Vec<f64> {
    yolo["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["label"] == label)
        .map(|d| d["time"].as_f64().unwrap())
        .collect()
}

async fn search(app: &TestApp, key: &str, query: &str) -> Value {
    let (status, body) = app
        .get_with_key(&format!("/api/v1/search?q={query}"), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_poses_and_chunks_are_found_and_searchable() {
    let (app, key, root) = pipeline_app(|_| {}).await;
    let path = root.join("street-and-sofa.mp4");
    // Shot 1 (0-6 s): a cameraman throughout, a motorcycle from 3 s. Shot 2 (6-12 s): a cat.
    make_object_video(
        &path,
        &[
            ("camera", 300, 20, 30, 0.0, 6.0),
            ("motorcycle_left", 200, 330, 80, 3.0, 6.0),
        ],
        &[("chelsea", 260, 40, 50, 6.0, 12.0)],
    );
    let uuid = app.register_new(&key, &path).await;
    let progress = app
        .process_and_wait(
            &key,
            &uuid,
            &["yolo", "pose", "visual_chunk"],
            Duration::from_secs(240),
        )
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");

    // yolo: each object on most of its samples, and only while it is shown.
    let yolo = app.result(&key, &uuid, "yolo").await;
    let rate = yolo["sample_rate"].as_f64().unwrap();
    assert_eq!(rate, 3.0);
    for (label, from, to) in [
        ("person", 0.0, 6.0),
        ("motorcycle", 3.0, 6.0),
        ("cat", 6.0, 12.0),
    ] {
        let times = times_of(&yolo, label);
        let expected = ((to - from) * rate) as usize;
        assert!(
            times.len() * 4 >= expected * 3,
            "{label}: {} of {expected} samples",
            times.len()
        );
        assert!(
            times.iter().all(|t| *t >= from - 0.4 && *t < to + 0.4),
            "{label} outside {from}-{to} s: {times:?}"
        );
    }
    for d in yolo["detections"].as_array().unwrap() {
        let b: Vec<f64> = serde_json::from_value(d["box"].clone()).unwrap();
        assert!(b.iter().all(|v| (0.0..=1.0).contains(v)), "{d}");
    }
    // The motorcycle sits right of centre (x 330-630 of 640).
    let bike = yolo["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["label"] == "motorcycle")
        .unwrap();
    let centre = bike["box"][0].as_f64().unwrap() + bike["box"][2].as_f64().unwrap() / 2.0;
    assert!((0.55..0.95).contains(&centre), "{bike}");

    // pose: the cameraman's 33 keypoints while he is shown, nobody on the cat's shot.
    let pose = app.result(&key, &uuid, "pose").await;
    assert_eq!(pose["keypoint_names"].as_array().unwrap().len(), 33);
    let poses = pose["poses"].as_array().unwrap();
    let during = poses
        .iter()
        .filter(|p| p["time"].as_f64().unwrap() < 6.0)
        .count();
    assert!(during >= 9, "{during} poses in 12 samples of the man");
    for p in poses {
        let time = p["time"].as_f64().unwrap();
        assert!(time < 6.0, "a pose on the cat's shot: {p}");
        let keypoints = p["keypoints"].as_array().unwrap();
        assert_eq!(keypoints.len(), 33);
        let visible = keypoints
            .iter()
            .filter(|k| k[2].as_f64().unwrap() >= 0.5)
            .count();
        assert!(visible >= 8, "{visible} visible keypoints: {p}");
        // The picture spans x 20-320, y 30-330.
        let x = p["box"][0].as_f64().unwrap() + p["box"][2].as_f64().unwrap() / 2.0;
        assert!((20.0..320.0).contains(&x), "{p}");
    }

    // visual_chunk: three stretches, each described by what is in it.
    let chunks = app.result(&key, &uuid, "visual_chunk").await["chunks"].clone();
    let described: Vec<(String, f64, f64)> = chunks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["description"].as_str().unwrap().to_owned(),
                c["start_time"].as_f64().unwrap(),
                c["end_time"].as_f64().unwrap(),
            )
        })
        .collect();
    let find = |text: &str| {
        described
            .iter()
            .find(|(d, ..)| d == text)
            .unwrap_or_else(|| panic!("no chunk {text:?}: {described:?}"))
            .clone()
    };
    let near = |a: f64, b: f64| (a - b).abs() <= 0.7;
    let (_, start, end) = find("a person");
    assert!(near(start, 0.0) && near(end, 3.0), "{described:?}");
    let (_, start, end) = find("a motorcycle and a person");
    assert!(near(start, 3.0) && near(end, 6.0), "{described:?}");
    let (_, start, end) = find("a cat");
    assert!(near(start, 6.0) && near(end, 12.0), "{described:?}");
    for c in chunks.as_array().unwrap() {
        let frame = c["frame"].as_str().expect("a representative frame");
        let saved = app.settings.data_dir.join("output").join(frame);
        assert!(saved.is_file(), "{}", saved.display());
        let t = c["frame_time"].as_f64().unwrap();
        assert!(t >= c["start_time"].as_f64().unwrap() && t < c["end_time"].as_f64().unwrap());
        for object in c["objects"].as_array().unwrap() {
            assert!(!object["boxes"].as_array().unwrap().is_empty(), "{object}");
        }
    }

    // Search by word finds the chunk's description...
    let found = search(&app, &key, "motorcycle").await;
    let visual: Vec<&Value> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"] == "visual")
        .collect();
    assert_eq!(visual.len(), 1, "{found}");
    assert_eq!(visual[0]["text"], "a motorcycle and a person");
    assert_eq!(visual[0]["file_uuid"], uuid.as_str());
    // ... and by meaning, with words the description does not use.
    let found = search(&app, &key, "a%20kitten").await;
    let best = &found["visual_matches"][0];
    assert_eq!(
        (best["description"].as_str(), best["file_uuid"].as_str()),
        (Some("a cat"), Some(uuid.as_str())),
        "{found}"
    );
    assert!(near(best["start"].as_f64().unwrap(), 6.0), "{best}");
    assert_eq!(
        found["visual_labels"],
        serde_json::json!(["cat"]),
        "{found}"
    );
    let found = search(&app, &key, "motorbike%20rider").await;
    let matches = found["visual_matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "only chunks with a motorcycle: {found}");
    assert_eq!(matches[0]["description"], "a motorcycle and a person");
    // A query naming something that is not there finds nothing, not the nearest animal, and
    // one naming two things needs both.
    for query in ["a%20dog", "a%20cat%20and%20a%20dog"] {
        let found = search(&app, &key, query).await;
        assert!(
            found["visual_labels"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("dog")),
            "{found}"
        );
        assert_eq!(found["visual_matches"], serde_json::json!([]), "{found}");
    }
    // A word for a kind of thing names no one label, and finds what is close in meaning.
    let found = search(&app, &key, "pet").await;
    assert_eq!(found["visual_labels"], serde_json::json!([]), "{found}");
    assert_eq!(
        found["visual_matches"][0]["description"], "a cat",
        "{found}"
    );
    // "people" names person (the descriptions' own word), and `-word` leaves chunks out.
    let found = search(&app, &key, "people").await;
    assert_eq!(
        found["visual_labels"],
        serde_json::json!(["person"]),
        "{found}"
    );
    assert_eq!(
        found["visual_matches"].as_array().unwrap().len(),
        2,
        "{found}"
    );
    let found = search(&app, &key, "people%20-motorcycle").await;
    let matches = found["visual_matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{found}");
    assert_eq!(matches[0]["description"], "a person");
    let found = search(&app, &key, "-cat").await;
    assert_eq!(found["visual_matches"], serde_json::json!([]), "{found}");
    // Paging past the end is an empty page, even at the largest offset.
    let found = search(&app, &key, "a%20kitten&offset=9223372036854775807").await;
    assert_eq!(found["visual_matches"], serde_json::json!([]), "{found}");
    let found = search(&app, &key, "quarterly%20tax%20report").await;
    assert_eq!(found["visual_matches"], serde_json::json!([]), "{found}");
    assert_eq!(found["visual_labels"], serde_json::json!([]), "{found}");
    assert!(found["warnings"].is_null(), "{found}");

    // A deleted file leaves nothing to find, in PostgreSQL or in the vector store.
    let points = "SELECT count(*) FROM vectors_reelbase_visual_chunks \
                  WHERE payload->>'file_uuid' = $1";
    let before: i64 = sqlx::query_scalar(points)
        .bind(&uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, 3);
    let status = app
        .delete_with_key(&format!("/api/v1/files/{uuid}"), &key)
        .await;
    assert_eq!(status, 200);
    let found = search(&app, &key, "a%20kitten").await;
    assert_eq!(found["visual_matches"], serde_json::json!([]), "{found}");
    let after: i64 = sqlx::query_scalar(points)
        .bind(&uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, 0);
}
