//! `POST /api/v1/ingest/sftpgo`: SFTPGo's upload event (its HTTP action hook, or an event
//! rule's HTTP action), authenticated like any API call (give SFTPGo an API key to send as
//! `X-API-Key`). A finished upload is registered exactly as `files/register` would; other
//! events and failed uploads are acknowledged and ignored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::files::{register_error, registered_body};
use super::json::JsonBody;
use super::{ApiError, AppState, ErrorCode};
use crate::db::files::Source;
use crate::ingest::paths::is_temporary;

/// The fields of SFTPGo's filesystem event that matter here. Its hook sends `path` and
/// `target_path` (file-system paths); event rules are usually given `fs_path` and
/// `fs_target_path`. Everything else it sends (username, protocol, ip, ...) is ignored.
#[derive(Debug, Deserialize)]
pub struct FsEvent {
    action: String,
    #[serde(default, alias = "path")]
    fs_path: Option<String>,
    #[serde(default, alias = "target_path")]
    fs_target_path: Option<String>,
    /// 1 = done, 2 = failed, 3 = quota exceeded.
    #[serde(default)]
    status: Option<i64>,
}

pub async fn sftpgo(
    State(state): State<AppState>,
    JsonBody(event): JsonBody<FsEvent>,
) -> Result<Response, ApiError> {
    let path = match event.action.as_str() {
        "upload" | "first-upload" => event.fs_path.as_deref(),
        // An upload that lands under a temporary name and is renamed into place.
        "rename" => event.fs_target_path.as_deref(),
        other => return Ok(ignored(&format!("`{other}` is not an upload"))),
    };
    if let Some(status) = event.status.filter(|status| *status != 1) {
        return Ok(ignored(&format!(
            "the upload did not finish (status {status})"
        )));
    }
    let Some(path) = path.filter(|path| !path.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the event names no file: send `fs_path` (or `fs_target_path` for a rename)",
        ));
    };
    let name = std::path::Path::new(path).file_name().unwrap_or_default();
    if is_temporary(&name.to_string_lossy()) {
        return Ok(ignored("the file still has a temporary name"));
    }
    let registered = state
        .registrar
        .register(path, Source::Sftpgo)
        .await
        .map_err(register_error)?;
    let status = if registered.already_exists {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(registered_body(&registered))).into_response())
}

fn ignored(reason: &str) -> Response {
    Json(json!({"success": true, "registered": false, "message": reason})).into_response()
}
