//! `/api/v1/files`: register files already on the server's disk (one, or a folder's worth by
//! pattern), list, look up and delete their records.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use regex::RegexBuilder;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::JsonBody;
use super::{ApiError, AppState, ErrorCode};
use crate::db::files::{self, FileRecord, STATUSES, Source};
use crate::ingest::batch::{self, BatchError};
use crate::ingest::{PathError, RegisterError, Registered, is_file_uuid};
use crate::pipeline::context::remove_outputs;

/// Largest compiled pattern accepted, so a pathological one cannot use up memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    file_path: String,
    /// With a folder in `file_path`: register the files in it whose names match.
    pattern: Option<String>,
    /// With `pattern`: descend into sub-folders too.
    #[serde(default)]
    recursive: bool,
}

pub async fn register(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let Some(pattern) = request.pattern else {
        let registered = state
            .registrar
            .register(&request.file_path, Source::Api)
            .await
            .map_err(register_error)?;
        return Ok(registered_response(&registered));
    };
    let pattern = RegexBuilder::new(&pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|error| ApiError::new(ErrorCode::InvalidPattern, pattern_message(&error)))?;
    let roots = state.registrar.roots().clone();
    let dir = request.file_path.clone();
    let listed = pattern.clone();
    let paths = tokio::task::spawn_blocking(move || {
        batch::matching_files(&roots, &dir, &listed, request.recursive)
    })
    .await
    .map_err(|error| ApiError::internal("listing a folder panicked", &error))?
    .map_err(batch_error)?;

    let mut files = Vec::new();
    let mut errors = Vec::new();
    let (mut created, mut existing) = (0, 0);
    for path in &paths {
        let text = path.to_string_lossy();
        match state.registrar.register(&text, Source::Api).await {
            Ok(registered) => {
                if registered.already_exists {
                    existing += 1;
                } else {
                    created += 1;
                }
                files.push(registered_body(&registered));
            }
            Err(error) => {
                let error = register_error(error);
                errors.push(json!({"file_path": text, "code": error.code().as_str(),
                    "message": error.message()}));
            }
        }
    }
    let body = json!({
        "success": errors.is_empty(),
        "file_path": request.file_path,
        // Echoed only when short: a long pattern is the caller's own and noise here.
        "pattern": (pattern.as_str().len() <= 200).then(|| pattern.as_str()),
        "matched": paths.len(),
        "registered": created,
        "already_existing": existing,
        "failed": errors.len(),
        "files": files,
        "errors": errors,
    });
    Ok(Json(body).into_response())
}

fn registered_response(registered: &Registered) -> Response {
    let status = if registered.already_exists {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(registered_body(registered))).into_response()
}

/// The registration answer: the record, whether it existed, and a message.
pub fn registered_body(registered: &Registered) -> Value {
    let mut body = record_json(&registered.record);
    body["success"] = json!(true);
    body["already_exists"] = json!(registered.already_exists);
    body["message"] = json!(registered.message());
    body
}

fn record_json(record: &FileRecord) -> Value {
    serde_json::to_value(record).unwrap_or_default()
}

/// The API's answer to a failed registration: a stable code per cause.
pub fn register_error(error: RegisterError) -> ApiError {
    match error {
        RegisterError::Path(error) => path_error(error),
        RegisterError::NotMedia(reason) => ApiError::new(ErrorCode::NotMedia, reason),
        RegisterError::Changing => ApiError::new(ErrorCode::FileChanging, error.to_string()),
        RegisterError::ProbeUnavailable(reason) => {
            ApiError::unavailable("ffprobe cannot run", &reason)
        }
        RegisterError::Database(error) => {
            ApiError::unavailable("registering a file needs PostgreSQL", &error)
        }
        RegisterError::Cancelled => ApiError::new(
            ErrorCode::Unavailable,
            "the server is stopping; register the file again",
        ),
        RegisterError::Read(error) => {
            ApiError::internal("reading a file to hash it failed", &error)
        }
        RegisterError::Deleted => ApiError::new(ErrorCode::Conflict, error.to_string()),
    }
}

fn path_error(error: PathError) -> ApiError {
    let code = match error {
        PathError::Invalid(_) => ErrorCode::InvalidPath,
        PathError::Outside => ErrorCode::OutsideMediaRoots,
        PathError::NotFound => ErrorCode::FileNotFound,
        PathError::NotAFile(_) => ErrorCode::NotAFile,
        PathError::NotADirectory => ErrorCode::NotADirectory,
        PathError::NotReadable => ErrorCode::NotReadable,
    };
    ApiError::new(code, error.to_string())
}

