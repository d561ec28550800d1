//! The pipeline over HTTP: queue a file's processing, follow jobs and per-file progress, read
//! results, retry a failed step.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::files::check_uuid;
use super::json::JsonBody;
use super::{ApiError, AppState, ErrorCode};
use crate::db::jobs::{self, JOB_STATUSES};
use crate::db::{files, results};
use crate::pipeline::registry;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessRequest {
    processors: Option<Vec<String>>,
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ApiError::unavailable("the pipeline needs PostgreSQL", &error)
}

/// Queues a job. Without `processors`, every processor that can run here; a named one that
/// is unknown or cannot run here is refused with the list of those that can.
pub async fn process(
    State(state): State<AppState>,
    Path(file_uuid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_uuid(&file_uuid)?;
    // The body is optional: none (or `{}`) asks for every processor that can run here.
    let request: ProcessRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ProcessRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::new(ErrorCode::InvalidJson, error.to_string()))?
    };
    let pool = &state.db.pool;
    let file = files::get(pool, &file_uuid)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::new(ErrorCode::FileNotFound, "no such file is registered"))?;
    let ready = state.reports.ready_processors().await;
    if request.processors.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`processors` is empty: name at least one, or leave it out for every one that applies",
        ));
    }
    let explicit = request.processors.is_some();
    let requested: Vec<String> = match request.processors {
        Some(names) => names,
        // By default, what applies to this file: no picture processors for audio.
        _ => registry::applicable(&ready, &file.file_type)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let unknown: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|n| !registry::is_known(n))
        .collect();
    if !unknown.is_empty() {
        let shown: Vec<String> = unknown
            .iter()
            .take(5)
            .map(|n| n.chars().take(40).collect())
            .collect();
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "unknown processors: {}; known: {}",
                shown.join(", "),
                registry::names().join(", ")
            ),
        ));
    }
    if requested.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ProcessorUnavailable,
            format!(
                "none of the processors that can run here ({}) applies to an {} file",
                ready.join(", "),
                file.file_type
            ),
        ));
    }
    let names: Vec<&str> = requested.iter().map(String::as_str).collect();
    if explicit {
        let applies = registry::applicable(&names, &file.file_type);
        let not_applying: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !applies.contains(n))
            .collect();
        if !not_applying.is_empty() {
            return Err(ApiError::new(
                ErrorCode::ProcessorUnavailable,
                format!(
                    "this is an {} file, and these need a picture: {}",
                    file.file_type,
                    not_applying.join(", ")
                ),
            ));
        }
    }
    // A processor whose input is being made anew is made anew too when it has a result
    // already (a new transcript needs new speakers), so no stale result is left standing.
    let mut names = names;
    let earlier = results::processors_of(pool, &file_uuid)
        .await
        .map_err(unavailable)?;
    for later in registry::dependents_of(&names) {
        if earlier.iter().any(|p| p == later) && ready.contains(&later) && !names.contains(&later) {
            names.push(later);
        }
    }
    let plan = registry::plan(&names);
    let missing: Vec<&str> = plan
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !ready.contains(n))
        .collect();
    if plan.is_empty() || !missing.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ProcessorUnavailable,
            format!(
                "cannot run here: {}; ready here: {}",
                if missing.is_empty() {
                    "nothing was asked".to_owned()
                } else {
                    missing.join(", ")
                },
                if ready.is_empty() {
                    "none".to_owned()
                } else {
                    ready.join(", ")
                }
            ),
        ));
    }
    let job = jobs::create(pool, &file_uuid, &plan)
        .await
        .map_err(unavailable)?;
    let body = json!({"success": true, "job_id": job.id, "file_uuid": job.file_uuid,
        "processors": job.processors, "status": job.status});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            "`limit` and `offset` must be whole numbers",
        )
    })?;
    let status = query.status.as_deref().filter(|s| !s.is_empty());
    if let Some(status) = status
        && !JOB_STATUSES.contains(&status)
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("`status` must be one of {}", JOB_STATUSES.join(", ")),
        ));
    }
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`limit` must be 1 to 500 and `offset` 0 or more",
        ));
    }
    let (jobs, total) = jobs::page(&state.db.pool, status, limit, offset)
        .await
        .map_err(unavailable)?;
    Ok(Json(
        json!({"jobs": jobs, "total": total, "limit": limit, "offset": offset}),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "a job id is a whole number"))?;
    let pool = &state.db.pool;
    let job = jobs::get(pool, id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such job"))?;
    let steps = jobs::steps(pool, id).await.map_err(unavailable)?;
    let mut body = serde_json::to_value(&job).unwrap_or_default();
    body["steps"] = serde_json::to_value(&steps).unwrap_or_default();
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    processor: String,
}

/// Puts a failed step (and the steps skipped because of it) back in the queue.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<RetryRequest>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "a job id is a whole number"))?;
    if !registry::is_known(&request.processor) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("unknown processor; known: {}", registry::names().join(", ")),
        ));
    }
    match jobs::retry(&state.db.pool, id, &request.processor)
        .await
        .map_err(unavailable)?
    {
        jobs::Retry::Done => {}
        jobs::Retry::NoSuchJob => return Err(ApiError::new(ErrorCode::NotFound, "no such job")),
        jobs::Retry::NotFailed => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "this job has no failed step by that name (retry the step that failed; the \
                 steps skipped because of it come with it)",
            ));
        }
    }
    let body = json!({"success": true, "job_id": id, "processor": request.processor});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The newest job of a file: each processor's state and an overall percentage (finished steps
/// over all steps).
pub async fn progress(
    State(state): State<AppState>,
    Path(file_uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_uuid(&file_uuid)?;
    let pool = &state.db.pool;
    // The job first: a job and its file change status in one transaction, so a file read
    // after the job is never older than it.
    let job = jobs::latest_for_file(pool, &file_uuid)
        .await
        .map_err(unavailable)?;
    let steps = match &job {
        Some(job) => jobs::steps(pool, job.id).await.map_err(unavailable)?,
        None => Vec::new(),
    };
    let file = files::get(pool, &file_uuid)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::new(ErrorCode::FileNotFound, "no such file is registered"))?;
    let Some(job) = job else {
        return Ok(Json(json!({"file_uuid": file_uuid, "status": file.status,
            "job_id": null, "percent": 0, "processors": {}})));
    };
    let done = steps
        .iter()
        .filter(|s| matches!(s.status.as_str(), "completed" | "failed" | "skipped"))
        .count();
    let percent = (100 * done).checked_div(steps.len()).unwrap_or(0);
    let processors: serde_json::Map<String, Value> = steps
        .iter()
        .map(|s| {
            (
                s.processor.clone(),
                serde_json::to_value(s).unwrap_or_default(),
            )
        })
        .collect();
    Ok(Json(json!({
        "file_uuid": file_uuid,
        "status": file.status,
        "job_id": job.id,
        "job_status": job.status,
        "percent": percent,
        "processors": processors,
    })))
}

pub async fn result(
    State(state): State<AppState>,
    Path((file_uuid, processor)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_uuid(&file_uuid)?;
    if !registry::is_known(&processor) {
        return Err(ApiError::new(ErrorCode::NotFound, "no such processor"));
    }
    let document = results::document(&state.db.pool, &file_uuid, &processor)
        .await
        .map_err(unavailable)?;
    document.map(Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no result of this processor for this file",
        )
    })
}
