//! What a processor gets to do its work (the file, the database, the process runner, where to
//! write), how it fails, and the atomic writing of its result document.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use super::manifest::HashCache;
use super::python::{OFFLINE_ENV, ScriptEnv};
use super::runner::{Input, RunError, Runner};
use crate::db::files::FileRecord;
use crate::vectors::VectorStore;

/// Why a step failed, as shown to operators.
#[derive(Debug)]
pub struct StepError(pub String);

impl StepError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl From<RunError> for StepError {
    fn from(error: RunError) -> Self {
        Self(error.to_string())
    }
}

impl From<sqlx::Error> for StepError {
    fn from(error: sqlx::Error) -> Self {
        Self(format!("PostgreSQL: {error}"))
    }
}

/// Paths and programs the processors use.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub tesseract: PathBuf,
    pub data_dir: PathBuf,
    /// Longest one program may run for one step.
    pub timeout: Duration,
    /// The script processors' Python environment, scripts and model pointers.
    pub scripts: ScriptEnv,
    /// Hashes of model files, so a model is verified before each run without re-reading it.
    pub hashes: Arc<HashCache>,
    /// Where face vectors of known people are searched.
    pub vectors: Arc<VectorStore>,
    /// The text encoder (MiniLM), loaded on first use and shared with the search API.
    pub encoders: Arc<crate::textvec::Encoders>,
    /// Frames per second `yolo` and `pose` look at.
    pub yolo_fps: f64,
    pub pose_fps: f64,
}

pub struct StepContext<'a> {
    pub pool: &'a PgPool,
    pub runner: &'a Runner,
    pub tools: &'a Tools,
    pub file: &'a FileRecord,
    pub job_id: i64,
}

impl StepContext<'_> {
    pub fn ffmpeg(&self) -> &OsStr {
        self.tools.ffmpeg.as_os_str()
    }

    /// The file as an ffmpeg input that is never read as an option or a protocol.
    pub fn input(&self) -> PathBuf {
        let mut input = std::ffi::OsString::from("file:");
        input.push(&self.file.file_path);
        PathBuf::from(input)
    }

    pub fn timeout(&self) -> Duration {
        self.tools.timeout
    }

    /// The packaged model `name`, verified against its pointer in the models folder.
    pub fn model(&self, name: &str) -> Result<PathBuf, StepError> {
        let (env, hashes) = (&self.tools.scripts, &self.tools.hashes);
        env.model(name, hashes).map_err(StepError::new)
    }

    /// Runs script `name` (`scripts/<name>.js` in Node.js or `scripts/<name>.py` in Python)
    /// with `request` as JSON on stdin, offline, and returns the JSON object it prints.
    pub async fn run_script(&self, name: &str, request: &Value) -> Result<Value, StepError> {
        run_script(self.runner, self.tools, name, request).await
    }

    /// The file's first audio stream as 16 kHz mono 16-bit WAV at `path`, for the speech
    /// processors.
    pub async fn extract_audio(&self, path: &Path) -> Result<(), StepError> {
        let input = self.input();
        let args: Vec<&OsStr> = vec![
            "-v".as_ref(),
            "error".as_ref(),
            "-nostdin".as_ref(),
            "-i".as_ref(),
            input.as_os_str(),
            "-map".as_ref(),
            "0:a:0".as_ref(),
            "-vn".as_ref(),
            "-ac".as_ref(),
            "1".as_ref(),
            "-ar".as_ref(),
            "16000".as_ref(),
            // Gaps (undecodable packets) are filled with silence, so times stay true.
            "-af".as_ref(),
            "aresample=async=1:first_pts=0".as_ref(),
            "-c:a".as_ref(),
            "pcm_s16le".as_ref(),
            "-f".as_ref(),
            "wav".as_ref(),
            "-y".as_ref(),
            path.as_os_str(),
        ];
        self.runner.run(self.ffmpeg(), args, self.timeout()).await?;
        Ok(())
    }

    /// The output folder, created if needed.
    pub fn output_dir(&self) -> Result<PathBuf, StepError> {
        let dir = output_dir(&self.tools.data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| StepError::new(format!("cannot make the output folder: {e}")))?;
        Ok(dir)
    }

    /// A fresh folder for temporary files, removed when the returned guard is dropped. Each
    /// call gets its own, so steps running side by side never share one.
    pub fn scratch(&self) -> Result<Scratch, StepError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}-{}",
            self.file.file_uuid,
            self.job_id,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.tools.data_dir.join("tmp").join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| StepError::new(format!("cannot make a scratch folder: {e}")))?;
        Ok(Scratch(path))
    }
}

