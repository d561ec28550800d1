//! The HTTP API: shared state, the router, and the responses for requests no route takes.

pub mod error;
mod health;
mod trace;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cache::Redis;
use crate::config::Settings;
use crate::db::Database;
use crate::health::HealthMonitor;
pub use error::{ApiError, ErrorCode};

/// What every handler can reach. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub redis: Arc<Redis>,
    pub health: HealthMonitor,
    /// Monotonic start time, for `uptime_ms`.
    pub started: Instant,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::summary))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(not_found)
        .with_state(state)
}

/// Wraps the finished router (including routes merged in by embedders and tests) with the
/// layers every response goes through.
pub fn finish(router: Router) -> Router {
    router
        .layer(middleware::map_response(json_method_not_allowed))
        .layer(trace::layer())
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    // The path is echoed without its query string, which may carry a credential.
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// axum answers a known path with the wrong method with an empty 405; give it the standard
/// error body, keeping the `Allow` header it computed.
async fn json_method_not_allowed(response: Response) -> Response {
    let is_bare = response.headers().get(header::CONTENT_TYPE).is_none();
    if response.status() != StatusCode::METHOD_NOT_ALLOWED || !is_bare {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut replaced = ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this path does not accept that method; see the Allow header",
    )
    .into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        replaced.headers_mut().insert(header::ALLOW, allow.clone());
    }
    replaced
}
