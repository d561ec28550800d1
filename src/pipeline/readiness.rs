//! Whether the pipeline can run here: the scripts and models folders against their manifests,
//! ffmpeg and ffprobe actually running, and each of the nine processors. A processor is ready
//! only when everything it needs is present and intact; one that is not built yet is not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{self, HashCache, Integrity};
use super::python::{OFFLINE_ENV, ScriptCommand, ScriptEnv};
use super::registry;

/// The analyses the origin page names, in its order.
pub const PROCESSORS: [&str; 9] = [
    "asr",
    "yolo",
    "face",
    "pose",
    "ocr",
    "cut",
    "scene",
    "asrx",
    "visual_chunk",
];

/// What the frame scripts (face.py, pose.py) share; a helper, not a processor script.
const SHARED_SCRIPT: &str = "_frames.py";

/// The manifest file inside the scripts and models folders.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// How long an ffmpeg probe result is reused: spawning two processes per health call would
/// make the report slow under load, while an install or removal is still noticed quickly.
const TOOL_CACHE: Duration = Duration::from_secs(10);
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);
/// A script's `--check` imports its libraries (a second or two); a broken environment is
/// noticed within a minute.
const SCRIPT_CACHE: Duration = Duration::from_secs(60);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub scripts_ready: bool,
    pub scripts_count: usize,
    pub processors: BTreeMap<&'static str, bool>,
    /// Why each processor that is not ready is not (absent when all are).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub processor_problems: BTreeMap<&'static str, String>,
    pub models_ready: bool,
    pub models_count: usize,
    pub scripts_integrity: Integrity,
    pub models_integrity: Integrity,
    pub ffmpeg: bool,
}

pub struct PipelineChecker {
    scripts_dir: PathBuf,
    models_dir: PathBuf,
    env: ScriptEnv,
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    tesseract: PathBuf,
    hashes: Arc<HashCache>,
    tools: Refreshing<bool>,
    english: Refreshing<bool>,
    /// One per script processor: the script's `--check` in its runtime.
    script_checks: Mutex<BTreeMap<&'static str, Refreshing<Result<(), String>>>>,
}

/// Programs and folders the checker looks at.
pub struct CheckerPaths {
    pub scripts_dir: PathBuf,
    pub models_dir: PathBuf,
    pub python_env: PathBuf,
    pub node_env: PathBuf,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub tesseract: PathBuf,
}

impl PipelineChecker {
    pub fn new(paths: CheckerPaths) -> Self {
        Self {
            env: ScriptEnv::new(&paths.python_env, &paths.scripts_dir, &paths.models_dir)
                .with_node(&paths.node_env),
            scripts_dir: paths.scripts_dir,
            models_dir: paths.models_dir,
            ffmpeg: paths.ffmpeg,
            ffprobe: paths.ffprobe,
            tesseract: paths.tesseract,
            hashes: Arc::default(),
            tools: Refreshing::default(),
            english: Refreshing::default(),
            script_checks: Mutex::default(),
        }
    }

    /// The hash cache, shared with the processors that verify their models before a run.
    pub fn hashes(&self) -> Arc<HashCache> {
        self.hashes.clone()
    }

    /// Blocking (file system and processes): call from `spawn_blocking`.
    pub fn check(&self) -> PipelineReport {
        let scripts = folder(&self.scripts_dir, &self.hashes);
        let models = folder(&self.models_dir, &self.hashes);
        let scripts_count = scripts
            .files
            .iter()
            .filter(|f| (f.ends_with(".py") || f.ends_with(".js")) && !f.starts_with('_'))
            .count();
        let (ffmpeg, ffprobe) = (self.ffmpeg.clone(), self.ffprobe.clone());
        let ffmpeg = self
            .tools
            .get(TOOL_CACHE, move || runs(&ffmpeg) && runs(&ffprobe));
        let tesseract = self.tesseract.clone();
        let tools = Tools {
            ffmpeg,
            tesseract: ffmpeg
                && self
                    .english
                    .get(TOOL_CACHE, move || has_english(&tesseract)),
        };
        // Each script's `--check` starts an interpreter and imports its libraries (a second or
        // more): run them side by side, so the first report waits for the slowest, not the sum.
        std::thread::scope(|scope| {
            for name in PROCESSORS {
                if requirements(name).is_some_and(|needs| !needs.scripts.is_empty()) {
                    scope.spawn(move || {
                        let _ = self.script_starts(name);
                    });
                }
            }
        });
        let mut processors = BTreeMap::new();
        let mut processor_problems = BTreeMap::new();
        for name in PROCESSORS {
            let ready = match requirements(name) {
                None => Err("not part of this build".to_owned()),
                Some(needs) => files_ready(&needs, &scripts, &models, tools)
                    .and_then(|()| self.runtime_ready(&needs)),
            };
            processors.insert(name, ready.is_ok());
            if let Err(problem) = ready {
                processor_problems.insert(name, problem);
            }
        }
        // A processor whose input comes from another can run only when that one can
        // (dependencies come first in the registry's order).
        for (name, needs) in registry::DEPENDENCIES {
            let missing = needs.iter().find(|dep| processors.get(*dep) != Some(&true));
            if let Some(dep) = missing
                && processors.get(name) == Some(&true)
            {
                processors.insert(name, false);
                processor_problems.insert(name, format!("needs {dep}, which is not ready"));
            }
        }
        PipelineReport {
            scripts_ready: scripts.readable,
            scripts_count,
            processors,
            processor_problems,
            models_ready: models.readable,
            models_count: models.files.len(),
            scripts_integrity: scripts.integrity,
            models_integrity: models.integrity,
            ffmpeg,
        }
    }