/// Runs script `name` (see `ScriptEnv::command`) with `request` as JSON on stdin, offline,
/// through `runner`, and returns the JSON object it prints. Processors and the
/// identity library (faces from photos) share it.
pub async fn run_script(
    runner: &Runner,
    tools: &Tools,
    name: &str,
    request: &Value,
) -> Result<Value, StepError> {
    let command = tools
        .scripts
        .command(name)
        .map_err(|reason| StepError::new(plain_reason(&reason, tools)))?;
    let mut env: Vec<(String, String)> = OFFLINE_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(
        command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned())),
    );
    let input = Input {
        env,
        stdin: Some(request.to_string().into_bytes()),
    };
    let done = runner
        .run_with(
            command.program.as_os_str(),
            command.args.iter().map(|a| a.as_os_str()),
            &input,
            tools.timeout,
        )
        .await
        .map_err(|error| StepError::new(plain_reason(&error.to_string(), tools)))?;
    let text = String::from_utf8_lossy(&done.stdout);
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(value) if value.is_object() => Ok(value),
        _ => {
            let start: String = text.trim().chars().take(200).collect();
            Err(StepError::new(format!(
                "the {name} script printed no JSON object (stdout began: {start:?}; stderr: {})",
                done.stderr_tail
            )))
        }
    }
}

/// A script's failure as operators see it: without Python's traceback frames (the script's
/// own message is on its first line) and with the install's folders named, not spelled out.
fn plain_reason(reason: &str, tools: &Tools) -> String {
    let env = &tools.scripts;
    let mut kept: Vec<&str> = Vec::new();
    let mut in_traceback = false;
    for line in reason.lines() {
        if line.starts_with("Traceback (most recent call last)") {
            in_traceback = true;
            continue;
        }
        if in_traceback && (line.starts_with(' ') || line.trim().is_empty()) {
            continue;
        }
        in_traceback = false;
        kept.push(line);
    }
    let mut text = kept.join("\n");
    for (folder, name) in [
        (&env.env_dir, "<python env>"),
        (&env.node_dir, "<node env>"),
        (&env.scripts_dir, "<scripts>"),
        (&env.models_dir, "<models>"),
        (&tools.data_dir, "<data>"),
    ] {
        text = text.replace(&folder.display().to_string(), name);
    }
    text
}

pub fn output_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("output")
}

/// A temporary folder that removes itself.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `{file_uuid}.{processor}.json` under the output folder: to a temporary name first,
/// then renamed, so a reader never sees half a document.
pub fn write_result(
    data_dir: &Path,
    file_uuid: &str,
    processor: &str,
    document: &Value,
) -> std::io::Result<PathBuf> {
    let dir = output_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{file_uuid}.{processor}.json"));
    let temporary = dir.join(format!(
        ".{file_uuid}.{processor}.json.{}",
        std::process::id()
    ));
    let text = serde_json::to_vec_pretty(document).map_err(std::io::Error::other)?;
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// Removes everything under the output folder named `{file_uuid}.…` (result files, keyframes,
/// links, folders; a link itself, never what it points to). Returns how many entries.
pub fn remove_outputs(data_dir: &Path, file_uuid: &str) -> usize {
    let prefix = format!("{file_uuid}.");
    let Ok(entries) = std::fs::read_dir(output_dir(data_dir)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(entry.path()).is_ok(),
            Ok(_) => std::fs::remove_file(entry.path()).is_ok(),
            Err(_) => false,
        })
        .count()
}

/// Removes scratch folders left by processes that are gone (a worker killed mid-step). Their
/// names end in `-{pid}-{n}`.
pub fn clear_stale_scratch(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("tmp")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if pid.is_some() && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
