//! The Qdrant backend: points over Qdrant's REST API, through the same client (base URL,
//! `api-key` header) as the health check. Collections are made with cosine distance, so
//! Qdrant's scores are cosine similarities, as pgvector's are.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::error::VectorError;
use super::point::{Filter, Hit, Point, PointId, Search};
use crate::health::Fault;
use crate::integrations::classify;
use crate::integrations::qdrant::{Qdrant, VectorsConfig};

/// Points per upsert request. Qdrant refuses requests over 32 MB by default; 500 points of
/// 384 numbers with their payloads are a few MB as JSON.
const UPSERT_BATCH: usize = 500;

pub struct QdrantStore {
    api: Arc<Qdrant>,
}

impl QdrantStore {
    pub fn new(api: Arc<Qdrant>) -> Self {
        Self { api }
    }

    pub async fn ensure_collection(&self, name: &str, dimension: usize) -> Result<(), VectorError> {
        let config = match self.call(Method::GET, name, "", None).await {
            Err(VectorError::MissingCollection(_)) => {
                let body = json!({ "vectors": { "size": dimension, "distance": "Cosine" } });
                match self.call(Method::PUT, name, "", Some(body)).await {
                    Ok(_) => return Ok(()),
                    // Qdrant refuses to make a collection that exists (409): someone made it
                    // since our look, so check theirs below.
                    Err(refused @ VectorError::Rejected(_)) => {
                        match self.call(Method::GET, name, "", None).await {
                            Ok(config) => config,
                            Err(_) => return Err(refused),
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            other => other?,
        };
        let existing = VectorsConfig::of(&json!({ "result": config }))
            .ok_or(VectorError::Unavailable(Fault::Protocol))?;
        if existing.size == dimension && existing.is_cosine() {
            return Ok(());
        }
        Err(VectorError::Mismatch {
            collection: name.to_owned(),
            existing: format!("size {}, {}", existing.size, existing.distance),
            wanted: format!("size {dimension}, Cosine"),
        })
    }

    /// In batches of `UPSERT_BATCH`, each applied whole; a failure leaves the batches before
    /// it stored (Qdrant has no transaction across requests).
    pub async fn upsert(&self, collection: &str, points: &[Point]) -> Result<(), VectorError> {
        for batch in points.chunks(UPSERT_BATCH) {
            let points: Vec<Value> = batch
                .iter()
                .map(|p| json!({ "id": p.id, "vector": p.vector, "payload": p.payload }))
                .collect();
            let body = json!({ "points": points });
            // `wait=true`: the call returns once the points are searchable, as pgvector's does.
            self.call(Method::PUT, collection, "/points?wait=true", Some(body))
                .await?;
        }
        Ok(())
    }

    pub async fn search(&self, collection: &str, search: &Search) -> Result<Vec<Hit>, VectorError> {
        let mut body = json!({
            "vector": search.vector,
            "limit": search.limit,
            "with_payload": true,
        });
        if let Some(filter) = &search.filter {
            body["filter"] = filter_json(filter);
        }
        if let Some(threshold) = search.score_threshold {
            body["score_threshold"] = json!(threshold);
        }
        let result = self
            .call(Method::POST, collection, "/points/search", Some(body))
            .await?;
        serde_json::from_value(result).map_err(|_| VectorError::Unavailable(Fault::Protocol))
    }

    pub async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<(), VectorError> {
        let body = json!({ "points": ids });
        self.call(
            Method::POST,
            collection,
            "/points/delete?wait=true",
            Some(body),
        )
        .await?;
        Ok(())
    }

    pub async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<(), VectorError> {
        let body = json!({ "filter": filter_json(filter) });
        self.call(
            Method::POST,
            collection,
            "/points/delete?wait=true",
            Some(body),
        )
        .await?;
        Ok(())
    }

    pub async fn count(
        &self,
        collection: &str,
        filter: Option<&Filter>,
    ) -> Result<u64, VectorError> {
        let mut body = json!({ "exact": true });
        if let Some(filter) = filter {
            body["filter"] = filter_json(filter);
        }
        let result = self
            .call(Method::POST, collection, "/points/count", Some(body))
            .await?;
        result["count"]
            .as_u64()
            .ok_or(VectorError::Unavailable(Fault::Protocol))
    }

    /// One call under `collections/{collection}`; returns the answer's `result`. Qdrant's
    /// errors come back as `{"status": {"error": "…"}}` with a 4xx or 5xx status.
    async fn call(
        &self,
        method: Method,
        collection: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, VectorError> {
        let mut request = self
            .api
            .request(method, &format!("collections/{collection}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| VectorError::Unavailable(classify(&e)))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            s if s.is_success() => Ok(answer["result"].clone()),
            StatusCode::NOT_FOUND => Err(VectorError::MissingCollection(collection.to_owned())),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(VectorError::Unavailable(Fault::Auth))
            }
            s if s.is_client_error() => Err(refusal(collection, s, &answer)),
            _ => Err(VectorError::Unavailable(Fault::Protocol)),
        }
    }
}

/// Qdrant's `must` filter with one `match` condition.
fn filter_json(filter: &Filter) -> Value {
    json!({ "must": [ { "key": filter.key, "match": { "value": filter.value } } ] })
}

/// A 4xx from Qdrant, turned into the error pgvector would give for the same mistake where
/// there is one. Qdrant words a dimension error "…expected dim: 128, got 3".
fn refusal(collection: &str, status: StatusCode, answer: &Value) -> VectorError {
    let message = match answer["status"]["error"].as_str() {
        Some(reason) => reason.to_owned(),
        None => format!("HTTP {status} without a reason"),
    };
    match dimensions_in(&message) {
        Some((expected, got)) => VectorError::WrongDimension {
            collection: collection.to_owned(),
            expected,
            got,
        },
        None => VectorError::Rejected(message),
    }
}

fn dimensions_in(message: &str) -> Option<(usize, usize)> {
    let (_, rest) = message.split_once("expected dim: ")?;
    let (expected, rest) = rest.split_once(", got ")?;
    let got: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((expected.trim().parse().ok()?, got.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdrant_dimension_errors_are_read_in_both_wordings() {
        let new = "Wrong input: Vector dimension error: expected dim: 128, got 3";
        let old = "Wrong input: Vector inserting error: expected dim: 768, got 1536";

        assert_eq!(dimensions_in(new), Some((128, 3)));
        assert_eq!(dimensions_in(old), Some((768, 1536)));
        assert_eq!(
            dimensions_in("Wrong input: Collection `x` already exists!"),
            None
        );
    }
}
