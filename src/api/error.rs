//! The one error type every handler returns, and the stable codes clients can rely on.
//! Every error response has the same shape: `{"error": {"code": "...", "message": "..."}}`.
//! Internal causes go to the log, never into the body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Stable, snake_case error codes. Clients match on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotFound,
    MethodNotAllowed,
    BadRequest,
    InvalidJson,
    UnsupportedMediaType,
    Unauthorized,
    Forbidden,
    RateLimited,
    Conflict,
    PayloadTooLarge,
    RequestTimeout,
    Unavailable,
    Internal,
    InvalidPath,
    OutsideMediaRoots,
    FileNotFound,
    NotAFile,
    NotADirectory,
    NotReadable,
    NotMedia,
    InvalidPattern,
    InvalidQuery,
    InvalidPhoto,
    NoFace,
    TmdbDisabled,
    TmdbFailed,
    BatchTooLarge,
    FileChanging,
    InvalidFileUuid,
    ProcessorUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Unavailable => "service_unavailable",
            ErrorCode::Internal => "internal_error",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::OutsideMediaRoots => "outside_media_roots",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::NotAFile => "not_a_file",
            ErrorCode::NotADirectory => "not_a_directory",
            ErrorCode::NotReadable => "not_readable",
            ErrorCode::NotMedia => "not_media",
            ErrorCode::InvalidPattern => "invalid_pattern",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidPhoto => "invalid_photo",
            ErrorCode::NoFace => "no_face",
            ErrorCode::TmdbDisabled => "tmdb_disabled",
            ErrorCode::TmdbFailed => "tmdb_failed",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::FileChanging => "file_changing",
            ErrorCode::InvalidFileUuid => "invalid_file_uuid",
            ErrorCode::ProcessorUnavailable => "processor_unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest | ErrorCode::InvalidJson => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InvalidPath
            | ErrorCode::NotAFile
            | ErrorCode::NotADirectory
            | ErrorCode::InvalidPattern
            | ErrorCode::InvalidQuery
            | ErrorCode::InvalidPhoto
            | ErrorCode::BatchTooLarge
            | ErrorCode::InvalidFileUuid => StatusCode::BAD_REQUEST,
            ErrorCode::OutsideMediaRoots | ErrorCode::NotReadable => StatusCode::FORBIDDEN,
            ErrorCode::FileNotFound => StatusCode::NOT_FOUND,
            ErrorCode::NotMedia | ErrorCode::NoFace => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::FileChanging | ErrorCode::ProcessorUnavailable | ErrorCode::TmdbDisabled => {
                StatusCode::CONFLICT
            }
            ErrorCode::TmdbFailed => StatusCode::BAD_GATEWAY,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// 401 with a message that says what is wrong in general terms only.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// A 429 for a service upstream that asked us to wait.
    pub fn upstream_rate_limited(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: message.into(),
            retry_after_s: Some(retry_after_s),
        }
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        let message = format!("too many failed attempts; try again in {retry_after_s} s");
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// Our fault, logged with its cause; the caller sees only that it failed.
    pub fn internal(context: &'static str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{context}");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    /// PostgreSQL (or another dependency) failed: a 503, since retrying later may work.
    pub fn unavailable(context: &'static str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{context}");
        Self::new(
            ErrorCode::Unavailable,
            "a service reelbase depends on is unavailable",
        )
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        let mut response = (self.code.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        if self.code == ErrorCode::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="reelbase""#),
            );
        }
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
