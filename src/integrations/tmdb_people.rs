//! TMDb's cast of a film or series and their profile photos, for the identity library.
//!
//! Every answer (JSON and photos) is kept on disk under `$REELBASE_DATA_DIR/cache/tmdb/`, so
//! a second import of the same title needs no network. Requests have short timeouts; a 429 is
//! waited out once when its `Retry-After` is short, and reported otherwise. The key is sent as
//! TMDb expects (a v4 read token as a bearer token, a v3 key as `api_key`) and never appears in
//! a log or an error: transport errors are reported without their URL.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::classify;
use crate::config::{Secret, ServiceUrl};
use crate::digest::hex;

const TIMEOUT: Duration = Duration::from_secs(10);
/// A 429 asking for at most this long is waited out (once); a longer one is reported.
const LONGEST_WAIT: Duration = Duration::from_secs(10);
/// Largest profile photo taken.
const MAX_PHOTO: usize = 8 * 1024 * 1024;
/// The profile size asked for: large enough for a face of a hundred pixels or more.
const PROFILE_SIZE: &str = "h632";

#[derive(Debug, thiserror::Error)]
pub enum TmdbError {
    #[error(
        "TMDb is not enabled here, or has no API key (REELBASE_TMDB_ENABLED, REELBASE_TMDB_API_KEY)"
    )]
    Disabled,
    #[error("TMDb has no {0}")]
    NotFound(String),
    #[error("TMDb asks to wait {0} s before the next request")]
    RateLimited(u64),
    #[error("TMDb refused the API key")]
    Refused,
    #[error("TMDb could not be reached: {0}")]
    Unreachable(String),
    #[error("TMDb answered with {0}")]
    Protocol(String),
    #[error("the TMDb cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// One cast member.
#[derive(Debug, Clone)]
pub struct CastMember {
    pub tmdb_id: i64,
    pub name: String,
    pub profile_path: Option<String>,
}

pub struct TmdbPeople {
    client: reqwest::Client,
    base: ServiceUrl,
    key: Secret,
    cache: PathBuf,
}

impl TmdbPeople {
    /// `None` when TMDb is disabled or has no key.
    pub fn new(
        base: ServiceUrl,
        key: Option<Secret>,
        enabled: bool,
        cache: PathBuf,
    ) -> Result<Self, TmdbError> {
        let key = key.filter(|_| enabled).ok_or(TmdbError::Disabled)?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Ok(Self {
            client,
            base,
            key,
            cache,
        })
    }

    fn api(&self, path: &str) -> String {
        format!(
            "{}/3/{path}",
            self.base.expose().as_str().trim_end_matches('/')
        )
    }

    /// The title's TMDb id and name: `kind` is `movie` or `tv`.
    pub async fn find(&self, kind: &str, title: &str) -> Result<(i64, String), TmdbError> {
        let found = self
            .json(&format!("search/{kind}"), &[("query", title)])
            .await?;
        let first = found["results"]
            .as_array()
            .and_then(|r| r.first())
            .ok_or_else(|| TmdbError::NotFound(format!("{kind} called {title:?}")))?;
        let id = first["id"]
            .as_i64()
            .ok_or_else(|| TmdbError::Protocol("a search result without an id".into()))?;
        let name = first["title"]
            .as_str()
            .or_else(|| first["name"].as_str())
            .unwrap_or(title)
            .to_owned();
        Ok((id, name))
    }

    /// The cast of a film or series, in billing order.
    pub async fn cast(&self, kind: &str, id: i64) -> Result<Vec<CastMember>, TmdbError> {
        let credits = self.json(&format!("{kind}/{id}/credits"), &[]).await?;
        let list = credits["cast"]
            .as_array()
            .ok_or_else(|| TmdbError::NotFound(format!("cast for {kind} {id}")))?;
        Ok(list
            .iter()
            .filter_map(|person| {
                Some(CastMember {
                    tmdb_id: person["id"].as_i64()?,
                    name: person["name"].as_str()?.trim().to_owned(),
                    profile_path: person["profile_path"].as_str().map(str::to_owned),
                })
            })
            .filter(|p| !p.name.is_empty())
            .collect())
    }

