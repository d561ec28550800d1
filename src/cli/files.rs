//! `reelbase files register|list`: straight to PostgreSQL with this machine's settings, or,
//! with `--url`, through a running server's API (with an API key).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use regex::Regex;
use serde_json::{Value, json};

use super::{CliError, connect_migrated};
use crate::api::files::{batch_error, register_error, registered_body};
use crate::config::Settings;
use crate::db::files::{self, STATUSES, Source};
use crate::ingest::Registrar;
use crate::ingest::batch::matching_files;

#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Register files under the media roots (with --pattern: the matching files in folders).
    Register(RegisterArgs),
    /// List registered files, newest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct Remote {
    /// Talk to a running server at this base URL instead of to PostgreSQL directly.
    #[arg(long)]
    url: Option<String>,
    /// An API key for --url; prefer the REELBASE_API_KEY variable, which stays out of `ps`.
    #[arg(long, env = "REELBASE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Files, or folders when --pattern is given.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Register the files in each folder whose names match this regular expression.
    #[arg(long)]
    pattern: Option<String>,
    /// With --pattern: descend into sub-folders too.
    #[arg(long, requires = "pattern")]
    recursive: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only files in this status (registered, queued, processing, completed, failed).
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[arg(long, default_value_t = 0)]
    offset: i64,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// A remote registration may hash a large file: give it time.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(3600);

pub async fn run(settings: &Settings, command: FilesCommand) -> Result<ExitCode, CliError> {
    match command {
        FilesCommand::Register(args) => register(settings, args).await,
        FilesCommand::List(args) => list(settings, args).await,
    }
}

