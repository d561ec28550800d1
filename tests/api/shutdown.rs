//! Graceful shutdown: requests in flight when shutdown starts still get their answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reelbase::app::Application;
use tokio::sync::{Notify, oneshot};

use crate::helpers::{TestDb, app::test_settings};

#[tokio::test]
async fn request_in_flight_when_shutdown_starts_completes() {
    let db = TestDb::create().await;
    let entered = Arc::new(Notify::new());
    let slow = {
        let entered = entered.clone();
        Router::new().route(
            "/test/slow",
            get(move || async move {
                entered.notify_one();
                tokio::time::sleep(Duration::from_millis(400)).await;
                "finished"
            }),
        )
    };
    let app = Application::build(test_settings(&db))
        .await
        .unwrap()
        .merge_public_routes(slow);
    let url = format!("http://{}/test/slow", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let request = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    entered.notified().await; // the handler is running
    stop.send(()).unwrap();

    let body = request
        .await
        .unwrap()
        .expect("the in-flight request gets its response");
    assert_eq!(body, "finished");
    let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "server stops cleanly: {ended:?}"
    );
}

#[tokio::test]
async fn after_shutdown_new_connections_are_refused() {
    let app = crate::helpers::spawn_app().await;
    let url = app.url("/health");

    app.shutdown().await.expect("clean stop");

    assert!(
        reqwest::get(url).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer)).await;

    let closed = matches!(read, Ok(Ok(0)) | Ok(Err(_)));
    assert!(closed, "the server closes the connection: {read:?}");
    let waited = started.elapsed();
    let limit = reelbase::server::HEADER_READ_TIMEOUT;
    assert!(
        waited >= limit - Duration::from_millis(200) && waited < limit * 2,
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_within_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 10\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();

    let mut answer = vec![0u8; 512];
    let limit = reelbase::server::REQUEST_TIMEOUT + Duration::from_secs(5);
    let read = tokio::time::timeout(limit, socket.read(&mut answer)).await;

    let n = read.expect("answered before the limit").unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}
