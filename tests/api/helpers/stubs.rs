//! Loopback stubs of the services that cannot run here, shaped like their published REST
//! APIs (Qdrant's collections and points, TMDb's `/3/configuration`, SFTPGo's
//! `/healthz`, `/api/v2/token` and `/api/v2/status`), which a test can make slow, failing,
//! rate-limiting or forgetful.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

mod qdrant;
mod sftpgo;
mod tmdb_cast;
pub use qdrant::QdrantStub;
pub use sftpgo::{SftpgoRequests, SftpgoStub};
pub use tmdb_cast::TmdbCastStub;

/// How a stub answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    #[default]
    Normal,
    Slow(Duration),
    ServerError,
    RateLimited {
        retry_after_s: u64,
    },
}

async fn start(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

struct TmdbState {
    key: String,
    behaviour: Mutex<Behaviour>,
    requests: AtomicUsize,
}

#[derive(Clone)]
pub struct TmdbStub {
    pub addr: SocketAddr,
    state: Arc<TmdbState>,
}

impl TmdbStub {
    pub async fn start(key: &str) -> Self {
        let state = Arc::new(TmdbState {
            key: key.to_owned(),
            behaviour: Mutex::default(),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/3/configuration", get(tmdb_configuration))
            .with_state(state.clone());
        Self {
            addr: start(router).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn tmdb_configuration(
    State(state): State<Arc<TmdbState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::ServerError => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Behaviour::RateLimited { retry_after_s } => {
            let body = json!({"status_code": 25, "status_message":
                "Your request count (#) is over the allowed limit of (40).", "success": false});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_s.to_string())],
                Json(body),
            )
                .into_response();
        }
        Behaviour::Normal => {}
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let presented = query.get("api_key").map(String::as_str).or(bearer);
    if presented != Some(state.key.as_str()) {
        let body = json!({"status_code": 7, "status_message":
            "Invalid API key: You must be granted a valid key.", "success": false});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let images = json!({"base_url": "http://image.tmdb.org/t/p/",
        "secure_base_url": "https://image.tmdb.org/t/p/", "profile_sizes": ["w45", "w185", "original"]});
    Json(json!({"images": images, "change_keys": []})).into_response()
}
