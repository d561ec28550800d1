//! `reelbase config`: the effective settings as TOML an operator can read (and paste into a
//! config file), each line saying where its value came from. Secrets show only whether they
//! are set; URLs show with their password masked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::sources::Source;
use super::{LogFormat, Secret, Settings};

impl Settings {
    pub fn render_redacted(&self) -> String {
        let mut out = String::new();
        for (key, value) in self.rendered_values() {
            let origin = match self.source_of(key) {
                Some(Source::Default) | None => "default".to_owned(),
                Some(Source::Env) => super::env_name(key),
                Some(Source::File(path)) => path.display().to_string(),
            };
            // Writing to a String cannot fail.
            let _ = match value {
                Some(value) => writeln!(out, "{key} = {value}  # {origin}"),
                None => writeln!(out, "# {key} is unset"),
            };
        }
        out
    }

    fn rendered_values(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("bind", Some(quote(&self.bind.to_string()))),
            ("database_url", Some(quote(&self.database_url.redacted()))),
            ("redis_url", Some(quote(&self.redis_url.redacted()))),
            (
                "qdrant_url",
                self.qdrant_url.as_ref().map(|u| quote(&u.redacted())),
            ),
            ("qdrant_api_key", secret(&self.qdrant_api_key)),
            ("data_dir", Some(path(&self.data_dir))),
            ("media_roots", Some(path_list(&self.media_roots))),
            ("scripts_dir", Some(path(&self.scripts_dir))),
            ("models_dir", Some(path(&self.models_dir))),
            ("identities_dir", Some(path(&self.identities_dir))),
            ("jwt_secret", secret(&self.jwt_secret)),
            ("tmdb_api_key", secret(&self.tmdb_api_key)),
            ("tmdb_enabled", Some(self.tmdb_enabled.to_string())),
            ("tmdb_base_url", Some(quote(&self.tmdb_base_url.redacted()))),
            (
                "sftpgo_url",
                self.sftpgo_url.as_ref().map(|u| quote(&u.redacted())),
            ),
            ("sftpgo_user", self.sftpgo_user.as_deref().map(quote)),
            ("sftpgo_password", secret(&self.sftpgo_password)),
            ("sftpgo_api_key", secret(&self.sftpgo_api_key)),
            (
                "health_interval_ms",
                Some(self.health_interval.as_millis().to_string()),
            ),
            (
                "health_timeout_ms",
                Some(self.health_timeout.as_millis().to_string()),
            ),
            (
                "health_slow_ms",
                Some(self.health_slow.as_millis().to_string()),
            ),
            ("log", Some(quote(&self.log))),
            ("log_format", Some(quote(log_format(self.log_format)))),
            ("auto_migrate", Some(self.auto_migrate.to_string())),
            ("cookie_secure", Some(self.cookie_secure.to_string())),
            ("api_key_in_query", Some(self.api_key_in_query.to_string())),
            (
                "login_max_failures",
                Some(self.login_max_failures.to_string()),
            ),
            ("redis_prefix", Some(quote(&self.redis_prefix))),
            ("ffmpeg", Some(path(&self.ffmpeg))),
            ("ffprobe", Some(path(&self.ffprobe))),
            ("watch_enabled", Some(self.watch_enabled.to_string())),
            (
                "watch_interval_ms",
                Some(self.watch_interval.as_millis().to_string()),
            ),
            (
                "watch_settle_ms",
                Some(self.watch_settle.as_millis().to_string()),
            ),
            ("workers", Some(self.workers.to_string())),
            (
                "worker_poll_ms",
                Some(self.worker_poll.as_millis().to_string()),
            ),
            (
                "worker_stale_ms",
                Some(self.worker_stale.as_millis().to_string()),
            ),
            (
                "process_timeout_ms",
                Some(self.process_timeout.as_millis().to_string()),
            ),
            ("auto_process", Some(self.auto_process.to_string())),
            ("tesseract", Some(path(&self.tesseract))),
            ("python_env", Some(path(&self.python_env))),
            ("node_env", Some(path(&self.node_env))),
            ("yolo_fps", Some(self.yolo_fps.to_string())),
            ("pose_fps", Some(self.pose_fps.to_string())),
        ]
    }
}

fn quote(text: &str) -> String {
    // A JSON string literal is also a valid TOML basic string.
    serde_json::Value::String(text.to_owned()).to_string()
}

fn secret(value: &Option<Secret>) -> Option<String> {
    value.as_ref().map(|s| quote(&s.to_string()))
}

fn path(value: &Path) -> String {
    quote(&value.display().to_string())
}

fn path_list(values: &[PathBuf]) -> String {
    let items: Vec<String> = values.iter().map(|p| path(p)).collect();
    format!("[{}]", items.join(", "))
}

fn log_format(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Pretty => "pretty",
        LogFormat::Json => "json",
    }
}
