//! `/health`, `/health/live` and `/health/ready`: public, cheap, and free of I/O. They read
//! the monitor's latest snapshot and say nothing about hosts or errors to anonymous callers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::AppState;
use crate::auth::Caller;
use crate::build_info;
use crate::health::Status;

/// The body of `/health` is the five fields of the public contract, in its order. Everything
/// but `status` and `uptime_ms` is fixed at build time, so the text before `uptime_ms` is made
/// once per status and each request only appends the number: this endpoint is hit by every
/// load balancer, so it is kept close to the cost of a constant response.
static SUMMARY_PREFIXES: LazyLock<[String; 2]> =
    LazyLock::new(|| [summary_prefix(Status::Ok), summary_prefix(Status::Degraded)]);

fn summary_prefix(status: Status) -> String {
    let text = |value: &str| serde_json::Value::from(value).to_string();
    format!(
        r#"{{"status":{},"version":{},"build_git_hash":{},"build_timestamp":{},"uptime_ms":"#,
        text(status.as_str()),
        text(build_info::VERSION),
        text(build_info::GIT_HASH),
        text(build_info::BUILD_TIMESTAMP),
    )
}

#[derive(Serialize)]
struct StatusOnly {
    status: &'static str,
}

// Static header values: converting from `&str` would validate and allocate on every request.
const NO_STORE: [(header::HeaderName, HeaderValue); 1] =
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
const JSON_NO_STORE: [(header::HeaderName, HeaderValue); 2] = [
    (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

pub async fn summary(State(state): State<AppState>) -> Response {
    state.counters.health.fetch_add(1, Ordering::Relaxed);
    let prefix = match state.health.overall() {
        Status::Ok => &SUMMARY_PREFIXES[0],
        _ => &SUMMARY_PREFIXES[1],
    };
    let uptime_ms = u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut body = String::with_capacity(prefix.len() + 21);
    body.push_str(prefix);
    body.push_str(itoa::Buffer::new().format(uptime_ms));
    body.push('}');
    (JSON_NO_STORE, body).into_response()
}

/// 200 for as long as the process serves requests.
pub async fn live(State(state): State<AppState>) -> Response {
    state.counters.live.fetch_add(1, Ordering::Relaxed);
    (NO_STORE, Json(StatusOnly { status: "ok" })).into_response()
}

/// 200 when the services every request needs are `ok`, else 503; the body says the same.
pub async fn ready(State(state): State<AppState>) -> Response {
    let (code, status) = if state.health.latest().is_ready() {
        state.counters.ready_ok.fetch_add(1, Ordering::Relaxed);
        (StatusCode::OK, "ok")
    } else {
        state
            .counters
            .ready_unavailable
            .fetch_add(1, Ordering::Relaxed);
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (code, NO_STORE, Json(StatusOnly { status })).into_response()
}

/// The detailed report (authenticated), built fresh or shared from the last second.
pub async fn detailed(State(state): State<AppState>, _caller: Caller) -> Response {
    let report = state.reports.get().await;
    (NO_STORE, Json(report.as_ref().clone())).into_response()
}
