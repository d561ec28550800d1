//! TMDb: whether its API is reachable with the configured key, probed on its configuration
//! endpoint with a short timeout. Results are cached for a minute, and a 429 is honoured:
//! no probe is sent before its `Retry-After` has passed. The key is sent as TMDb expects
//! (a v4 read token as a bearer token, a v3 key as `api_key`) and never logged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;

use super::classify;
use crate::config::{Secret, ServiceUrl};

/// How long a probe result is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Wait after a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// `integrations.tmdb` in detailed health. It never changes the overall status.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TmdbReport {
    pub api_key_configured: bool,
    pub enabled: bool,
    /// `null` unless enabled with a key.
    pub api_reachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

pub struct Tmdb {
    client: reqwest::Client,
    base: ServiceUrl,
    key: Option<Secret>,
    enabled: bool,
    last: Mutex<Option<(Instant, TmdbReport)>>,
    quiet_until: Mutex<Option<Instant>>,
}

impl Tmdb {
    pub fn new(base: ServiceUrl, key: Option<Secret>, enabled: bool) -> Self {
        let client = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .connect_timeout(PROBE_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            client,
            base,
            key,
            enabled,
            last: Mutex::new(None),
            quiet_until: Mutex::new(None),
        }
    }

    pub async fn report(&self) -> TmdbReport {
        let mut report = TmdbReport {
            api_key_configured: self.key.is_some(),
            enabled: self.enabled,
            api_reachable: None,
            error: None,
        };
        let Some(key) = self.key.as_ref().filter(|_| self.enabled) else {
            return report;
        };
        if let Some(cached) = self.cached() {
            return cached;
        }
        let (reachable, error) = self.probe(key).await;
        report.api_reachable = Some(reachable);
        report.error = error;
        *lock(&self.last) = Some((Instant::now(), report.clone()));
        report
    }

    fn cached(&self) -> Option<TmdbReport> {
        let last = lock(&self.last).clone();
        let quiet = lock(&self.quiet_until).is_some_and(|until| Instant::now() < until);
        match last {
            Some((at, report)) if quiet || at.elapsed() < CACHE_FOR => Some(report),
            _ => None,
        }
    }

    async fn probe(&self, key: &Secret) -> (bool, Option<&'static str>) {
        let url = format!(
            "{}/3/configuration",
            self.base.expose().as_str().trim_end_matches('/')
        );
        let request = self.client.get(url);
        let request = if key.expose().contains('.') {
            request.bearer_auth(key.expose())
        } else {
            request.query(&[("api_key", key.expose())])
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (false, Some(classify(&error).as_str())),
        };
        match response.status() {
            status if status.is_success() => (true, None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (true, Some("auth")),
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_RETRY_AFTER);
                *lock(&self.quiet_until) = Some(Instant::now() + wait);
                (true, Some("rate_limited"))
            }
            _ => (false, Some("protocol")),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