    /// For a model or script processor: its models are installed as their pointers say, and
    /// its script starts in its runtime and finds what it imports.
    fn runtime_ready(&self, needs: &Requirements) -> Result<(), String> {
        for pointer in needs.models {
            let name = pointer.trim_end_matches(".json");
            self.env.model(name, &self.hashes)?;
        }
        // Helpers (`_*.py`) are checked by the scripts that load them.
        for script in needs.scripts.iter().filter(|s| !s.starts_with('_')) {
            let name = script.trim_end_matches(".py").trim_end_matches(".js");
            self.script_starts(name)?;
        }
        Ok(())
    }

    fn script_starts(&self, name: &str) -> Result<(), String> {
        let Some(name) = PROCESSORS.iter().copied().find(|p| *p == name) else {
            return Err(format!("{name} is not a processor"));
        };
        let check = self
            .script_checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .clone();
        let command = self.env.command(name)?;
        check.get(SCRIPT_CACHE, move || script_check(&command))
    }
}

/// A yes/no answer that takes a while to get (starting a program): computed on first use,
/// reused while fresh, and once stale recomputed on a thread of its own while callers get the
/// previous answer, so no report waits for it but the very first.
#[derive(Clone)]
struct Refreshing<T> {
    answer: Arc<Mutex<Option<(Instant, T)>>>,
    busy: Arc<AtomicBool>,
}

impl<T> Default for Refreshing<T> {
    fn default() -> Self {
        Self {
            answer: Arc::default(),
            busy: Arc::default(),
        }
    }
}

impl<T: Clone + Send + 'static> Refreshing<T> {
    fn get(&self, fresh_for: Duration, probe: impl FnOnce() -> T + Send + 'static) -> T {
        let cached = self
            .answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match cached {
            Some((at, ok)) if at.elapsed() < fresh_for => ok,
            Some((_, ok)) => {
                if !self.busy.swap(true, Ordering::AcqRel) {
                    let this = self.clone();
                    std::thread::spawn(move || {
                        let ok = probe();
                        this.store(ok.clone());
                        this.busy.store(false, Ordering::Release);
                    });
                }
                ok
            }
            None => {
                let ok = probe();
                self.store(ok.clone());
                ok
            }
        }
    }

    fn store(&self, ok: T) {
        *self.answer.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), ok));
    }
}

/// Which external programs run here.
#[derive(Debug, Clone, Copy)]
struct Tools {
    ffmpeg: bool,
    tesseract: bool,
}

struct Folder {
    readable: bool,
    /// Files the manifest is meant to cover (everything but the manifest itself).
    files: Vec<String>,
    integrity: Integrity,
}

fn folder(dir: &Path, hashes: &HashCache) -> Folder {
    let listed = manifest::files(dir, &|path| path.file_name().is_some_and(|n| n != MANIFEST));
    let Ok(files) = listed else {
        return Folder {
            readable: false,
            files: Vec::new(),
            integrity: Integrity::default(),
        };
    };
    let integrity =
        manifest::check(dir, MANIFEST, &files, hashes).unwrap_or_else(|error| Integrity {
            error: Some(error.to_string()),
            unlisted: files.clone(),
            ..Integrity::default()
        });
    Folder {
        readable: true,
        files,
        integrity,
    }
}

