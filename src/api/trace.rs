//! Request logging. Spans carry the route template (`/api/v1/files/{uuid}`), never the raw
//! path or query string, so logs stay low-cardinality and never hold a credential passed in
//! a URL. Our own 5xx are errors; everything else is per-request detail at debug.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

type Layer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RouteSpan,
    (),
    LogResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
>;

pub fn layer() -> Layer {
    TraceLayer::new_for_http()
        .make_span_with(RouteSpan)
        .on_request(())
        .on_response(LogResponse)
        // Failures are logged by `LogResponse` with the status; no second line.
        .on_failure(())
}

#[derive(Clone, Copy)]
pub struct RouteSpan;

impl<B> MakeSpan<B> for RouteSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched");
        tracing::info_span!("request", method = %request.method(), route)
    }
}

#[derive(Clone, Copy)]
pub struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if response.status().is_server_error() {
            tracing::error!(status, latency_us, "request failed");
        } else {
            tracing::debug!(status, latency_us, "request finished");
        }
    }
}
