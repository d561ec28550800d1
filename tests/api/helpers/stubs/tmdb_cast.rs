//! TMDb's v3 API as far as a cast import uses it, as developer.themoviedb.org documents it:
//! `/3/configuration` (the image address and profile sizes), `/3/search/movie?query=`,
//! `/3/movie/{id}/credits` (the `cast` list with `id`, `name`, `profile_path`), and the
//! photos under the image address (`/t/p/{size}/{file}`). The key is checked as TMDb does
//! (`api_key` in the query, or a bearer token); a refusal carries TMDb's
//! `{status_code, status_message}`. The first API request can be answered 429 with a
//! `Retry-After`; requests are counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::start;

/// One cast member: TMDb person id, name, and the photo file served for them (if any).
pub type Member = (i64, &'static str, Option<(&'static str, Vec<u8>)>);

struct CastState {
    key: String,
    film: (i64, &'static str),
    cast: Vec<Member>,
    rate_limit_once: AtomicBool,
    requests: AtomicUsize,
    addr: std::sync::OnceLock<SocketAddr>,
}

#[derive(Clone)]
pub struct TmdbCastStub {
    pub addr: SocketAddr,
    state: Arc<CastState>,
}

impl TmdbCastStub {
    pub async fn start(key: &str, film: (i64, &'static str), cast: Vec<Member>) -> Self {
        let state = Arc::new(CastState {
            key: key.to_owned(),
            film,
            cast,
            rate_limit_once: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            addr: std::sync::OnceLock::new(),
        });
        let router = Router::new()
            .route("/3/configuration", get(configuration))
            .route("/3/search/movie", get(search))
            .route("/3/movie/{id}/credits", get(credits))
            .route("/t/p/{size}/{file}", get(photo))
            .layer(axum::middleware::from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let addr = start(router).await;
        let _ = state.addr.set(addr);
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next API request is answered 429 with `Retry-After: 1`.
    pub fn rate_limit_once(&self) {
        self.state.rate_limit_once.store(true, Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

/// Counts every request; checks the key and plays the 429 on the API (not the images).
async fn gate(
    State(state): State<Arc<CastState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if request.uri().path().starts_with("/3/") {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let params: HashMap<String, String> = url_params(&query);
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        if params.get("api_key") != Some(&state.key) && bearer.as_ref() != Some(&state.key) {
            let body = json!({"status_code": 7, "status_message": "Invalid API key: You must be granted a valid key.", "success": false});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        if state.rate_limit_once.swap(false, Ordering::SeqCst) {
            let body = json!({"status_code": 25, "status_message": "Your request count is over the allowed limit.", "success": false});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                Json(body),
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn url_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace('+', " ").replace("%20", " ")))
        .collect()
}

async fn configuration(State(state): State<Arc<CastState>>) -> Json<Value> {
    let base = format!("http://{}/t/p/", state.addr.get().expect("started"));
    Json(json!({
        "images": {
            "base_url": base,
            "secure_base_url": base,
            "profile_sizes": ["w45", "w185", "h632", "original"],
        },
        "change_keys": [],
    }))
}

async fn search(
    State(state): State<Arc<CastState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Json<Value> {
    let wanted = params
        .get("query")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let (id, title) = state.film;
    let results: Vec<Value> = if title.to_lowercase().contains(&wanted) && !wanted.is_empty() {
        vec![json!({"id": id, "title": title, "original_title": title})]
    } else {
        Vec::new()
    };
    let total = results.len();
    Json(json!({"page": 1, "results": results, "total_pages": 1, "total_results": total}))
}

async fn credits(State(state): State<Arc<CastState>>, Path(id): Path<i64>) -> Response {
    if id != state.film.0 {
        let body = json!({"status_code": 34, "status_message": "The resource you requested could not be found.", "success": false});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let cast: Vec<Value> = state
        .cast
        .iter()
        .enumerate()
        .map(|(order, (person, name, photo))| {
            json!({
                "id": person, "name": name, "character": "Themselves", "order": order,
                "profile_path": photo.as_ref().map(|(file, _)| format!("/{file}")),
            })
        })
        .collect();
    Json(json!({"id": id, "cast": cast, "crew": []})).into_response()
}

async fn photo(
    State(state): State<Arc<CastState>>,
    Path((_size, file)): Path<(String, String)>,
) -> Response {
    let found = state
        .cast
        .iter()
        .filter_map(|(_, _, photo)| photo.as_ref())
        .find(|(name, _)| *name == file);
    match found {
        Some((_, bytes)) => ([(header::CONTENT_TYPE, "image/jpeg")], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
