//! `GET /metrics` (authenticated): Prometheus text format. Service state comes from the health
//! monitor's latest snapshot (a scrape never triggers checks); request counts come from the
//! request log layer and, for the probes, which that layer skips, from counters of their own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::Caller;
use crate::build_info;
use crate::health::Status;

/// Requests by route template, method and status.
#[derive(Default)]
pub struct HttpCounters {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// The probes, counted without a lock: `/health` is the hottest path there is.
    pub health: AtomicU64,
    pub live: AtomicU64,
    pub ready_ok: AtomicU64,
    pub ready_unavailable: AtomicU64,
}

impl HttpCounters {
    pub fn record(&self, route: &str, method: &str, status: u16) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
    }

    fn snapshot(&self) -> Vec<((String, String, u16), u64)> {
        let mut rows: Vec<_> = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let probe = |route: &str, status: u16, counter: &AtomicU64| {
            (
                (route.to_owned(), "GET".to_owned(), status),
                counter.load(Ordering::Relaxed),
            )
        };
        rows.push(probe("/health", 200, &self.health));
        rows.push(probe("/health/live", 200, &self.live));
        rows.push(probe("/health/ready", 200, &self.ready_ok));
        rows.push(probe("/health/ready", 503, &self.ready_unavailable));
        rows.retain(|(_, count)| *count > 0);
        rows
    }
}

pub async fn metrics(State(state): State<AppState>, _caller: Caller) -> Response {
    let snapshot = state.health.latest();
    let mut out = String::new();
    family(
        &mut out,
        "reelbase_build_info",
        "gauge",
        "Build facts of the running binary.",
    );
    let _ = writeln!(
        out,
        "reelbase_build_info{{version=\"{}\",git_hash=\"{}\",build_timestamp=\"{}\"}} 1",
        build_info::VERSION,
        escape(build_info::GIT_HASH),
        build_info::BUILD_TIMESTAMP
    );
    family(
        &mut out,
        "reelbase_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(
        out,
        "reelbase_uptime_seconds {:.3}",
        state.started.elapsed().as_secs_f64()
    );
    family(
        &mut out,
        "reelbase_health_age_seconds",
        "gauge",
        "Age of the monitor's latest round.",
    );
    let age = snapshot.taken_instant.elapsed().as_secs_f64();
    let _ = writeln!(out, "reelbase_health_age_seconds {age:.3}");
    family(
        &mut out,
        "reelbase_service_up",
        "gauge",
        "1 when the service's latest check was ok.",
    );
    for (name, health) in &snapshot.services {
        let up = u8::from(health.status == Status::Ok);
        let _ = writeln!(out, "reelbase_service_up{{service=\"{name}\"}} {up}");
    }
    family(
        &mut out,
        "reelbase_service_latency_ms",
        "gauge",
        "Duration of the service's latest check.",
    );
    for (name, health) in &snapshot.services {
        let _ = writeln!(
            out,
            "reelbase_service_latency_ms{{service=\"{name}\"}} {}",
            health.latency_ms
        );
    }
    family(
        &mut out,
        "reelbase_schema_ok",
        "gauge",
        "1 when every shipped migration is applied unchanged.",
    );
    let schema_ok = snapshot.schema.as_ref().is_some_and(|s| s.ok);
    let _ = writeln!(out, "reelbase_schema_ok {}", u8::from(schema_ok));
    family(
        &mut out,
        "reelbase_http_requests_total",
        "counter",
        "HTTP requests by route template and status.",
    );
    for ((route, method, status), count) in state.counters.snapshot() {
        let _ = writeln!(
            out,
            "reelbase_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
            escape(&route)
        );
    }
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], out).into_response()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslashes, quotes and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
