//! Qdrant's REST API as its published reference has it, for the routes reelbase uses:
//! `/readyz`; `GET/PUT/DELETE /collections/{name}` (one unnamed vector per point, with a size
//! and a distance); and under a collection `PUT points` (upsert), `POST points/search`,
//! `POST points/delete` (by ids or by filter) and `POST points/count`.
//!
//! Points live in memory. Like Qdrant with `Cosine` distance, vectors are normalised when
//! stored and a search scores by the dot product with the normalised query, so scores are
//! cosine similarities. Ids are unsigned integers or UUIDs (returned hyphenated). Filters are
//! `must` lists of `{key, match: {value}}`. Errors carry Qdrant's `{"status": {"error"}}`
//! body: 404 for a missing collection, 400 for a vector of the wrong size (Qdrant's wording),
//! 409 for creating a collection twice, 401 without the configured `api-key`.
//!
//! A test can make it slow or failing (`Behaviour`) and drop a collection behind the
//! client's back.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::{Behaviour, start};

struct Collection {
    /// `{size, distance}` as it was created.
    vectors: Value,
    size: usize,
    /// By the id's JSON text, so `7` and `"7"` stay different, as in Qdrant.
    points: BTreeMap<String, Stored>,
}

struct Stored {
    id: Value,
    unit: Vec<f32>,
    payload: Value,
}

#[derive(Default)]
struct QdrantState {
    collections: Mutex<HashMap<String, Collection>>,
    behaviour: Mutex<Behaviour>,
    api_key: Option<String>,
}

type Shared = State<Arc<QdrantState>>;

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
            .route("/readyz", get(ready))
            .route(
                "/collections/{name}",
                get(get_collection).put(create).delete(drop_collection),
            )
            .route("/collections/{name}/points", put(upsert))
            .route("/collections/{name}/points/search", post(search))
            .route("/collections/{name}/points/delete", post(delete))
            .route("/collections/{name}/points/count", post(count))
            // Qdrant's default `service.max_request_size_mb`.
            .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
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

    /// Each collection's vectors config, `{size, distance}`.
    pub fn collections(&self) -> HashMap<String, Value> {
        let collections = self.state.collections.lock().unwrap();
        collections
            .iter()
            .map(|(name, c)| (name.clone(), c.vectors.clone()))
            .collect()
    }

    pub fn drop_collection(&self, name: &str) {
        self.state.collections.lock().unwrap().remove(name);
    }

    /// Makes a collection directly, e.g. with a size reelbase does not expect.
    pub fn make_collection(&self, name: &str, size: usize, distance: &str) {
        let vectors = json!({"size": size, "distance": distance});
        let collection = Collection {
            vectors,
            size,
            points: BTreeMap::new(),
        };
        let mut collections = self.state.collections.lock().unwrap();
        collections.insert(name.to_owned(), collection);
    }
}

fn answer(result: Value) -> Response {
    Json(json!({"result": result, "status": "ok", "time": 0.0001})).into_response()
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({"status": {"error": error}, "time": 0.0001})),
    )
        .into_response()
}

fn not_found(name: &str) -> Response {
    let error = format!("Not found: Collection `{name}` doesn't exist!");
    refuse(StatusCode::NOT_FOUND, &error)
}

/// Applies the behaviour and the API key check shared by every route; `Some` short-circuits.
async fn gate(state: &QdrantState, headers: &HeaderMap) -> Option<Response> {
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::ServerError => {
            let error = "Service internal error";
            return Some(refuse(StatusCode::INTERNAL_SERVER_ERROR, error));
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

async fn ready(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    "all shards are ready".into_response()
}

async fn get_collection(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let collections = state.collections.lock().unwrap();
    let Some(collection) = collections.get(&name) else {
        return not_found(&name);
    };
    answer(json!({
        "status": "green",
        "points_count": collection.points.len(),
        "config": {"params": {"vectors": collection.vectors}},
    }))
}

async fn create(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let vectors = body["vectors"].clone();
    let size = vectors["size"].as_u64().filter(|s| *s > 0);
    let distance = vectors["distance"].as_str();
    let (Some(size), Some("Cosine" | "Dot" | "Euclid" | "Manhattan")) = (size, distance) else {
        let error = "Json deserialize error: missing or invalid vectors config";
        return refuse(StatusCode::BAD_REQUEST, error);
    };
    let mut collections = state.collections.lock().unwrap();
    if collections.contains_key(&name) {
        let error = format!("Wrong input: Collection `{name}` already exists!");
        return refuse(StatusCode::CONFLICT, &error);
    }
    let collection = Collection {
        vectors,
        size: size as usize,
        points: BTreeMap::new(),
    };
    collections.insert(name, collection);
    answer(json!(true))
}

async fn drop_collection(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let existed = state.collections.lock().unwrap().remove(&name).is_some();
    answer(json!(existed))
}

async fn upsert(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let mut collections = state.collections.lock().unwrap();
    let Some(collection) = collections.get_mut(&name) else {
        return not_found(&name);
    };
    let Some(points) = body["points"].as_array() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Json deserialize error: missing field `points`",
        );
    };
    // Qdrant checks the whole batch before it applies any of it.
    let mut parsed = Vec::with_capacity(points.len());
    for point in points {
        match parse_point(point, collection.size) {
            Ok(stored) => parsed.push(stored),
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
        }
    }
    for stored in parsed {
        collection.points.insert(stored.id.to_string(), stored);
    }
    answer(json!({"operation_id": 1, "status": "completed"}))
}

