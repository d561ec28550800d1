//! The layers under the settings: built-in defaults, then an optional TOML file, then
//! `REELBASE_*` environment variables. Each raw value remembers where it came from, so an
//! invalid one can be reported by the name the operator actually wrote.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Every setting, by its file key. The environment variable is `REELBASE_` + the key in capitals.
pub const KEYS: &[&str] = &[
    "bind",
    "database_url",
    "redis_url",
    "qdrant_url",
    "qdrant_api_key",
    "data_dir",
    "media_roots",
    "scripts_dir",
    "models_dir",
    "identities_dir",
    "jwt_secret",
    "tmdb_api_key",
    "tmdb_enabled",
    "tmdb_base_url",
    "sftpgo_url",
    "sftpgo_user",
    "sftpgo_password",
    "sftpgo_api_key",
    "health_interval_ms",
    "health_timeout_ms",
    "health_slow_ms",
    "log",
    "log_format",
    "auto_migrate",
    "cookie_secure",
    "api_key_in_query",
    "login_max_failures",
    "redis_prefix",
    "ffmpeg",
    "ffprobe",
    "watch_enabled",
    "watch_interval_ms",
    "watch_settle_ms",
    "workers",
    "worker_poll_ms",
    "worker_stale_ms",
    "process_timeout_ms",
    "auto_process",
    "tesseract",
    "python_env",
    "node_env",
    "yolo_fps",
    "pose_fps",
];

/// Keys whose values are never echoed back, not even in an error message.
pub const SECRET_KEYS: &[&str] = &[
    "qdrant_api_key",
    "jwt_secret",
    "tmdb_api_key",
    "sftpgo_password",
    "sftpgo_api_key",
];

/// Environment variables that belong to reelbase but are not settings.
const NON_SETTING_VARS: &[&str] = &["REELBASE_CONFIG", "REELBASE_GIT_HASH", "REELBASE_API_KEY"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env,
}

/// Where a value came from, named the way the operator wrote it.
pub struct Origin<'a> {
    pub key: &'a str,
    pub source: &'a Source,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Source::Default => write!(f, "default for {}", env_name(self.key)),
            Source::File(path) => write!(f, "`{}` in {}", self.key, path.display()),
            Source::Env => f.write_str(&env_name(self.key)),
        }
    }
}

pub fn env_name(key: &str) -> String {
    format!("REELBASE_{}", key.to_ascii_uppercase())
}

/// Raw string values keyed by setting name, with their source.
#[derive(Debug, Default)]
pub struct Layers {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Layers {
    pub fn set(&mut self, key: &'static str, value: String, source: Source) {
        self.values.insert(key, (value, source));
    }

    pub fn get(&self, key: &str) -> Option<(&str, &Source)> {
        self.values
            .get(key)
            .map(|(value, source)| (value.as_str(), source))
    }

    /// Reads a TOML file of flat `key = value` pairs. Unknown keys are refused so a typo is
    /// caught at start rather than silently ignored.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
            // Say where: the line of the error, counted from the byte offset of its span.
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            let place = line.map(|n| format!("line {n}: ")).unwrap_or_default();
            ConfigError::File {
                path: path.to_owned(),
                reason: format!("{place}{}", error.message()),
            }
        })?;
        for (name, value) in table {
            let Some(key) = KEYS.iter().copied().find(|key| *key == name) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: name,
                });
            };
            let text = toml_value(key, &value).ok_or_else(|| ConfigError::Invalid {
                origin: format!("`{key}` in {}", path.display()),
                expected: expected_toml_type(key).to_owned(),
                got: None,
            })?;
            self.set(key, text, Source::File(path.to_owned()));
        }
        Ok(())
    }

    /// Applies `REELBASE_*` variables. Returns the names of unknown ones, which are most likely
    /// typos the operator wants to hear about.
    pub fn add_env(&mut self, env: &[(String, String)]) -> Vec<String> {
        let mut unknown = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("REELBASE_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            match KEYS.iter().copied().find(|key| *key == lower) {
                Some(key) => self.set(key, value.clone(), Source::Env),
                None if NON_SETTING_VARS.contains(&name.as_str()) => {}
                None => unknown.push(name.clone()),
            }
        }
        unknown
    }
}

/// A TOML value as the same text an environment variable would hold. Only `media_roots`
/// takes a list (of strings, joined with `:` like `PATH`); secrets and URLs must be strings.
fn toml_value(key: &str, value: &toml::Value) -> Option<String> {
    let text_only = SECRET_KEYS.contains(&key) || key.ends_with("_url");
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Array(items) if key == "media_roots" && !items.is_empty() => {
            let parts: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
            parts.map(|parts| parts.join(":"))
        }
        _ if text_only || key == "media_roots" => None,
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn expected_toml_type(key: &str) -> &'static str {
    match key {
        "media_roots" => "a non-empty list of folder names, or one string",
        _ if SECRET_KEYS.contains(&key) || key.ends_with("_url") => "a string",
        _ => "a string, whole number or boolean",
    }
}
