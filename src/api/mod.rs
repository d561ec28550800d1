//! The HTTP API: shared state, the router, and the responses for requests no route takes.

pub mod error;
mod health;
mod trace;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::get;

use crate::cache::Redis;
use crate::config::Settings;
use crate::db::Database;
use crate::health::HealthMonitor;
pub use error::{ApiError, ErrorCode};

/// What every handler can reach. axum clones the state for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl AppState {
    pub fn new(context: AppContext) -> Self {
        Self(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

pub struct AppContext {
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
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Wraps the finished router (including routes merged in by embedders and tests) with the
/// layers every response goes through.
pub fn finish(router: Router) -> Router {
    router.layer(trace::layer())
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    // The path is echoed without its query string, which may carry a credential.
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// A known path asked with a method it does not take; axum adds the `Allow` header.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on this path; see the Allow header"),
    )
}
