//! The pipeline end to end: a generated video with known cuts, fades, a dissolve and on-screen
//! text goes through cut, scene and ocr; results come back from the API, the JSON files and
//! the tables; failures show their reason and are retried with one call.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::media::{make_truth_video, make_two_scene_video, make_video, pipeline_app};

async fn register(app: &crate::helpers::TestApp, key: &str, path: &std::path::Path) -> String {
    let (status, body) = app.register(key, path).await;
    assert_eq!(status, 201, "{body}");
    body["file_uuid"].as_str().unwrap().to_owned()
}

async fn process(
    app: &crate::helpers::TestApp,
    key: &str,
    uuid: &str,
    body: Value,
) -> (u16, Value) {
    app.post_json(&format!("/api/v1/files/{uuid}/process"), key, &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_goes_through_cut_scene_and_ocr_to_the_truth() {
    let (app, key, root) = pipeline_app(|_| {}).await;
    let path = root.join("truth.mp4");
    let truth = make_truth_video(&path);
    let uuid = register(&app, &key, &path).await;

    let (status, queued) = process(&app, &key, &uuid, json!({})).await;
    assert_eq!(status, 202, "{queued}");
    // Every processor that can run here; the speech ones find no sound in this video.
    assert_eq!(
        queued["processors"],
        json!([
            "cut",
            "scene",
            "asr",
            "asrx",
            "yolo",
            "visual_chunk",
            "face",
            "pose",
            "ocr"
        ])
    );
    let progress = app
        .wait_for_job(&key, &uuid, Duration::from_secs(240))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    assert_eq!(progress["percent"], 100);
    assert_eq!(progress["status"], "completed");
    for name in [
        "cut",
        "scene",
        "asr",
        "asrx",
        "face",
        "ocr",
        "yolo",
        "pose",
        "visual_chunk",
    ] {
        let step = &progress["processors"][name];
        assert_eq!(step["status"], "completed", "{name}: {step}");
        assert!(step["duration_ms"].as_i64().is_some() && step["finished_at"].is_string());
    }
    // scene waited for cut.
    assert!(
        progress["processors"]["scene"]["started_at"].as_str()
            >= progress["processors"]["cut"]["finished_at"].as_str()
    );

    // Shots: every boundary of the truth, on its frame (gradual ones within two).
    let (status, cut) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/cut"), &key)
        .await;
    assert_eq!(status, 200);
    let shots = cut["result"]["shots"].as_array().unwrap().clone();
    assert_eq!(shots.len(), truth.len() + 1, "{shots:?}");
    for ((frame, kind), shot) in truth.iter().zip(&shots[1..]) {
        let found = shot["start_frame"].as_u64().unwrap();
        let slack = if *kind == "cut" { 1 } else { 2 };
        assert!(
            found.abs_diff(*frame) <= slack,
            "{kind} at {frame}, found {found}"
        );
        assert_eq!(shot["transition"], *kind);
    }
    assert_eq!(shots.last().unwrap()["end_frame"], 274);
    // The same document on disk, and a keyframe per shot.
    let output = root.parent().unwrap().join("output");
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(output.join(format!("{uuid}.cut.json"))).unwrap())
            .unwrap();
    assert_eq!(on_disk, cut);
    for shot in &shots {
        let keyframe = output.join(shot["keyframe"].as_str().unwrap());
        assert!(
            std::fs::metadata(&keyframe).unwrap().len() > 500,
            "{keyframe:?}"
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM shots WHERE file_uuid = $1")
        .bind(&uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, shots.len() as i64);

    // Scenes cover the shots in order, without gaps; the fade starts a new one.
    let (_, scene) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/scene"), &key)
        .await;
    let scenes = scene["result"]["scenes"].as_array().unwrap();
    let mut next = 0;
    for s in scenes {
        assert_eq!(s["first_shot"], next, "{scenes:?}");
        next = s["last_shot"].as_u64().unwrap() + 1;
    }
    assert_eq!(next as usize, shots.len());
    assert!(
        scenes.iter().any(|s| s["first_shot"] == 3),
        "a fade begins a scene: {scenes:?}"
    );

    // The text, read exactly, over the span it is on screen.
    let (_, ocr) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/ocr"), &key)
        .await;
    let texts = ocr["result"]["texts"].as_array().unwrap();
    let word = texts
        .iter()
        .find(|t| t["text"] == "REELBASE")
        .unwrap_or_else(|| panic!("REELBASE not read: {texts:?}"));
    let (start, end) = (
        word["start_time"].as_f64().unwrap(),
        word["end_time"].as_f64().unwrap(),
    );
    assert!(
        (5.5..=6.6).contains(&start) && (9.0..=10.6).contains(&end),
        "{word}"
    );
    assert!(
        texts
            .iter()
            .all(|t| t["text"] == "REELBASE" || t["confidence"].as_f64() < Some(100.0))
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT text FROM text_spans WHERE file_uuid = $1 AND source = 'ocr'")
            .bind(&uuid)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(stored.contains(&"REELBASE".to_owned()), "{stored:?}");
    // Searchable, whatever the case of the query, at the time it is on screen.
    let (status, found) = app.get_with_key("/api/v1/search?q=reelbase", &key).await;
    assert_eq!(status, 200, "{found}");
    let hit = &found["results"][0];
    assert_eq!(
        (&hit["file_uuid"], &hit["source"]),
        (&json!(uuid), &json!("ocr"))
    );
    assert!(
        (5.5..=6.6).contains(&hit["start"].as_f64().unwrap()),
        "{hit}"
    );
    assert!(
        (0.5..=1.0).contains(&hit["confidence"].as_f64().unwrap()),
        "{hit}"
    );
    let (_, spoken) = app
        .get_with_key("/api/v1/search?q=reelbase&source=asr", &key)
        .await;
    assert_eq!(spoken["total"], 0, "no sound, so nothing said: {spoken}");
    let (_, asr) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/asr"), &key)
        .await;
    assert_eq!(asr["result"]["segments"], json!([]), "{asr}");

    // The job as the jobs API shows it.
    let job_id = queued["job_id"].as_i64().unwrap();
    let (_, job) = app
        .get_with_key(&format!("/api/v1/jobs/{job_id}"), &key)
        .await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["steps"].as_array().unwrap().len(), 9);
    let (_, listed) = app
        .get_with_key("/api/v1/jobs?status=completed", &key)
        .await;
    assert_eq!(listed["jobs"][0]["id"], job_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alike_shots_make_one_scene() {
    let (app, key, root) = pipeline_app(|_| {}).await;
    let path = root.join("two-scenes.mp4");
    make_two_scene_video(&path);
    let uuid = register(&app, &key, &path).await;
    let (status, _) = process(&app, &key, &uuid, json!({"processors": ["scene"]})).await;
    assert_eq!(status, 202);
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let (_, cut) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/cut"), &key)
        .await;
    let starts: Vec<u64> = cut["result"]["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 50, 100, 150]);
    let (_, scene) = app
        .get_with_key(&format!("/api/v1/files/{uuid}/results/scene"), &key)
        .await;
    let spans: Vec<(u64, u64)> = scene["result"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["first_shot"].as_u64().unwrap(),
                s["last_shot"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(spans, [(0, 1), (2, 3)]);
}

/// An ffmpeg that fails to decode (or decodes slowly) while a flag file exists, and is the
/// real one otherwise. Starting it with `-version` always works, so readiness stays true.
fn flaky_ffmpeg(dir: &std::path::Path, flag: &std::path::Path, action: &str) -> std::path::PathBuf {
    let script = dir.join("ffmpeg");
    let body = format!(
        "#!/bin/sh\ncase \"$*\" in *rawvideo*) if [ -e '{}' ]; then {action}; fi;; esac\nexec ffmpeg \"$@\"\n",
        flag.display()
    );
    std::fs::write(&script, body).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    // A script just written can be "busy" for a moment while another test forks (the child
    // briefly holds the write descriptor): wait until it runs.
    for _ in 0..100 {
        let ran = std::process::Command::new(&script).arg("-version").output();
        if ran.is_ok_and(|out| out.status.success()) {
            return script;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} does not run", script.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_shows_its_reason_skips_what_needs_it_and_retries_in_one_call() {
    let dir = std::env::temp_dir().join(format!("reelbase-flaky-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("fail-now");
    std::fs::write(&flag, "").unwrap();
    let wrapper = flaky_ffmpeg(&dir, &flag, "echo simulated decoder failure >&2; exit 7");
    let (app, key, root) = pipeline_app(|s| s.ffmpeg = wrapper.clone()).await;
    let path = root.join("clip.mp4");
    make_video(&path, 2, 450, true);
    let uuid = register(&app, &key, &path).await;

    let (status, queued) = process(&app, &key, &uuid, json!({"processors": ["scene"]})).await;
    assert_eq!(status, 202, "{queued}");
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "failed");
    assert_eq!(progress["status"], "failed");
    let cut = &progress["processors"]["cut"];
    assert_eq!(cut["status"], "failed");
    let reason = cut["reason"].as_str().unwrap();
    assert!(
        reason.contains("simulated decoder failure") && reason.contains('7'),
        "{reason}"
    );
    assert_eq!(progress["processors"]["scene"]["status"], "skipped");

    let job_id = queued["job_id"].as_i64().unwrap();
    // Only the step that failed can be retried (what it skipped comes with it).
    let (status, body) = app
        .post_json(
            &format!("/api/v1/jobs/{job_id}/retry"),
            &key,
            &json!({"processor": "scene"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, _) = app
        .post_json(
            "/api/v1/jobs/999999/retry",
            &key,
            &json!({"processor": "cut"}),
        )
        .await;
    assert_eq!(status, 404);

    std::fs::remove_file(&flag).unwrap();
    let (status, _) = app
        .post_json(
            &format!("/api/v1/jobs/{job_id}/retry"),
            &key,
            &json!({"processor": "cut"}),
        )
        .await;
    assert_eq!(status, 202);
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    assert_eq!(progress["processors"]["scene"]["status"], "completed");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/jobs/{job_id}/retry"),
            &key,
            &json!({"processor": "cut"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_pipeline_cannot_take_are_refused_clearly() {
    let (app, key, root) = pipeline_app(|s| {
        s.workers = 0;
        s.node_env = "/nonexistent/reelbase-node".into();
    })
    .await;
    let path = root.join("clip.mp4");
    make_video(&path, 1, 460, true);
    let uuid = register(&app, &key, &path).await;
    let cases = [
        (
            format!("/api/v1/files/{uuid}/process"),
            json!({"processors": ["teleport"]}),
            400,
            "bad_request",
        ),
        (
            format!("/api/v1/files/{uuid}/process"),
            json!({"processors": ["yolo"]}),
            409,
            "processor_unavailable",
        ),
        (
            format!("/api/v1/files/{uuid}/process"),
            json!({"processors": "cut"}),
            400,
            "invalid_json",
        ),
        (
            "/api/v1/files/XYZ/process".to_owned(),
            json!({}),
            400,
            "invalid_file_uuid",
        ),
        (
            format!("/api/v1/files/{}/process", "a".repeat(32)),
            json!({}),
            404,
            "file_not_found",
        ),
        (
            "/api/v1/jobs/12x/retry".to_owned(),
            json!({"processor": "cut"}),
            400,
            "bad_request",
        ),
        (
            "/api/v1/jobs/1/retry".to_owned(),
            json!({"processor": "bogus"}),
            400,
            "bad_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = app.post_json(&path, &key, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}"
        );
    }
    for (path, status) in [
        ("/api/v1/jobs?status=bogus".to_owned(), 400),
        ("/api/v1/jobs?limit=0".to_owned(), 400),
        ("/api/v1/jobs/999999".to_owned(), 404),
        (format!("/api/v1/files/{uuid}/results/cut"), 404),
        (format!("/api/v1/files/{uuid}/results/teleport"), 404),
    ] {
        let (got, _) = app.get_with_key(&path, &key).await;
        assert_eq!(got, status, "{path}");
    }
    // What can run still runs: the default leaves out yolo and what needs it.
    let (status, queued) = process(&app, &key, &uuid, json!({})).await;
    assert_eq!(status, 202, "{queued}");
    let planned = queued["processors"].as_array().unwrap();
    assert!(
        planned.contains(&json!("pose"))
            && !planned.contains(&json!("yolo"))
            && !planned.contains(&json!("visual_chunk")),
        "{queued}"
    );
    // Nothing ran: with no worker, a queued job waits.
    let (status, queued) = process(&app, &key, &uuid, json!({"processors": ["cut"]})).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, job) = app
        .get_with_key(&format!("/api/v1/jobs/{}", queued["job_id"]), &key)
        .await;
    assert_eq!(job["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_files_are_processed_on_registration_when_asked() {
    let (app, key, root) = pipeline_app(|s| s.auto_process = true).await;
    let path = root.join("auto.mp4");
    make_video(&path, 2, 470, true);
    let uuid = register(&app, &key, &path).await;
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    assert!(progress["processors"]["cut"]["status"] == "completed");
}

#[tokio::test]
async fn readiness_follows_the_tools_each_processor_needs() {
    // The report, once its pipeline block is measured (`null` while the first check runs).
    let detailed = |app: &crate::helpers::TestApp, key: &str| {
        let (client, url) = (app.client.clone(), app.url("/health/detailed"));
        let key = key.to_owned();
        async move {
            for _ in 0..50 {
                let request = client.get(&url).header("x-api-key", &key);
                let report: Value = request.send().await.unwrap().json().await.unwrap();
                if !report["pipeline"].is_null() {
                    return report;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("the pipeline block stayed null");
        }
    };
    let (app, key, _) = pipeline_app(|s| s.workers = 0).await;
    let processors = detailed(&app, &key).await["pipeline"]["processors"].clone();
    for (name, ready) in [
        ("cut", true),
        ("scene", true),
        ("ocr", true),
        ("asr", true),
        ("asrx", true),
        ("face", true),
        ("yolo", true),
        ("pose", true),
        ("visual_chunk", true),
    ] {
        assert_eq!(processors[name], ready, "{name}: {processors}");
    }

    // A changed shared helper turns off the scripts that load it, and says which file.
    let scripts = std::env::temp_dir().join(format!("reelbase-scripts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scripts);
    std::fs::create_dir_all(&scripts).unwrap();
    for entry in std::fs::read_dir("scripts").unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), scripts.join(entry.file_name())).unwrap();
        }
    }
    let mut helper = std::fs::read_to_string(scripts.join("_frames.py")).unwrap();
    helper.push_str("\n# changed\n");
    std::fs::write(scripts.join("_frames.py"), helper).unwrap();
    let (app, key, _) = pipeline_app(|s| {
        s.workers = 0;
        s.scripts_dir = scripts.clone();
    })
    .await;
    let pipeline = detailed(&app, &key).await["pipeline"].clone();
    let problems = pipeline["processor_problems"].as_object().unwrap();
    assert_eq!(
        problems.keys().collect::<Vec<_>>(),
        ["face", "pose"],
        "{pipeline}"
    );
    assert_eq!(
        problems["face"], "script _frames.py differs from its manifest",
        "{pipeline}"
    );
    let _ = std::fs::remove_dir_all(&scripts);

    // Without the Node.js packages yolo stops, and visual_chunk (which needs its objects)
    // with it; the report says why.
    let (app, key, _) = pipeline_app(|s| {
        s.workers = 0;
        s.node_env = "/nonexistent/reelbase-node".into();
    })
    .await;
    let pipeline = detailed(&app, &key).await["pipeline"].clone();
    assert_eq!(
        (
            &pipeline["processors"]["yolo"],
            &pipeline["processors"]["visual_chunk"],
            &pipeline["processors"]["pose"]
        ),
        (&json!(false), &json!(false), &json!(true)),
        "{pipeline}"
    );
    let problems = pipeline["processor_problems"].as_object().unwrap();
    assert_eq!(
        problems.keys().collect::<Vec<_>>(),
        ["visual_chunk", "yolo"],
        "{pipeline}"
    );
    assert_eq!(
        problems["visual_chunk"], "needs yolo, which is not ready",
        "{pipeline}"
    );
    assert!(
        problems["yolo"]
            .as_str()
            .unwrap()
            .contains("Node.js environment"),
        "{pipeline}"
    );

    let (app, key, _) = pipeline_app(|s| {
        s.workers = 0;
        s.tesseract = "/nonexistent/tesseract".into();
    })
    .await;
    let pipeline = detailed(&app, &key).await["pipeline"].clone();
    assert_eq!(
        (
            &pipeline["processors"]["cut"],
            &pipeline["processors"]["ocr"]
        ),
        (&json!(true), &json!(false))
    );
    assert!(
        pipeline["processor_problems"]["ocr"]
            .as_str()
            .unwrap()
            .contains("tesseract"),
        "{pipeline}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_that_writes_much_to_stderr_does_not_hang_its_step() {
    let dir = std::env::temp_dir().join(format!("reelbase-noisy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("noisy");
    std::fs::write(&flag, "").unwrap();
    // A megabyte on stderr before decoding: more than a pipe holds.
    let wrapper = flaky_ffmpeg(&dir, &flag, "head -c 1000000 /dev/zero | tr '\\0' x >&2");
    let (app, key, root) = pipeline_app(|s| s.ffmpeg = wrapper.clone()).await;
    let path = root.join("noisy.mp4");
    make_video(&path, 1, 490, true);
    let uuid = register(&app, &key, &path).await;
    let (status, _) = process(&app, &key, &uuid, json!({"processors": ["cut"]})).await;
    assert_eq!(status, 202);
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_file_gets_only_what_applies_to_it() {
    let (app, key, root) = pipeline_app(|s| s.workers = 0).await;
    let path = root.join("tone.wav");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=2",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let uuid = register(&app, &key, &path).await;
    // By default the speech processors, none of the picture ones.
    let (status, body) = process(&app, &key, &uuid, json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["processors"], json!(["asr", "asrx"]));
    // Named explicitly, what needs a picture is refused for sound; an empty list asks nothing.
    let (status, body) = process(&app, &key, &uuid, json!({"processors": ["ocr"]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("processor_unavailable"))
    );
    let (status, body) = process(&app, &key, &uuid, json!({"processors": []})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    // Without a Python environment nothing applies to sound, and the refusal says why.
    let (app, key, root) = pipeline_app(|s| {
        s.workers = 0;
        s.python_env = "/nonexistent/reelbase-env".into();
    })
    .await;
    let path = root.join("tone.wav");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=310:duration=2")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let uuid = register(&app, &key, &path).await;
    let (status, body) = process(&app, &key, &uuid, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("processor_unavailable")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("audio"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_folder_works_as_well_as_an_absolute_one() {
    // The default data folder is `./data`: keyframes linked for `scene` must still resolve.
    let relative = format!("target/test-relative-data-{}", std::process::id());
    let (app, key, root) = pipeline_app(|s| s.data_dir = relative.clone().into()).await;
    let path = root.join("two-scenes.mp4");
    make_two_scene_video(&path);
    let uuid = register(&app, &key, &path).await;
    let (status, _) = process(&app, &key, &uuid, json!({"processors": ["scene"]})).await;
    assert_eq!(status, 202);
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    assert!(
        std::path::Path::new(&relative)
            .join("output")
            .join(format!("{uuid}.scene.json"))
            .exists()
    );
    let _ = std::fs::remove_dir_all(&relative);
}
