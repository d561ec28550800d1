//! Qdrant over its REST API: readiness, and the collections reelbase stores vectors in.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

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

    /// A request to `path` under the base URL, with the API key when one is configured.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.api_key {
            Some(key) => request.header("api-key", key.expose()),
            None => request,
        }
    }

    /// Ready, with every collection present, of the right size and distance.
    /// `MissingCollection` and `CollectionMismatch` mean Qdrant answered but lacks what
    /// reelbase needs.
    pub async fn check(&self) -> Result<(), Fault> {
        let ready = self.request(reqwest::Method::GET, "readyz").send().await;
        status_fault(ready.map_err(|e| classify(&e))?.status())?;
        for (name, size) in COLLECTIONS {
            let found = self
                .request(reqwest::Method::GET, &format!("collections/{name}"))
                .send();
            let response = found.await.map_err(|e| classify(&e))?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(Fault::MissingCollection);
            }
            status_fault(response.status())?;
            let info: Value = response.json().await.map_err(|_| Fault::Protocol)?;
            match VectorsConfig::of(&info) {
                Some(config) if config.size == *size && config.is_cosine() => {}
                Some(_) => return Err(Fault::CollectionMismatch),
                None => return Err(Fault::Protocol),
            }
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

/// A collection's single unnamed vector: `result.config.params.vectors` of
/// `GET /collections/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorsConfig {
    pub size: usize,
    pub distance: String,
}

impl VectorsConfig {
    pub fn of(info: &Value) -> Option<Self> {
        let vectors = &info["result"]["config"]["params"]["vectors"];
        Some(Self {
            size: usize::try_from(vectors["size"].as_u64()?).ok()?,
            distance: vectors["distance"].as_str()?.to_owned(),
        })
    }

    pub fn is_cosine(&self) -> bool {
        self.distance == "Cosine"
    }
}

fn status_fault(status: StatusCode) -> Result<(), Fault> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Fault::Auth),
        _ => Err(Fault::Protocol),
    }
}