/// A point of the upsert body, or Qdrant's reason for refusing it (a 400).
fn parse_point(point: &Value, size: usize) -> Result<Stored, String> {
    let id = point_id(&point["id"]).ok_or("Json deserialize error: bad point id")?;
    let vector = numbers(&point["vector"]).ok_or("Json deserialize error: bad vector")?;
    let payload = match &point["payload"] {
        Value::Null => json!({}),
        object @ Value::Object(_) => object.clone(),
        _ => return Err("Json deserialize error: payload is not an object".into()),
    };
    if vector.len() != size {
        let got = vector.len();
        return Err(format!(
            "Wrong input: Vector dimension error: expected dim: {size}, got {got}"
        ));
    }
    Ok(Stored {
        id,
        unit: normalised(vector),
        payload,
    })
}

async fn search(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let collections = state.collections.lock().unwrap();
    let Some(collection) = collections.get(&name) else {
        return not_found(&name);
    };
    let (Some(vector), Some(limit)) = (numbers(&body["vector"]), body["limit"].as_u64()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Json deserialize error: vector and limit",
        );
    };
    if vector.len() != collection.size {
        let error = format!(
            "Wrong input: Vector dimension error: expected dim: {}, got {}",
            collection.size,
            vector.len()
        );
        return refuse(StatusCode::BAD_REQUEST, &error);
    }
    let Some(conditions) = conditions(&body["filter"]) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Json deserialize error: bad filter",
        );
    };
    let query = normalised(vector);
    let threshold = body["score_threshold"].as_f64();
    let with_payload = body["with_payload"].as_bool().unwrap_or(false);
    let mut hits: Vec<(f32, &Stored)> = collection
        .points
        .values()
        .filter(|p| matches(&p.payload, &conditions))
        .map(|p| (dot(&query, &p.unit), p))
        .filter(|(score, _)| threshold.is_none_or(|t| f64::from(*score) >= t))
        .collect();
    hits.sort_by(|a, b| b.0.total_cmp(&a.0));
    hits.truncate(limit as usize);
    let result: Vec<Value> = hits
        .into_iter()
        .map(|(score, p)| {
            let payload = if with_payload {
                p.payload.clone()
            } else {
                Value::Null
            };
            json!({"id": p.id, "version": 0, "score": score, "payload": payload, "vector": null})
        })
        .collect();
    answer(json!(result))
}

async fn delete(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let mut collections = state.collections.lock().unwrap();
    let Some(collection) = collections.get_mut(&name) else {
        return not_found(&name);
    };
    if let Some(ids) = body["points"].as_array() {
        let Some(ids) = ids.iter().map(point_id).collect::<Option<Vec<_>>>() else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Json deserialize error: bad point id",
            );
        };
        for id in ids {
            collection.points.remove(&id.to_string());
        }
    } else if body["filter"].is_object() {
        let Some(conditions) = conditions(&body["filter"]) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Json deserialize error: bad filter",
            );
        };
        collection
            .points
            .retain(|_, p| !matches(&p.payload, &conditions));
    } else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Json deserialize error: points or filter",
        );
    }
    answer(json!({"operation_id": 2, "status": "completed"}))
}

async fn count(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = gate(&state, &headers).await {
        return refused;
    }
    let collections = state.collections.lock().unwrap();
    let Some(collection) = collections.get(&name) else {
        return not_found(&name);
    };
    let Some(conditions) = conditions(&body["filter"]) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Json deserialize error: bad filter",
        );
    };
    let count = collection
        .points
        .values()
        .filter(|p| matches(&p.payload, &conditions))
        .count();
    answer(json!({"count": count}))
}

/// An unsigned integer, or a UUID in any case with or without hyphens, returned hyphenated
/// in lower case, as Qdrant does.
fn point_id(id: &Value) -> Option<Value> {
    if let Some(n) = id.as_u64() {
        return Some(json!(n));
    }
    let text = id.as_str()?;
    let hex: String = text
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_lowercase();
    let groups_ok = text.len() == 32
        || (text.len() == 36 && text.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    if hex.len() != 32 || !groups_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (a, rest) = hex.split_at(8);
    let (b, rest) = rest.split_at(4);
    let (c, rest) = rest.split_at(4);
    let (d, e) = rest.split_at(4);
    Some(json!(format!("{a}-{b}-{c}-{d}-{e}")))
}

fn numbers(vector: &Value) -> Option<Vec<f32>> {
    let items = vector.as_array()?;
    items.iter().map(|x| x.as_f64().map(|x| x as f32)).collect()
}

fn normalised(vector: Vec<f32>) -> Vec<f32> {
    let norm = dot(&vector, &vector).sqrt();
    if norm == 0.0 {
        return vector;
    }
    vector.into_iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `(key, value)` pairs of a `{"must": [{"key", "match": {"value"}}]}` filter; no filter
/// is no condition. `None` for any other shape (this stub models only `must` + `match`).
fn conditions(filter: &Value) -> Option<Vec<(String, Value)>> {
    if filter.is_null() {
        return Some(Vec::new());
    }
    let must = filter.get("must")?.as_array()?;
    must.iter()
        .map(|c| {
            Some((
                c["key"].as_str()?.to_owned(),
                c["match"].get("value")?.clone(),
            ))
        })
        .collect()
}

/// Qdrant's `match`: the payload value equals, or is an array holding, the wanted value.
fn matches(payload: &Value, conditions: &[(String, Value)]) -> bool {
    conditions
        .iter()
        .all(|(key, wanted)| match &payload[key.as_str()] {
            Value::Array(items) => items.contains(wanted),
            value => value == wanted,
        })
}
