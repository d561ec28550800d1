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
