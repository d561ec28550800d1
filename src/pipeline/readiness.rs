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

/// The manifest file inside the scripts and models folders.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// How long an ffmpeg probe result is reused: spawning two processes per health call would
/// make the report slow under load, while an install or removal is still noticed quickly.
const TOOL_CACHE: Duration = Duration::from_secs(10);
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub scripts_ready: bool,
    pub scripts_count: usize,
    pub processors: BTreeMap<&'static str, bool>,
    pub models_ready: bool,
    pub models_count: usize,
    pub scripts_integrity: Integrity,
    pub models_integrity: Integrity,
    pub ffmpeg: bool,
}

pub struct PipelineChecker {
    scripts_dir: PathBuf,
    models_dir: PathBuf,
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    tesseract: PathBuf,
    tesseract_cache: Mutex<Option<(Instant, bool)>>,
    hashes: HashCache,
    tools: Arc<Mutex<Option<(Instant, bool)>>>,
    refreshing: Arc<AtomicBool>,
}

impl PipelineChecker {
    pub fn new(
        scripts_dir: PathBuf,
        models_dir: PathBuf,
        ffmpeg: PathBuf,
        ffprobe: PathBuf,
        tesseract: PathBuf,
    ) -> Self {
        let hashes = HashCache::default();
        Self {
            scripts_dir,
            models_dir,
            ffmpeg,
            ffprobe,
            tesseract,
            tesseract_cache: Mutex::new(None),
            hashes,
            tools: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// Blocking (file system and processes): call from `spawn_blocking`.
    pub fn check(&self) -> PipelineReport {
        let scripts = folder(&self.scripts_dir, &self.hashes);
        let models = folder(&self.models_dir, &self.hashes);
        let scripts_count = scripts.files.iter().filter(|f| f.ends_with(".py")).count();
        let ffmpeg = self.tools_run();
        let tools = Tools {
            ffmpeg,
            tesseract: ffmpeg && self.tesseract_runs(),
        };
        let processors = PROCESSORS
            .iter()
            .map(|name| (*name, processor_ready(name, &scripts, &models, tools)))
            .collect();
        PipelineReport {
            scripts_ready: scripts.readable,
            scripts_count,
            processors,
            models_ready: models.readable,
            models_count: models.files.len(),
            scripts_integrity: scripts.integrity,
            models_integrity: models.integrity,
            ffmpeg,
        }
    }

    /// tesseract starts and has its English data; cached like the ffmpeg check.
    fn tesseract_runs(&self) -> bool {
        let mut cache = self
            .tesseract_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((at, ok)) = *cache
            && at.elapsed() < TOOL_CACHE
        {
            return ok;
        }
        let ok = has_english(&self.tesseract);
        *cache = Some((Instant::now(), ok));
        ok
    }

    /// Both ffmpeg and ffprobe start and report a version. Starting them takes a tenth of a
    /// second or more, so the answer is cached, and once it is stale it is refreshed on a
    /// thread of its own while callers get the previous answer: no report waits for it but
    /// the very first.
    fn tools_run(&self) -> bool {
        let cached = *self.tools.lock().unwrap_or_else(|p| p.into_inner());
        match cached {
            Some((at, ok)) if at.elapsed() < TOOL_CACHE => ok,
            Some((_, ok)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let (tools, refreshing) = (self.tools.clone(), self.refreshing.clone());
                    let (ffmpeg, ffprobe) = (self.ffmpeg.clone(), self.ffprobe.clone());
                    std::thread::spawn(move || {
                        let ok = runs(&ffmpeg) && runs(&ffprobe);
                        *tools.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((Instant::now(), ok));
                        refreshing.store(false, Ordering::Release);
                    });
                }
                ok
            }
            None => {
                let ok = runs(&self.ffmpeg) && runs(&self.ffprobe);
                *self.tools.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), ok));
                ok
            }
        }
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

/// What each processor needs. One that is not built cannot run: the list of requirements
/// grows with each processor, and readiness is computed from it, never declared.
fn processor_ready(name: &str, scripts: &Folder, models: &Folder, tools: Tools) -> bool {
    let Some(needs) = requirements(name) else {
        return false;
    };
    let intact = |folder: &Folder, file: &str| {
        folder.files.iter().any(|f| f == file)
            && !folder.integrity.mismatched.iter().any(|f| f == file)
            && !folder.integrity.unlisted.iter().any(|f| f == file)
    };
    (!needs.ffmpeg || tools.ffmpeg)
        && (!needs.tesseract || tools.tesseract)
        && needs.scripts.iter().all(|s| intact(scripts, s))
        && needs.models.iter().all(|m| intact(models, m))
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
        _ => None,
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
    let child = Command::new(program)
        .arg("--list-langs")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else { return false };
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match result.recv_timeout(TOOL_TIMEOUT) {
        Ok(Ok(output)) => {
            output.status.success()
                && String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .any(|line| line.trim() == "eng")
        }
        _ => false,
    }
}
