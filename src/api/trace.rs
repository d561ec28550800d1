//! Request logging. Lines carry the route template (`/api/v1/files/{uuid}`), never the raw
//! path or query string, so logs stay low-cardinality and never hold a credential passed in
//! a URL. Our own 5xx are errors; everything else is per-request detail at debug.
//!
//! This is a hand-written tower layer rather than tower-http's `TraceLayer` or an axum
//! `from_fn` middleware: `/health` is called by every load balancer, and both of those (a
//! span, a wrapped body or a boxed future for every request) cost 10-15% of its throughput
//! at the default log level. Here a request the log level ignores costs two clock reads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Level;

use super::metrics::HttpCounters;
use tracing::instrument::Instrumented;

/// Logs each request and counts it for `/metrics`.
#[derive(Clone)]
pub struct RequestLogLayer {
    counters: Arc<HttpCounters>,
}

impl RequestLogLayer {
    pub fn new(counters: Arc<HttpCounters>) -> Self {
        Self { counters }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog {
            inner,
            counters: self.counters.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    counters: Arc<HttpCounters>,
}

impl<S> Service<Request> for RequestLog<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LoggedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        // The span only exists when someone reads debug lines.
        let span = if tracing::enabled!(Level::DEBUG) {
            let route = route
                .as_ref()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            tracing::debug_span!("request", %method, route)
        } else {
            tracing::Span::none()
        };
        let inner = tracing::Instrument::instrument(self.inner.call(request), span);
        LoggedFuture {
            inner,
            counters: self.counters.clone(),
            started: Instant::now(),
            method,
            route,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct LoggedFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        counters: Arc<HttpCounters>,
        started: Instant,
        method: Method,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for LoggedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let route = this
                .route
                .as_ref()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            // Methods outside the standard set are counted together, so made-up methods
            // cannot add series without bound.
            let method = standard_method(this.method);
            this.counters
                .record(route, method, response.status().as_u16());
            log_response(*this.started, this.method, this.route.as_ref(), response);
        }
        Poll::Ready(result)
    }
}

fn log_response(
    started: Instant,
    method: &Method,
    route: Option<&MatchedPath>,
    response: &Response,
) {
    let status = response.status();
    let server_error = status.is_server_error();
    if !server_error && !tracing::enabled!(Level::DEBUG) {
        return;
    }
    let route = route.map(MatchedPath::as_str).unwrap_or("unmatched");
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = status.as_u16();
    if server_error {
        tracing::error!(%method, route, status, latency_us, "request failed");
    } else {
        tracing::debug!(%method, route, status, latency_us, "request finished");
    }
}

fn standard_method(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .copied()
        .find(|m| *m == method.as_str())
        .unwrap_or("OTHER")
}
