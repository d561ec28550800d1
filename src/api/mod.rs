//! The HTTP API: shared state, the router, and the responses for requests no route takes.

mod auth;
pub mod error;
pub(crate) mod files;
mod health;
mod identities;
mod ingest;
mod jobs;
mod json;
pub mod metrics;
mod search;
pub mod stats;
mod trace;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{delete, get, post, put};

use crate::auth::{Auth, require_caller};
use crate::cache::Redis;
use crate::config::Settings;
use crate::db::Database;
use crate::health::HealthMonitor;
use crate::health::report::DetailedReports;
use crate::ingest::Registrar;
pub use error::{ApiError, ErrorCode};
use metrics::HttpCounters;

/// Largest body of `POST /api/v1/identities`: five photos of 8 MiB, in base64.
const IDENTITY_BODY: usize = 56 * 1024 * 1024;

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
    pub auth: Auth,
    pub reports: DetailedReports,
    pub sftpgo: stats::SftpgoReports,
    pub counters: Arc<HttpCounters>,
    /// The identity library (changes go to the database and the identity folder together).
    pub library: Arc<crate::identities::library::Library>,
    /// Registers files: the API, the SFTPGo hook and the watcher share it.
    pub registrar: Arc<Registrar>,
    /// Monotonic start time, for `uptime_ms`.
    pub started: Instant,
}

/// The whole API. `extra` holds routes added by embedders and tests; they are public (no
/// authentication) and request-logged.
///
/// The probes (`/health`, `/health/live`, `/health/ready`) are not request-logged: load
/// balancers call them every few seconds, so their lines would drown the log, they never
/// fail with a 5xx, and the monitor already logs every change of state. Skipping the log
/// layer there also keeps `/health` near the cost of a constant response.
pub fn router(state: AppState, extra: Router) -> Router {
    let counters = state.counters.clone();
    let probes = Router::new()
        .route("/health", get(health::summary))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // Open to anyone, by exact path only.
    let public = Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/stats/sftpgo", get(stats::sftpgo))
        .with_state(state.clone())
        .merge(extra)
        .method_not_allowed_fallback(method_not_allowed);
    // Everything else, including unknown paths, needs a caller: default deny.
    let private = Router::new()
        .route("/health/detailed", get(health::detailed))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/auth/me", get(auth::me))
        .route(
            "/api/v1/auth/api-keys",
            get(auth::list_keys).post(auth::create_key),
        )
        .route("/api/v1/auth/api-keys/{id}", delete(auth::revoke_key))
        .route("/api/v1/files", get(files::list))
        .route("/api/v1/files/register", post(files::register))
        .route("/api/v1/files/lookup", get(files::lookup))
        .route(
            "/api/v1/files/{file_uuid}",
            get(files::get).delete(files::delete),
        )
        .route("/api/v1/ingest/sftpgo", post(ingest::sftpgo))
        .route("/api/v1/files/{file_uuid}/process", post(jobs::process))
        .route("/api/v1/files/{file_uuid}/progress", get(jobs::progress))
        .route(
            "/api/v1/files/{file_uuid}/results/{processor}",
            get(jobs::result),
        )
        .route("/api/v1/search", get(search::search))
        .route(
            "/api/v1/identities",
            get(identities::list)
                .post(identities::create)
                .layer(DefaultBodyLimit::max(IDENTITY_BODY)),
        )
        .route(
            "/api/v1/identities/{id}",
            get(identities::get)
                .patch(identities::rename)
                .delete(identities::delete),
        )
        .route("/api/v1/identities/{id}/merge", post(identities::merge))
        .route(
            "/api/v1/identities/import/tmdb",
            post(identities::import_tmdb),
        )
        .route(
            "/api/v1/identities/{id}/appearances",
            get(identities::appearances),
        )
        .route(
            "/api/v1/files/{file_uuid}/faces",
            get(identities::file_faces),
        )
        .route(
            "/api/v1/files/{file_uuid}/faces/{track}/identity",
            put(identities::bind).delete(identities::unbind),
        )
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::get))
        .route("/api/v1/jobs/{id}/retry", post(jobs::retry))
        .fallback(not_found)
        // Set before the auth layer, so a wrong method on a private path is refused with
        // 401 like any other anonymous request, and never reveals that the path exists.
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state, require_caller));
    let logged = public
        .merge(private)
        .layer(trace::RequestLogLayer::new(counters));
    probes.merge(logged)
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