/// The files and programs a processor needs are present and intact.
fn files_ready(
    needs: &Requirements,
    scripts: &Folder,
    models: &Folder,
    tools: Tools,
) -> Result<(), String> {
    let intact = |folder: &Folder, kind: &str, file: &str| {
        if !folder.files.iter().any(|f| f == file) {
            Err(format!("{kind} {file} is missing"))
        } else if folder.integrity.mismatched.iter().any(|f| f == file) {
            Err(format!("{kind} {file} differs from its manifest"))
        } else if folder.integrity.unlisted.iter().any(|f| f == file) {
            Err(format!("{kind} {file} is not in its manifest"))
        } else {
            Ok(())
        }
    };
    if needs.ffmpeg && !tools.ffmpeg {
        return Err("ffmpeg or ffprobe does not run".into());
    }
    if needs.tesseract && !tools.tesseract {
        return Err("tesseract with English data does not run".into());
    }
    for script in needs.scripts {
        intact(scripts, "script", script)?;
    }
    for model in needs.models {
        intact(models, "model pointer", model)?;
    }
    Ok(())
}

struct Requirements {
    ffmpeg: bool,
    tesseract: bool,
    scripts: &'static [&'static str],
    models: &'static [&'static str],
}

/// The processors that exist in this build and what they need.
fn requirements(name: &str) -> Option<Requirements> {
    match name {
        // Rust code over frames decoded by ffmpeg.
        "cut" | "scene" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &[],
            models: &[],
        }),
        // Debian's tesseract with its English data, on frames ffmpeg extracts.
        "ocr" => Some(Requirements {
            ffmpeg: true,
            tesseract: true,
            scripts: &[],
            models: &[],
        }),
        // Whisper (faster-whisper, CTranslate2) with its bundled voice activity model.
        "asr" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &["asr.py"],
            models: &["whisper-tiny-en.json", "silero-vad.json"],
        }),
        // Speaker vectors from resemblyzer's encoder, run with numpy.
        "asrx" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &["asrx.py"],
            models: &["resemblyzer-encoder.json"],
        }),
        // BlazeFace (mediapipe) and dlib's face vectors, on frames ffmpeg samples.
        "face" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &["face.py", SHARED_SCRIPT],
            models: &[
                "face-detector.json",
                "face-landmarks.json",
                "face-encoder.json",
            ],
        }),
        // CenterNet (COCO) from @vladmandic/human, run by TensorFlow.js in Node.js.
        "yolo" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &["yolo.js"],
            models: &["object-detector.json"],
        }),
        // BlazePose (mediapipe): person detector and 33-keypoint landmark model.
        "pose" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &["pose.py", SHARED_SCRIPT],
            models: &["pose-detector.json", "pose-landmarks.json"],
        }),
        // Rust: objects followed through shots, described and embedded with MiniLM.
        "visual_chunk" => Some(Requirements {
            ffmpeg: true,
            tesseract: false,
            scripts: &[],
            models: &["text-encoder.json"],
        }),
        _ => None,
    }
}

/// `script --check` exits 0 in time and prints `{"ok": true}`; otherwise why not.
fn script_check(script: &ScriptCommand) -> Result<(), String> {
    let name = script
        .args
        .last()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut command = Command::new(&script.program);
    command
        .args(&script.args)
        .arg("--check")
        .envs(OFFLINE_ENV.iter().copied())
        .envs(script.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = output_within(command, SCRIPT_TIMEOUT).map_err(|why| {
        let program = script.program.display();
        format!("{name} --check ({program}) {why}")
    })?;
    let said_ok = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .is_ok_and(|answer| answer["ok"] == serde_json::Value::Bool(true));
    if output.status.success() && said_ok {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    let last: String = last.trim().chars().take(300).collect();
    Err(format!("{name} --check failed: {last}"))
}

/// Runs `command` to the end, or kills it after `limit`; why not, when it did not finish.
fn output_within(mut command: Command, limit: Duration) -> Result<std::process::Output, String> {
    let child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let pid = child.id();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match result.recv_timeout(limit) {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("lost its output: {e}")),
        Err(_) => {
            // SAFETY: signalling a process we started; at worst it is already gone.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            Err(format!("did not finish within {} s", limit.as_secs()))
        }
    }
}

fn runs(program: &Path) -> bool {
    let child = Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// `tesseract --list-langs` runs in time and lists `eng`.
fn has_english(program: &Path) -> bool {
    let mut command = Command::new(program);
    command
        .arg("--list-langs")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    output_within(command, TOOL_TIMEOUT).is_ok_and(|output| {
        output.status.success()
            && String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line.trim() == "eng")
    })
}