async fn register(settings: &Settings, args: RegisterArgs) -> Result<ExitCode, CliError> {
    let mut failed = 0;
    let pattern = match &args.pattern {
        Some(text) => Some(Regex::new(text).map_err(|e| CliError::Usage(e.to_string()))?),
        None => None,
    };
    let direct = match args.remote.url {
        None => Some(Registrar::new(
            connect_migrated(settings).await?,
            &settings.media_roots,
            settings.ffprobe.clone(),
        )),
        Some(_) => None,
    };
    for path in &args.paths {
        let path = from_shell(path)?;
        let outcomes = match &direct {
            Some(registrar) => {
                register_here(registrar, &path, pattern.as_ref(), args.recursive).await
            }
            None => {
                let body = json!({"file_path": path, "pattern": args.pattern,
                    "recursive": args.recursive});
                register_remote(&args.remote, &body).await?
            }
        };
        for outcome in outcomes {
            match outcome {
                Ok(record) => println!("{}", describe(&record)),
                Err((path, code, message)) => {
                    failed += 1;
                    eprintln!("reelbase: {path}: {message} ({code})");
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One registration's result: the answer body, or (path, code, message).
type Outcome = Result<Value, (String, String, String)>;

async fn register_here(
    registrar: &Registrar,
    path: &str,
    pattern: Option<&Regex>,
    recursive: bool,
) -> Vec<Outcome> {
    let paths = match pattern {
        None => vec![path.to_owned()],
        Some(pattern) => match matching_files(registrar.roots(), path, pattern, recursive) {
            Ok(found) => found
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            Err(error) => {
                let error = batch_error(error);
                let (code, message) = (error.code().as_str(), error.message());
                return vec![Err((path.to_owned(), code.into(), message.into()))];
            }
        },
    };
    let mut outcomes = Vec::with_capacity(paths.len());
    for path in paths {
        outcomes.push(match registrar.register(&path, Source::Cli).await {
            Ok(registered) => Ok(registered_body(&registered)),
            Err(error) => {
                let error = register_error(error);
                Err((path, error.code().as_str().into(), error.message().into()))
            }
        });
    }
    outcomes
}

async fn register_remote(remote: &Remote, body: &Value) -> Result<Vec<Outcome>, CliError> {
    let answer = call(
        remote,
        reqwest::Method::POST,
        "/api/v1/files/register",
        Some(body),
    )
    .await?;
    let path = body["file_path"].as_str().unwrap_or_default().to_owned();
    let (status, answer) = answer;
    if !status.is_success() {
        let (code, message) = error_of(&answer);
        return Ok(vec![Err((path, code, message))]);
    }
    if answer.get("files").is_none() {
        return Ok(vec![Ok(answer)]);
    }
    let mut outcomes: Vec<Outcome> = answer["files"]
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .map(Ok)
        .collect();
    for error in answer["errors"].as_array().into_iter().flatten() {
        let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
        outcomes.push(Err((text("file_path"), text("code"), text("message"))));
    }
    Ok(outcomes)
}

async fn list(settings: &Settings, args: ListArgs) -> Result<ExitCode, CliError> {
    if !(1..=500).contains(&args.limit) || args.offset < 0 {
        return Err(CliError::Usage(
            "--limit must be 1 to 500 and --offset 0 or more".to_owned(),
        ));
    }
    if let Some(status) = &args.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(CliError::Usage(format!(
            "--status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let (records, total) = match &args.remote.url {
        None => {
            let db = connect_migrated(settings).await?;
            let (records, total) =
                files::page(&db.pool, args.status.as_deref(), args.limit, args.offset).await?;
            let records = serde_json::to_value(records).unwrap_or_default();
            (records, total)
        }
        Some(_) => {
            let query = format!(
                "/api/v1/files?limit={}&offset={}{}",
                args.limit,
                args.offset,
                args.status
                    .as_ref()
                    .map(|s| format!("&status={s}"))
                    .unwrap_or_default()
            );
            let (status, answer) = call(&args.remote, reqwest::Method::GET, &query, None).await?;
            if !status.is_success() {
                let (code, message) = error_of(&answer);
                return Err(CliError::Usage(format!(
                    "the server answered {status}: {message} ({code})"
                )));
            }
            (
                answer["files"].clone(),
                answer["total"].as_i64().unwrap_or(0),
            )
        }
    };
    let records = records.as_array().cloned().unwrap_or_default();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
    } else {
        for record in &records {
            println!("{}", describe(record));
        }
        println!("{} of {total} files", records.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per file: id, status, what it is, where it is.
fn describe(record: &Value) -> String {
    let text = |key: &str| record[key].as_str().unwrap_or("-").to_owned();
    let shape = match (record["width"].as_i64(), record["height"].as_i64()) {
        (Some(w), Some(h)) => format!(" {w}x{h}"),
        _ => String::new(),
    };
    let fps = record["fps"]
        .as_f64()
        .map(|f| format!(" {f:.2} fps"))
        .unwrap_or_default();
    let duration = record["duration"]
        .as_f64()
        .map(|d| format!(" {d:.1} s"))
        .unwrap_or_default();
    let state = match record["already_exists"].as_bool() {
        Some(true) => "exists".to_owned(),
        Some(false) => "registered".to_owned(),
        None => text("status"),
    };
    format!(
        "{}  {state:<10}  {} {}{duration}{shape}{fps}  {}",
        text("file_uuid"),
        text("file_type"),
        text("container"),
        text("file_path")
    )
}

fn error_of(answer: &Value) -> (String, String) {
    let text = |key: &str| {
        answer["error"][key]
            .as_str()
            .unwrap_or("no message")
            .to_owned()
    };
    (text("code"), text("message"))
}

async fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(reqwest::StatusCode, Value), CliError> {
    let base = remote
        .url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(REMOTE_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(key) = &remote.api_key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|error| {
        let class = crate::integrations::classify(&error).as_str();
        CliError::Unreachable(format!(
            "cannot reach {} ({class})",
            without_credentials(base)
        ))
    })?;
    let status = response.status();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    if status == reqwest::StatusCode::UNAUTHORIZED {
        let hint = if remote.api_key.is_some() {
            "the server refused the API key (wrong, expired or revoked)"
        } else {
            "the server wants an API key: set REELBASE_API_KEY or give --api-key"
        };
        return Err(CliError::Usage(hint.to_owned()));
    }
    Ok((status, answer))
}

/// A path as a shell user means it: made absolute from the working folder, with `.` and `..`
/// taken away (`..` is refused by the server, which judges the path as written).
fn from_shell(path: &std::path::Path) -> Result<String, CliError> {
    use std::path::Component;
    let absolute = std::path::absolute(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Ok(clean.to_string_lossy().into_owned())
}

/// A URL for a message, without user name or password.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_paths_lose_dots_and_urls_lose_credentials() {
        let cleaned = from_shell(std::path::Path::new("/srv/media/a/../b/./c.mp4")).unwrap();
        assert_eq!(cleaned, "/srv/media/b/c.mp4");
        assert_eq!(
            without_credentials("http://u:pw@127.0.0.1:9/"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:9"),
            "http://127.0.0.1:9"
        );
    }
}
