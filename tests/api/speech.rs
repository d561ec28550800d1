//! Speech end to end: espeak-ng voices saying known sentences at known times go through `asr`
//! and `asrx`; the transcript, its timing and the speakers are checked against the truth, and
//! the words are found by search. A broken Python environment turns the processors off, and a
//! script that fails or hangs fails its step with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::helpers::media::pipeline_app;
use crate::helpers::speech::{Line, make_speech_video, word_error_rate, words};

const FIRST: &str = "en-us";
const SECOND: &str = "en+f2";

fn conversation() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            FIRST,
            "Please send the quarterly report to the finance team before Friday.",
        ),
        (
            SECOND,
            "The meeting about the new bridge starts at nine in the morning.",
        ),
        (
            FIRST,
            "Our garden has tall sunflowers and a small wooden bench.",
        ),
        (SECOND, "Remember to water the tomatoes every evening."),
    ]
}

/// The segment that overlaps `line` most.
fn segment_of<'a>(segments: &'a [Value], line: &Line) -> &'a Value {
    let overlap = |s: &Value| {
        let (start, end) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
        (end.min(line.end) - start.max(line.start)).max(0.0)
    };
    segments
        .iter()
        .max_by(|a, b| overlap(a).total_cmp(&overlap(b)))
        .filter(|s| overlap(s) > 0.0)
        .unwrap_or_else(|| panic!("no segment during {line:?}: {segments:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_is_transcribed_timed_attributed_and_searchable() {
    let (app, key, root) = pipeline_app(|_| {}).await;
    let path = root.join("conversation.mp4");
    let truth = make_speech_video(&path, &conversation());
    let uuid = app.register_new(&key, &path).await;
    let (status, queued) = app
        .post_json(
            &format!("/api/v1/files/{uuid}/process"),
            &key,
            &json!({"processors": ["asrx"]}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["processors"], json!(["asr", "asrx"]));
    let progress = app
        .wait_for_job(&key, &uuid, Duration::from_secs(180))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");

    // The words, within a word error rate that Whisper tiny reaches on espeak-ng's voices.
    let asr = app.result(&key, &uuid, "asr").await;
    assert_eq!(asr["language"], "en");
    let segments = asr["segments"].as_array().unwrap().clone();
    let said: Vec<&str> = truth.iter().map(|l| l.text).collect();
    let heard: Vec<&str> = segments
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let wer = word_error_rate(&said.join(" "), &heard.join(" "));
    assert!(wer <= 0.25, "WER {wer:.2}: heard {heard:?}");
    // Timed: each line's segment starts within half a second of it, and words carry times
    // inside their segment.
    for line in &truth {
        let segment = segment_of(&segments, line);
        let start = segment["start"].as_f64().unwrap();
        assert!((start - line.start).abs() <= 0.5, "{line:?}: {segment}");
        for word in segment["words"].as_array().unwrap() {
            let at = word["start"].as_f64().unwrap();
            assert!(at >= start - 0.01 && at <= segment["end"].as_f64().unwrap() + 0.01);
        }
    }

    // Two speakers, each line's segment labelled with its voice.
    let asrx = app.result(&key, &uuid, "asrx").await;
    assert_eq!(asrx["speakers"].as_array().unwrap().len(), 2, "{asrx}");
    let labelled = asrx["segments"].as_array().unwrap().clone();
    let label = |line: &Line| segment_of(&labelled, line)["speaker"].clone();
    // Numbered in order of first appearance: the first voice is SPEAKER_1.
    for line in &truth {
        let expected = if line.voice == FIRST {
            "SPEAKER_1"
        } else {
            "SPEAKER_2"
        };
        assert_eq!(label(line), expected, "{line:?}: {asrx}");
    }
    assert!(asrx["turns"].as_array().unwrap().len() >= 4);
    // The JSON files beside the rows.
    let output = root.parent().unwrap().join("output");
    for name in ["asr", "asrx"] {
        let on_disk: Value = serde_json::from_slice(
            &std::fs::read(output.join(format!("{uuid}.{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(on_disk["file_uuid"], json!(uuid));
    }

    // Search finds where it was said, and who said it.
    let (status, found) = app
        .get_with_key("/api/v1/search?q=sunflowers%20garden", &key)
        .await;
    assert_eq!(status, 200, "{found}");
    let hit = &found["results"][0];
    assert_eq!(
        (&hit["file_uuid"], &hit["source"]),
        (&json!(uuid), &json!("asr"))
    );
    let line = &truth[2];
    let (start, end) = (hit["start"].as_f64().unwrap(), hit["end"].as_f64().unwrap());
    assert!(start < line.end && end > line.start, "{hit} vs {line:?}");
    assert_eq!(hit["speaker"], "SPEAKER_1");
    assert!(words(hit["text"].as_str().unwrap()).contains(&"sunflowers".to_owned()));
    // Stemmed: "reports" finds "report".
    let (_, found) = app.get_with_key("/api/v1/search?q=reports", &key).await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, none) = app.get_with_key("/api/v1/search?q=xylophone", &key).await;
    assert_eq!(
        (none["total"].clone(), none["results"].clone()),
        (json!(0), json!([]))
    );
    // A new transcript brings new speakers: asrx, which ran before, comes with asr.
    let (status, again) = app
        .post_json(
            &format!("/api/v1/files/{uuid}/process"),
            &key,
            &json!({"processors": ["asr"]}),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["processors"], json!(["asr", "asrx"]));
    let progress = app
        .wait_for_job(&key, &uuid, Duration::from_secs(180))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let (_, found) = app.get_with_key("/api/v1/search?q=sunflowers", &key).await;
    assert_eq!(found["results"][0]["speaker"], "SPEAKER_1", "{found}");
    // Confidence is per segment (the mean of its words), not per decoding window.
    let confidences: Vec<f64> = app.result(&key, &uuid, "asr").await["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["confidence"].as_f64().unwrap())
        .collect();
    assert!(confidences.iter().all(|c| (0.0..=1.0).contains(c)));
    assert!(
        confidences.windows(2).any(|w| w[0] != w[1]),
        "{confidences:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_beside_the_scripts_cannot_stand_in_for_a_library() {
    // A copy of the scripts folder with a fake `faster_whisper` module next to asr.py.
    let scripts = std::env::temp_dir().join(format!("reelbase-scripts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scripts);
    std::fs::create_dir_all(&scripts).unwrap();
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for name in ["asr.py", "asrx.py", "face.py", "MANIFEST.sha256"] {
        std::fs::copy(real.join(name), scripts.join(name)).unwrap();
    }
    std::fs::write(
        scripts.join("faster_whisper.py"),
        "raise SystemExit('the fake module was imported')\n",
    )
    .unwrap();
    let folder = scripts.clone();
    let (app, key, root) = pipeline_app(|s| s.scripts_dir = folder).await;
    let path = root.join("one-line.mp4");
    make_speech_video(&path, &conversation()[..1]);
    let uuid = app.register_new(&key, &path).await;
    let progress = app
        .process_and_wait(&key, &uuid, &["asr"], Duration::from_secs(120))
        .await;
    assert_eq!(progress["job_status"], "completed", "{progress}");
    let asr = app.result(&key, &uuid, "asr").await;
    let heard = asr["segments"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(heard.contains("quarterly"), "{asr}");
    let _ = std::fs::remove_dir_all(&scripts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_refuses_what_it_cannot_look_for() {
    let (app, key, _) = pipeline_app(|s| s.workers = 0).await;
    for (query, code) in [
        ("", "invalid_query"),
        ("?q=", "invalid_query"),
        ("?q=%20%20", "invalid_query"),
        ("?q=a%00b", "invalid_query"),
        ("?q=word&source=faces", "bad_request"),
        ("?q=word&limit=0", "bad_request"),
        ("?q=word&limit=x", "bad_request"),
    ] {
        let (status, body) = app
            .get_with_key(&format!("/api/v1/search{query}"), &key)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let long = "word ".repeat(101);
    let (status, _) = app
        .get_with_key(&format!("/api/v1/search?q={long}"), &key)
        .await;
    assert_eq!(status, 400);
    // Operators and quotes are words to look for, not errors.
    let (status, body) = app
        .get_with_key("/api/v1/search?q=%22a%20b%22%20or%20-c%20%26%7C!", &key)
        .await;
    assert_eq!((status, body["total"].clone()), (200, json!(0)), "{body}");
    let anonymous = app
        .client
        .get(app.url("/api/v1/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// A Python environment whose `bin/python` runs the real one for `-I script --check` and, depending on
/// the word in `mode`, fails, hangs or runs normally for a real request; `broken` fails both.
fn staged_env(dir: &Path, mode: &str) -> PathBuf {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(real.join("lib"), dir.join("lib")).unwrap();
    std::fs::write(dir.join("mode"), mode).unwrap();
    let script = format!(
        "#!/bin/sh\nmode=$(cat '{mode}')\n\
         if [ \"$mode\" = broken ]; then echo 'No module named numpy' >&2; exit 1; fi\n\
         if [ \"$3\" != --check ]; then\n\
           [ \"$mode\" = fail ] && {{ echo 'model file is corrupt' >&2; exit 3; }}\n\
           [ \"$mode\" = hang ] && sleep 600\n\
         fi\n\
         exec '{python}' \"$@\"\n",
        mode = dir.join("mode").display(),
        python = real.join("bin/python").display()
    );
    let python = dir.join("bin/python");
    std::fs::write(&python, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_owned()
}

async fn processors(app: &TestApp, key: &str) -> Value {
    for _ in 0..100 {
        let (_, report) = app.get_with_key("/health/detailed", key).await;
        if !report["pipeline"].is_null() {
            return report["pipeline"]["processors"].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the pipeline block stayed null");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_environment_turns_speech_off_and_failures_show_their_reason() {
    let dir = std::env::temp_dir().join(format!("reelbase-pyenv-{}", std::process::id()));
    let env = staged_env(&dir, "broken");
    let (app, key, root) = pipeline_app(|s| {
        s.python_env = env.clone();
        s.process_timeout = Duration::from_secs(4);
    })
    .await;
    let ready = processors(&app, &key).await;
    assert_eq!(
        (&ready["asr"], &ready["asrx"], &ready["cut"]),
        (&json!(false), &json!(false), &json!(true)),
        "{ready}"
    );
    let path = root.join("short.mp4");
    make_speech_video(&path, &conversation()[..1]);
    let uuid = app.register_new(&key, &path).await;
    let process = format!("/api/v1/files/{uuid}/process");
    let body = json!({"processors": ["asr"]});
    let (status, refused) = app.post_json(&process, &key, &body).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("processor_unavailable"))
    );

    // The environment breaks after readiness was judged: the step fails with the script's
    // own words, and what needs it is skipped.
    let (app, key, root) = pipeline_app(|s| {
        s.python_env = staged_env(&dir.join("fail"), "fail");
        s.process_timeout = Duration::from_secs(4);
    })
    .await;
    let path = root.join("short.mp4");
    make_speech_video(&path, &conversation()[..1]);
    let uuid = app.register_new(&key, &path).await;
    let process = format!("/api/v1/files/{uuid}/process");
    let (status, _) = app
        .post_json(&process, &key, &json!({"processors": ["asrx"]}))
        .await;
    assert_eq!(status, 202);
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    let asr = &progress["processors"]["asr"];
    assert_eq!(
        (&progress["job_status"], &asr["status"]),
        (&json!("failed"), &json!("failed"))
    );
    let reason = asr["reason"].as_str().unwrap();
    assert!(reason.contains("model file is corrupt"), "{asr}");
    assert!(
        !reason.contains(&dir.display().to_string()),
        "no install paths: {reason}"
    );
    assert_eq!(progress["processors"]["asrx"]["status"], "skipped");

    // A script that hangs is stopped at the time limit.
    std::fs::write(dir.join("fail/mode"), "hang").unwrap();
    let (status, _) = app
        .post_json(&process, &key, &json!({"processors": ["asr"]}))
        .await;
    assert_eq!(status, 202);
    let started = std::time::Instant::now();
    let progress = app.wait_for_job(&key, &uuid, Duration::from_secs(60)).await;
    let asr = &progress["processors"]["asr"];
    assert_eq!(asr["status"], "failed", "{progress}");
    assert!(
        asr["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 4 s"),
        "{asr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}
