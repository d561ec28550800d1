//! Loopback stubs of the services that cannot run here, shaped like their published REST
//! APIs (Qdrant's `/readyz` and `/collections/{name}`, TMDb's `/3/configuration`, SFTPGo's
//! `/healthz`, `/api/v2/token` and `/api/v2/status`), which a test can make slow, failing,
//! rate-limiting or forgetful.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

mod sftpgo;
mod tmdb_cast;
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

#[derive(Default)]
struct QdrantState {
    collections: Mutex<HashMap<String, Value>>,
    behaviour: Mutex<Behaviour>,
    api_key: Option<String>,
}

#[derive(Clone)]
pub struct QdrantStub {
    pub addr: SocketAddr,
    state: Arc<QdrantState>,
}

impl QdrantStub {
    pub async fn start(api_key: Option<&str>) -> Self {
        let state = Arc::new(QdrantState {
            api_key: api_key.map(str::to_owned),
            ..Default::default()
        });
        let router = Router::new()
            .route("/readyz", get(qdrant_ready))
            .route(
                "/collections/{name}",
                get(qdrant_get).put(qdrant_put).delete(qdrant_delete),
            )
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

    pub fn collections(&self) -> HashMap<String, Value> {
        self.state.collections.lock().unwrap().clone()
    }

    pub fn drop_collection(&self, name: &str) {
        self.state.collections.lock().unwrap().remove(name);
    }
}

/// Applies the behaviour and the API key check shared by every route; `Some` short-circuits.
async fn qdrant_gate(state: &QdrantState, headers: &HeaderMap) -> Option<Response> {
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::ServerError => {
            let body = json!({"status": {"error": "Service internal error"}, "time": 0.0});
            return Some((StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response());
        }
        _ => {}
    }
    let presented = headers.get("api-key").and_then(|v| v.to_str().ok());
    match &state.api_key {
        Some(key) if presented != Some(key.as_str()) => {
            Some((StatusCode::UNAUTHORIZED, "Invalid api-key").into_response())
        }
        _ => None,
    }
}

async fn qdrant_ready(State(state): State<Arc<QdrantState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = qdrant_gate(&state, &headers).await {
        return refused;
    }
    "all shards are ready".into_response()
}

async fn qdrant_get(
    State(state): State<Arc<QdrantState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = qdrant_gate(&state, &headers).await {
        return refused;
    }
    match state.collections.lock().unwrap().get(&name) {
        Some(vectors) => {
            let result = json!({"status": "green", "points_count": 0,
                "config": {"params": {"vectors": vectors}}});
            Json(json!({"result": result, "status": "ok", "time": 0.0})).into_response()
        }
        None => {
            let error = format!("Not found: Collection `{name}` doesn't exist!");
            (
                StatusCode::NOT_FOUND,
                Json(json!({"status": {"error": error}, "time": 0.0})),
            )
                .into_response()
        }
    }
}

async fn qdrant_put(
    State(state): State<Arc<QdrantState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = qdrant_gate(&state, &headers).await {
        return refused;
    }
    let vectors = body["vectors"].clone();
    if !vectors["size"].is_u64() || !vectors["distance"].is_string() {
        let error =
            json!({"status": {"error": "Bad request: missing vectors config"}, "time": 0.0});
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    state.collections.lock().unwrap().insert(name, vectors);
    Json(json!({"result": true, "status": "ok", "time": 0.0})).into_response()
}

async fn qdrant_delete(
    State(state): State<Arc<QdrantState>>,
    Path(name): Path<String>,
) -> Response {
    let existed = state.collections.lock().unwrap().remove(&name).is_some();
    Json(json!({"result": existed, "status": "ok", "time": 0.0})).into_response()
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
