//! The identity library over HTTP: list, get, create (name and photos), rename, merge,
//! delete; where a person appears; a file's face tracks, bound or unbound by hand.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::files::check_uuid;
use super::json::JsonBody;
use super::{ApiError, AppState, ErrorCode};
use crate::identities::library::{self, LibraryError, NewIdentity};
use crate::identities::tmdb_import::{self, DEFAULT_LIMIT, ImportError, MAX_LIMIT, Title};
use crate::integrations::tmdb_people::{TmdbError, TmdbPeople};

impl From<LibraryError> for ApiError {
    fn from(error: LibraryError) -> Self {
        match error {
            LibraryError::NotFound => ApiError::new(ErrorCode::NotFound, "no such identity"),
            LibraryError::Invalid(m) => ApiError::new(ErrorCode::BadRequest, m),
            LibraryError::InvalidPhoto(m) => ApiError::new(ErrorCode::InvalidPhoto, m),
            LibraryError::NoFace(m) => ApiError::new(ErrorCode::NoFace, m),
            LibraryError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            LibraryError::Faces(reason) => {
                ApiError::unavailable("the face models could not read the photos", &reason)
            }
            LibraryError::Io(e) => ApiError::unavailable("the identity folder is not writable", &e),
            LibraryError::Database(e) => ApiError::unavailable("identities need PostgreSQL", &e),
            LibraryError::Store(e) => ApiError::unavailable("identities need the vector store", &e),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = query.map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            "`limit` and `offset` must be whole numbers",
        )
    })?;
    let (limit, offset) = (page.limit.unwrap_or(50), page.offset.unwrap_or(0));
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`limit` must be 1 to 500 and `offset` 0 or more",
        ));
    }
    let (identities, total) = library::list(&state.db.pool, limit, offset)
        .await
        .map_err(LibraryError::from)?;
    Ok(Json(
        json!({"identities": identities, "total": total, "limit": limit, "offset": offset}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    /// Base64 (standard alphabet) JPEG or PNG photos of the person.
    photos: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let photos = request
        .photos
        .iter()
        .enumerate()
        .map(|(i, text)| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidPhoto,
                        format!("photo {} is not base64", i + 1),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let new = NewIdentity {
        name: request.name,
        source: "manual".to_owned(),
        tmdb_id: None,
        photos,
    };
    let created = state.library.create(&state.db.pool, new).await?;
    Ok((StatusCode::CREATED, Json(json!(created))))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.library.view(&state.db.pool, &id).await?;
    Ok(Json(json!(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<RenameRequest>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .library
        .rename(&state.db.pool, &id, &request.name)
        .await?;
    Ok(Json(json!(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    from: Vec<String>,
}

pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<MergeRequest>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .library
        .merge(&state.db.pool, &id, &request.from)
        .await?;
    Ok(Json(json!(view)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.library.delete(&state.db.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn appearances(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.library.view(&state.db.pool, &id).await?;
    let found = library::appearances(&state.db.pool, &id).await?;
    Ok(Json(json!({"identity": view, "appearances": found})))
}

/// A file's face tracks as they stand now (names follow the library).
pub async fn file_faces(
    State(state): State<AppState>,
    Path(file_uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_uuid(&file_uuid)?;
    let known = crate::db::files::get(&state.db.pool, &file_uuid)
        .await
        .map_err(LibraryError::from)?;
    if known.is_none() {
        return Err(ApiError::new(
            ErrorCode::FileNotFound,
            "no such file is registered",
        ));
    }
    let rows = sqlx::query(
        "SELECT t.track, t.shot, t.start_time, t.end_time, t.detections, t.cluster, \
         t.identity_id, i.name, t.distance, t.bound FROM face_tracks t \
         LEFT JOIN identities i ON i.id = t.identity_id \
         WHERE t.file_uuid = $1 ORDER BY t.start_time, t.track",
    )
    .bind(&file_uuid)
    .fetch_all(&state.db.pool)
    .await
    .map_err(LibraryError::from)?;
    let tracks = rows
        .iter()
        .map(|row| {
            let name: Option<String> = row.try_get("name")?;
            let cluster: String = row.try_get("cluster")?;
            Ok(json!({
                "track": row.try_get::<i32, _>("track")?,
                "shot": row.try_get::<Option<i32>, _>("shot")?,
                "start_time": row.try_get::<f64, _>("start_time")?,
                "end_time": row.try_get::<f64, _>("end_time")?,
                "detections": row.try_get::<i32, _>("detections")?,
                "identity_id": row.try_get::<Option<String>, _>("identity_id")?,
                "label": name.clone().unwrap_or(cluster),
                "name": name,
                "distance": row.try_get::<Option<f64>, _>("distance")?,
                "bound": row.try_get::<bool, _>("bound")?,
            }))
        })
        .collect::<Result<Vec<Value>, sqlx::Error>>()
        .map_err(LibraryError::from)?;
    Ok(Json(json!({"file_uuid": file_uuid, "tracks": tracks})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    identity_id: String,
}

pub async fn bind(
    State(state): State<AppState>,
    Path((file_uuid, track)): Path<(String, String)>,
    JsonBody(request): JsonBody<BindRequest>,
) -> Result<StatusCode, ApiError> {
    set_binding(&state, &file_uuid, &track, Some(&request.identity_id)).await
}

pub async fn unbind(
    State(state): State<AppState>,
    Path((file_uuid, track)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_binding(&state, &file_uuid, &track, None).await
}

async fn set_binding(
    state: &AppState,
    file_uuid: &str,
    track: &str,
    identity: Option<&str>,
) -> Result<StatusCode, ApiError> {
    check_uuid(file_uuid)?;
    let track: i32 = track
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "a track is a whole number"))?;
    let store = state.library.vectors();
    if library::bind(&state.db.pool, store, file_uuid, track, identity).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            "the file has no such face track",
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    title: Option<String>,
    tmdb_id: Option<i64>,
    /// `movie` (default) or `tv`.
    kind: Option<String>,
    limit: Option<usize>,
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Library(e) => e.into(),
            ImportError::Tmdb(e) => match e {
                TmdbError::Disabled => ApiError::new(ErrorCode::TmdbDisabled, e.to_string()),
                TmdbError::NotFound(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
                TmdbError::RateLimited(wait) => {
                    ApiError::upstream_rate_limited(e.to_string(), wait)
                }
                TmdbError::Cache(io) => {
                    ApiError::unavailable("the TMDb cache is not writable", &io)
                }
                TmdbError::Refused | TmdbError::Unreachable(_) | TmdbError::Protocol(_) => {
                    ApiError::new(ErrorCode::TmdbFailed, e.to_string())
                }
            },
        }
    }
}

/// Imports a film's or series' cast (with their TMDb photos) as identities.
pub async fn import_tmdb(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ImportRequest>,
) -> Result<Json<Value>, ApiError> {
    let kind = request.kind.as_deref().unwrap_or("movie");
    if kind != "movie" && kind != "tv" {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`kind` must be movie or tv",
        ));
    }
    let title = match (request.title, request.tmdb_id) {
        (Some(title), None) if !title.trim().is_empty() && title.chars().count() <= 200 => {
            Title::Named(title.trim().to_owned())
        }
        (None, Some(id)) if id > 0 => Title::Id(id),
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "give either `title` (1 to 200 characters) or a positive `tmdb_id`",
            ));
        }
    };
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("`limit` must be 1 to {MAX_LIMIT}"),
        ));
    }
    let settings = &state.settings;
    let tmdb = TmdbPeople::new(
        settings.tmdb_base_url.clone(),
        settings.tmdb_api_key.clone(),
        settings.tmdb_enabled,
        settings.data_dir.join("cache").join("tmdb"),
    )
    .map_err(ImportError::from)?;
    let report =
        tmdb_import::import(&tmdb, &state.library, &state.db.pool, kind, title, limit).await?;
    Ok(Json(json!(report)))
}