pub fn batch_error(error: BatchError) -> ApiError {
    match error {
        BatchError::Path(error) => path_error(error),
        BatchError::TooMany => ApiError::new(ErrorCode::BatchTooLarge, error.to_string()),
        BatchError::List(_) => ApiError::new(ErrorCode::NotReadable, "cannot list the folder"),
    }
}

/// The regex crate's message without the pattern echoed back in full.
fn pattern_message(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
        other => {
            let text = other.to_string();
            let last = text.lines().last().unwrap_or("invalid pattern");
            format!("invalid pattern: {}", last.trim_start_matches("error: "))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|_| bad_query("the query string is malformed"))?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(status) if STATUSES.contains(&status) => Some(status),
        Some(_) => {
            return Err(bad_query(&format!(
                "`status` must be one of {}",
                STATUSES.join(", ")
            )));
        }
    };
    let limit = whole(query.limit.as_deref(), "limit", 1, MAX_PAGE)?.unwrap_or(DEFAULT_PAGE);
    let offset = whole(query.offset.as_deref(), "offset", 0, i64::MAX)?.unwrap_or(0);
    let (records, total) = files::page(&state.db.pool, status, limit, offset)
        .await
        .map_err(|error| ApiError::unavailable("listing files needs PostgreSQL", &error))?;
    Ok(Json(json!({
        "files": records,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

fn whole(raw: Option<&str>, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(bad_query(&format!(
            "`{name}` must be a whole number from {min} to {max}"
        ))),
    }
}

fn bad_query(message: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

pub async fn get(
    State(state): State<AppState>,
    Path(file_uuid): Path<String>,
) -> Result<Json<FileRecord>, ApiError> {
    check_uuid(&file_uuid)?;
    files::get(&state.db.pool, &file_uuid)
        .await
        .map_err(|error| ApiError::unavailable("reading a file record needs PostgreSQL", &error))?
        .map(Json)
        .ok_or_else(no_such_file)
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    file_name: Option<String>,
}

/// Records whose file name is exactly `file_name`, newest first; 404 when there are none.
pub async fn lookup(
    State(state): State<AppState>,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|_| bad_query("the query string is malformed"))?;
    let Some(name) = query.file_name.filter(|name| !name.is_empty()) else {
        return Err(bad_query("give `file_name`"));
    };
    if name.contains('\0') || name.len() > 255 {
        return Err(bad_query("`file_name` is not a possible file name"));
    }
    let records = files::by_name(&state.db.pool, &name)
        .await
        .map_err(|error| ApiError::unavailable("looking up files needs PostgreSQL", &error))?;
    if records.is_empty() {
        return Err(no_such_file());
    }
    Ok(Json(json!({"count": records.len(), "files": records})))
}

/// Deletes reelbase's record of a file and its analysis outputs. The source video stays.
pub async fn delete(
    State(state): State<AppState>,
    Path(file_uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_uuid(&file_uuid)?;
    let record = files::delete(&state.db.pool, &file_uuid)
        .await
        .map_err(|error| ApiError::unavailable("deleting a file record needs PostgreSQL", &error))?
        .ok_or_else(no_such_file)?;
    // Rows went with the record; the chunk vectors live in the vector store.
    if let Err(error) =
        crate::pipeline::visual_chunk::forget(&state.library.tools().vectors, &file_uuid).await
    {
        tracing::warn!(file_uuid = %record.file_uuid, %error,
            "visual chunk vectors of a deleted file stay in the vector store (search skips them)");
    }
    let data_dir = state.settings.data_dir.clone();
    let uuid = file_uuid.clone();
    let removed = tokio::task::spawn_blocking(move || remove_outputs(&data_dir, &uuid))
        .await
        .unwrap_or(0);
    tracing::info!(file_uuid = %record.file_uuid, outputs_removed = removed, "file record deleted");
    Ok(Json(json!({
        "success": true,
        "file_uuid": record.file_uuid,
        "file_path": record.file_path,
        "outputs_removed": removed,
        "message": "the record and its outputs are deleted; the source file is untouched",
    })))
}

pub(crate) fn check_uuid(file_uuid: &str) -> Result<(), ApiError> {
    if is_file_uuid(file_uuid) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidFileUuid,
            "a file_uuid is 32 lowercase hex digits",
        ))
    }
}

fn no_such_file() -> ApiError {
    ApiError::new(ErrorCode::FileNotFound, "no such file is registered")
}
