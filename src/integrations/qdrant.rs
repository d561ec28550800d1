//! Qdrant over its REST API: readiness, and the collections reelbase stores vectors in.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::classify;
use crate::config::{Secret, ServiceUrl};
use crate::health::Fault;

/// The collections reelbase uses, with their vector size (cosine distance): dlib face
/// vectors, and MiniLM text vectors for visual chunks and transcript chunks.
pub const COLLECTIONS: &[(&str, usize)] = &[
    ("reelbase_faces", 128),
    ("reelbase_visual_chunks", 384),
    ("reelbase_transcripts", 384),
];

pub struct Qdrant {
    client: reqwest::Client,
    base: ServiceUrl,
    api_key: Option<Secret>,
}

impl Qdrant {
    pub fn new(base: ServiceUrl, api_key: Option<Secret>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            client,
            base,
            api_key,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.base.expose().as_str().trim_end_matches('/')
        )
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.api_key {
            Some(key) => request.header("api-key", key.expose()),
            None => request,
        }
    }

    /// Ready, with every collection present. `MissingCollection` means Qdrant answered but
    /// lacks what reelbase needs.
    pub async fn check(&self) -> Result<(), Fault> {
        let ready = self.request(reqwest::Method::GET, "readyz").send().await;
        status_fault(ready.map_err(|e| classify(&e))?.status())?;
        for (name, _) in COLLECTIONS {
            let found = self
                .request(reqwest::Method::GET, &format!("collections/{name}"))
                .send();
            let status = found.await.map_err(|e| classify(&e))?.status();
            if status == StatusCode::NOT_FOUND {
                return Err(Fault::MissingCollection);
            }
            status_fault(status)?;
        }
        Ok(())
    }

    /// Creates the collections that do not exist yet; returns the names it created.
    pub async fn ensure_collections(&self) -> Result<Vec<&'static str>, Fault> {
        let mut created = Vec::new();
        for (name, size) in COLLECTIONS {
            let path = format!("collections/{name}");
            let found = self.request(reqwest::Method::GET, &path).send().await;
            let status = found.map_err(|e| classify(&e))?.status();
            if status != StatusCode::NOT_FOUND {
                status_fault(status)?;
                continue;
            }
            let body = json!({ "vectors": { "size": size, "distance": "Cosine" } });
            let made = self
                .request(reqwest::Method::PUT, &path)
                .json(&body)
                .send()
                .await;
            status_fault(made.map_err(|e| classify(&e))?.status())?;
            created.push(*name);
        }
        Ok(created)
    }
}

fn status_fault(status: StatusCode) -> Result<(), Fault> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Fault::Auth),
        _ => Err(Fault::Protocol),
    }
}
