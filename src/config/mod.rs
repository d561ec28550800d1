//! The settings tree. Defaults, then an optional TOML file (`--config` or `REELBASE_CONFIG`),
//! then `REELBASE_*` environment variables; the names are a contract listed in DESIGN.md.
//! Every value is checked at start, and an invalid one is refused with the name the operator
//! wrote and what was expected, never with the value of a secret.

mod parse;
mod render;
mod secret;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use secret::{Secret, ServiceUrl};
use sources::{Layers, Origin};
pub use sources::{Source, env_name};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: expected {expected}{}", got.as_ref().map(|g| format!(", got {g:?}")).unwrap_or_default())]
    Invalid {
        origin: String,
        expected: String,
        got: Option<String>,
    },
    #[error("cannot read config file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("unknown setting `{key}` in {}", path.display())]
    UnknownKey { path: PathBuf, key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The effective configuration of one reelbase process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: ServiceUrl,
    pub redis_url: ServiceUrl,
    pub qdrant_url: Option<ServiceUrl>,
    pub qdrant_api_key: Option<Secret>,
    pub data_dir: PathBuf,
    pub media_roots: Vec<PathBuf>,
    pub scripts_dir: PathBuf,
    pub models_dir: PathBuf,
    pub identities_dir: PathBuf,
    pub jwt_secret: Option<Secret>,
    pub tmdb_api_key: Option<Secret>,
    pub tmdb_enabled: bool,
    pub tmdb_base_url: ServiceUrl,
    pub sftpgo_url: Option<ServiceUrl>,
    pub sftpgo_user: Option<String>,
    pub sftpgo_password: Option<Secret>,
    pub sftpgo_api_key: Option<Secret>,
    /// Period of the background health checks.
    pub health_interval: Duration,
    /// Time one check may take before it counts as failed.
    pub health_timeout: Duration,
    /// A check that answers but takes longer than this counts as `degraded`.
    pub health_slow: Duration,
    /// A `tracing` filter directive, such as `info` or `reelbase=debug,tower_http=info`.
    pub log: String,
    pub log_format: LogFormat,
    /// Apply pending migrations when `serve` (and the user and key commands) start.
    pub auto_migrate: bool,
    /// Mark the session cookie `Secure` (set it when reelbase is served over HTTPS).
    pub cookie_secure: bool,
    /// Accept an API key in the `api_key` query parameter (for clients that cannot set
    /// headers). Off by default: URLs end up in proxies' and browsers' histories.
    pub api_key_in_query: bool,
    /// Failed logins allowed per username in the lockout window (four times that per client).
    pub login_max_failures: u32,
    /// Prepended to every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// The ffmpeg and ffprobe programs (names looked up in `PATH`, or paths).
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Register new files that appear under the media roots.
    pub watch_enabled: bool,
    /// How often the watcher looks over the media roots.
    pub watch_interval: Duration,
    /// How long a new file must stay the same size and mtime before it counts as complete.
    pub watch_settle: Duration,
    /// Pipeline steps run at once by the worker inside `serve` (0: no worker there).
    pub workers: u32,
    /// How often an idle worker looks for work when no notification arrives.
    pub worker_poll: Duration,
    /// A running step whose worker has not beaten for this long is given to another worker.
    pub worker_stale: Duration,
    /// Longest one external program may run for one step.
    pub process_timeout: Duration,
    /// Queue every processor that can run here for each newly registered file.
    pub auto_process: bool,
    /// The tesseract program (for `ocr`).
    pub tesseract: PathBuf,
    /// The Python environment the script processors run in (`bin/python` inside it).
    pub python_env: PathBuf,
    /// The Node.js packages of the script processors written in JavaScript (`node_modules`
    /// inside it).
    pub node_env: PathBuf,
    /// Frames per second of video that `yolo` looks at.
    pub yolo_fps: f64,
    /// Frames per second of video that `pose` looks at.
    pub pose_fps: f64,
    /// Where each value came from, for `reelbase config`.
    sources: Vec<(&'static str, Source)>,
}

/// What the loader found besides the settings: things worth a warning once logging is up.
#[derive(Debug, Default)]
pub struct LoadNotes {
    pub unknown_env: Vec<String>,
}

const DEFAULTS: &[(&str, &str)] = &[
    ("bind", "127.0.0.1:3002"),
    ("database_url", "postgres:///reelbase"),
    ("redis_url", "redis://127.0.0.1:6379"),
    ("data_dir", "./data"),
    ("scripts_dir", "./scripts"),
    ("models_dir", "./models"),
    ("tmdb_enabled", "false"),
    ("tmdb_base_url", "https://api.themoviedb.org"),
    ("health_interval_ms", "5000"),
    ("health_timeout_ms", "2000"),
    ("health_slow_ms", "1000"),
    ("log", "info"),
    ("log_format", "pretty"),
    ("auto_migrate", "true"),
    ("cookie_secure", "false"),
    ("api_key_in_query", "false"),
    ("login_max_failures", "5"),
    ("redis_prefix", "reelbase:"),
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffprobe"),
    ("watch_enabled", "true"),
    ("watch_interval_ms", "2000"),
    ("watch_settle_ms", "5000"),
    ("workers", "2"),
    ("worker_poll_ms", "2000"),
    ("worker_stale_ms", "30000"),
    ("process_timeout_ms", "3600000"),
    ("auto_process", "false"),
    ("tesseract", "tesseract"),
    ("python_env", "./.venv"),
    ("node_env", "./.node"),
    ("yolo_fps", "3"),
    ("pose_fps", "2"),
];

impl Settings {
    /// Loads settings from an explicit environment (a list of variables) so that tests and the
    /// binary use the same path. `config_file` wins over `REELBASE_CONFIG` in that environment.
    pub fn load(
        config_file: Option<PathBuf>,
        env: &[(String, String)],
    ) -> Result<(Self, LoadNotes), ConfigError> {
        let mut layers = Layers::default();
        for (key, value) in DEFAULTS {
            let key = sources::KEYS
                .iter()
                .copied()
                .find(|k| k == key)
                .expect("known key");
            layers.set(key, (*value).to_owned(), Source::Default);
        }
        let file = config_file.or_else(|| {
            env.iter()
                .find(|(name, value)| name == "REELBASE_CONFIG" && !value.trim().is_empty())
                .map(|(_, v)| PathBuf::from(v))
        });
        if let Some(path) = file {
            layers.add_file(&path)?;
        }
        let notes = LoadNotes {
            unknown_env: layers.add_env(env),
        };
        Ok((Self::resolve(&layers)?, notes))
    }

    /// Loads from the process environment.
    pub fn from_process_env(
        config_file: Option<PathBuf>,
    ) -> Result<(Self, LoadNotes), ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            match value.into_string() {
                Ok(value) => env.push((name, value)),
                // A setting that cannot be read must not silently fall back to its default.
                Err(_) if name.starts_with("REELBASE_") => {
                    return Err(ConfigError::Invalid {
                        origin: name,
                        expected: "UTF-8 text".to_owned(),
                        got: None,
                    });
                }
                Err(_) => {}
            }
        }
        Self::load(config_file, &env)
    }

    fn resolve(layers: &Layers) -> Result<Self, ConfigError> {
        let p = parse::Parser::new(layers);
        let data_dir: PathBuf = p.required("data_dir", parse::path)?;
        let media_roots = p
            .optional("media_roots", parse::path_list)?
            .unwrap_or_else(|| vec![data_dir.join("media")]);
        let identities_dir = p
            .optional("identities_dir", parse::path)?
            .unwrap_or_else(|| data_dir.join("identities"));
        let health_timeout = p.required("health_timeout_ms", parse::millis)?;
        let health_interval = p.required("health_interval_ms", parse::millis)?;
        let health_slow = p.required("health_slow_ms", parse::millis)?;
        if health_slow > health_timeout {
            return Err(p.invalid("health_slow_ms", "at most REELBASE_HEALTH_TIMEOUT_MS"));
        }
        Ok(Self {
            bind: p.required("bind", parse::socket_addr)?,
            database_url: p.required("database_url", parse::postgres_url)?,
            redis_url: p.required("redis_url", parse::redis_url)?,
            qdrant_url: p.optional("qdrant_url", parse::http_url)?,
            qdrant_api_key: p.optional("qdrant_api_key", parse::secret)?,
            media_roots,
            scripts_dir: p.required("scripts_dir", parse::path)?,
            models_dir: p.required("models_dir", parse::path)?,
            identities_dir,
            data_dir,
            jwt_secret: p.optional("jwt_secret", parse::jwt_secret)?,
            tmdb_api_key: p.optional("tmdb_api_key", parse::secret)?,
            tmdb_enabled: p.required("tmdb_enabled", parse::boolean)?,
            tmdb_base_url: p.required("tmdb_base_url", parse::http_url)?,
            sftpgo_url: p.optional("sftpgo_url", parse::http_url)?,
            sftpgo_user: p.optional("sftpgo_user", parse::text)?,
            sftpgo_password: p.optional("sftpgo_password", parse::secret)?,
            sftpgo_api_key: p.optional("sftpgo_api_key", parse::secret)?,
            health_interval,
            health_timeout,
            health_slow,
            log: p.required("log", parse::log_filter)?,
            log_format: p.required("log_format", parse::log_format)?,
            auto_migrate: p.required("auto_migrate", parse::boolean)?,
            cookie_secure: p.required("cookie_secure", parse::boolean)?,
            api_key_in_query: p.required("api_key_in_query", parse::boolean)?,
            login_max_failures: p.required("login_max_failures", parse::count)?,
            redis_prefix: p.required("redis_prefix", parse::text)?,
            ffmpeg: p.required("ffmpeg", parse::path)?,
            ffprobe: p.required("ffprobe", parse::path)?,
            watch_enabled: p.required("watch_enabled", parse::boolean)?,
            watch_interval: p.required("watch_interval_ms", parse::millis)?,
            watch_settle: p.required("watch_settle_ms", parse::millis)?,
            workers: p.required("workers", parse::count_or_zero)?,
            worker_poll: p.required("worker_poll_ms", parse::millis)?,
            worker_stale: p.required("worker_stale_ms", parse::millis)?,
            process_timeout: p.required("process_timeout_ms", parse::millis)?,
            auto_process: p.required("auto_process", parse::boolean)?,
            tesseract: p.required("tesseract", parse::path)?,
            python_env: p.required("python_env", parse::path)?,
            node_env: p.required("node_env", parse::path)?,
            yolo_fps: p.required("yolo_fps", parse::sample_rate)?,
            pose_fps: p.required("pose_fps", parse::sample_rate)?,
            sources: p.sources(),
        })
    }

    /// Where a setting's value came from (default, file or environment).
    pub fn source_of(&self, key: &str) -> Option<&Source> {
        self.sources
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, source)| source)
    }
}

fn origin_text(key: &str, source: &Source) -> String {
    Origin { key, source }.to_string()
}

#[cfg(test)]
mod tests;
