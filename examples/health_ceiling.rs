//! The benchmark ceiling for `/health`: a bare axum handler returning a constant JSON body of
//! the same size as reelbase's answer, with no state, middleware or monitor. `tools/bench-health`
//! loads both in one run; reelbase's `/health` should reach at least 90% of this throughput.
//!
//! Usage: `health_ceiling ADDR BODY_BYTES`

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3099".to_owned());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(126);
    let body: &'static str = Box::leak(constant_body(size).into_boxed_str());

    let app = Router::new().route(
        "/health",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

/// A JSON object of exactly `size` bytes, padded in one string field.
fn constant_body(size: usize) -> String {
    let frame = r#"{"status":"ok","pad":""}"#;
    let pad = "x".repeat(size.saturating_sub(frame.len()));
    format!(r#"{{"status":"ok","pad":"{pad}"}}"#)
}