    /// A profile photo's bytes.
    pub async fn photo(&self, profile_path: &str) -> Result<Vec<u8>, TmdbError> {
        let name = profile_path.trim_start_matches('/');
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !plain || name.starts_with('.') || !name.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return Err(TmdbError::Protocol("an unusable profile path".into()));
        }
        let cached = self.cache.join("photos").join(name);
        if let Ok(bytes) = std::fs::read(&cached) {
            return Ok(bytes);
        }
        // A photo TMDb said it does not have is remembered too, so a second run stays offline.
        let missing = self.cache.join("photos").join(format!("{name}.missing"));
        if missing.exists() {
            return Err(TmdbError::NotFound("such profile photo".into()));
        }
        let config = self.json("configuration", &[]).await?;
        let images = &config["images"];
        let base = images["secure_base_url"]
            .as_str()
            .or_else(|| images["base_url"].as_str())
            .ok_or_else(|| {
                TmdbError::Protocol("a configuration without an image address".into())
            })?;
        let sizes: Vec<&str> = images["profile_sizes"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let size = if sizes.contains(&PROFILE_SIZE) {
            PROFILE_SIZE
        } else {
            "original"
        };
        let url = format!("{}/{size}/{name}", base.trim_end_matches('/'));
        let bytes = match self.fetch(&url, &[], false).await {
            Err(TmdbError::NotFound(_)) => {
                store(&missing, b"")?;
                return Err(TmdbError::NotFound("such profile photo".into()));
            }
            other => other?,
        };
        store(&cached, &bytes)?;
        Ok(bytes)
    }

    /// A JSON document of the API, from the cache or the network.
    async fn json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, TmdbError> {
        let mut key = path.to_owned();
        for (k, v) in query {
            key.push_str(&format!("&{k}={v}"));
        }
        let digest =
            crate::digest::sha256(key.as_bytes(), &std::sync::atomic::AtomicBool::new(false))?;
        let cached = self.cache.join(format!("{}.json", &hex(&digest)[..32]));
        if let Ok(bytes) = std::fs::read(&cached)
            && let Ok(value) = serde_json::from_slice(&bytes)
        {
            return Ok(value);
        }
        let bytes = self.fetch(&self.api(path), query, true).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| TmdbError::Protocol("a body that is not JSON".into()))?;
        store(&cached, &bytes)?;
        Ok(value)
    }

    async fn fetch(
        &self,
        url: &str,
        query: &[(&str, &str)],
        with_key: bool,
    ) -> Result<Vec<u8>, TmdbError> {
        let mut waited = false;
        loop {
            let mut request = self.client.get(url).query(query);
            if with_key {
                request = if self.key.expose().contains('.') {
                    request.bearer_auth(self.key.expose())
                } else {
                    request.query(&[("api_key", self.key.expose())])
                };
            }
            let response = request
                .send()
                .await
                .map_err(|e| TmdbError::Unreachable(classify(&e).as_str().to_owned()))?;
            match response.status() {
                status if status.is_success() => return read_capped(response).await,
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(LONGEST_WAIT.as_secs() + 1);
                    if waited || Duration::from_secs(wait) > LONGEST_WAIT {
                        return Err(TmdbError::RateLimited(wait));
                    }
                    waited = true;
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(TmdbError::Refused),
                StatusCode::NOT_FOUND => return Err(TmdbError::NotFound("such entry".into())),
                status => return Err(TmdbError::Protocol(status.to_string())),
            }
        }
    }
}

/// The body, read piece by piece and refused past `MAX_PHOTO` (a JSON answer is far smaller),
/// so an endless or huge body never fills memory.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, TmdbError> {
    let unreachable = |e: reqwest::Error| TmdbError::Unreachable(classify(&e).as_str().to_owned());
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PHOTO as u64)
    {
        return Err(TmdbError::Protocol("an answer larger than 8 MiB".into()));
    }
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(unreachable)? {
        if body.len() + piece.len() > MAX_PHOTO {
            return Err(TmdbError::Protocol("an answer larger than 8 MiB".into()));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

fn store(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::identities::write_atomic(path, bytes)
}
