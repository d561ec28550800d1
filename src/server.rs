//! The HTTP/1 server loop: accepts connections, serves each with hyper, and shuts down
//! gracefully.
//!
//! This replaces `axum::serve` for one reason: it sets no timer, so a client that sends half a
//! request (or nothing) holds its connection, a file descriptor and a graceful shutdown
//! forever. Here every connection must deliver its request headers within
//! `HEADER_READ_TIMEOUT`, and shutdown waits for open requests at most `grace`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tower::Service;

use crate::api::{ApiError, ErrorCode};

/// Time a client has to send a request's headers, on a new connection and between
/// keep-alive requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a request's body may take to arrive: a client that announces a body and never sends
/// it is answered 408 instead of holding its connection. Once the body is in (or the handler
/// has let it go), the handler may take as long as its work needs (hashing a large video).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once. Beyond it, new connections wait in the kernel's backlog, so a
/// flood of idle clients cannot use up the process's file descriptors.
pub const MAX_CONNECTIONS: usize = 4096;

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish for
/// at most `grace`. Returns whether every connection closed within the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> bool {
    let (stop, stopped) = watch::channel(false);
    // Each connection holds a sender; when the last one is dropped, `recv` returns `None`.
    let (open, mut all_closed) = mpsc::channel::<Infallible>(1);
    let mut shutdown = pin!(shutdown);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = connection(stream, peer, router.clone(), stopped.clone());
                    let open = open.clone();
                    tokio::spawn(async move {
                        connection.await;
                        drop((open, slot));
                    });
                }
                Err(error) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::error!(error = %error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    tokio::time::timeout(grace, all_closed.recv()).await.is_ok()
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        // Only a request with a body can stall on it; the rest skip the timer, which the
        // probes, called all the time by load balancers, would otherwise pay for.
        let bodiless = hyper::body::Body::is_end_stream(request.body());
        let (received, body_in) = oneshot::channel::<Infallible>();
        let request = request.map(|body| Body::new(WatchedBody::new(body, received)));
        let call = router.clone().call(request);
        async move {
            if bodiless {
                return call.await;
            }
            let mut call = pin!(call);
            tokio::select! {
                response = &mut call => return response,
                // The sender is dropped when the body ends or is let go.
                _ = body_in => {}
                () = tokio::time::sleep(REQUEST_TIMEOUT) => {
                    return Ok(ApiError::new(
                        ErrorCode::RequestTimeout,
                        "the request body did not arrive in time",
                    )
                    .into_response());
                }
            }
            call.await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut served = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        _ = served.as_mut() => return,
        _ = stop.wait_for(|stop| *stop) => {}
    }
    // Finish the request in flight, if any, then close; idle connections close at once.
    served.as_mut().graceful_shutdown();
    let _ = served.await;
}

pin_project_lite::pin_project! {
    /// A request body that drops `received` once its last frame has been read, or when it is
    /// dropped itself: either way, the client can no longer stall the request on it.
    struct WatchedBody {
        #[pin]
        inner: Incoming,
        received: Option<oneshot::Sender<Infallible>>,
    }
}

impl WatchedBody {
    fn new(inner: Incoming, received: oneshot::Sender<Infallible>) -> Self {
        Self {
            inner,
            received: Some(received),
        }
    }
}

impl hyper::body::Body for WatchedBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            this.received.take();
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
