//! `/health`, `/health/live` and `/health/ready`: public, cheap, and free of I/O. They read
//! the monitor's latest snapshot and say nothing about hosts or errors to anonymous callers.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::build_info;

/// Exactly the five fields of the public contract, in its order.
#[derive(Serialize)]
struct Summary {
    status: &'static str,
    version: &'static str,
    build_git_hash: &'static str,
    build_timestamp: &'static str,
    uptime_ms: u64,
}

#[derive(Serialize)]
struct StatusOnly {
    status: &'static str,
}

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

pub async fn summary(State(state): State<AppState>) -> Response {
    let body = Summary {
        status: state.health.latest().overall().as_str(),
        version: build_info::VERSION,
        build_git_hash: build_info::GIT_HASH,
        build_timestamp: build_info::BUILD_TIMESTAMP,
        uptime_ms: u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    (NO_STORE, Json(body)).into_response()
}

/// 200 for as long as the process serves requests.
pub async fn live() -> Response {
    (NO_STORE, Json(StatusOnly { status: "ok" })).into_response()
}

/// 200 when the services every request needs are `ok`, else 503; the body says the same.
pub async fn ready(State(state): State<AppState>) -> Response {
    let (code, status) = if state.health.latest().is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (code, NO_STORE, Json(StatusOnly { status })).into_response()
}
