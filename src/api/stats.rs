//! `GET /api/v1/stats/sftpgo` (public): whether SFTPGo, the upload front door, is configured
//! and reachable, which of its services are active, and how many files arrived as uploads in
//! the last 24 hours. Anyone may ask, so the body holds coarse classes only, never an address,
//! a credential or an error message.
//!
//! An answer is shared for five seconds and only one is built at a time (single-flight): a
//! burst of callers, such as a dashboard open in many tabs, makes one round of requests to
//! SFTPGo and one count in PostgreSQL, not one each. A round takes one health timeout at most.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::AppState;
use crate::config::Settings;
use crate::db::files;
use crate::health::Fault;
use crate::integrations::sftpgo::{AdminAccess, Services, Sftpgo};

/// How long an answer is served to later callers.
pub const SHARE_FOR: Duration = Duration::from_secs(5);

/// The body of `/api/v1/stats/sftpgo`. Every key is always present; `null` means not asked
/// (SFTPGo unconfigured, no credentials) or not answered.
#[derive(Debug, Clone, Serialize)]
pub struct SftpgoStats {
    pub configured: bool,
    pub reachable: Option<bool>,
    /// `/healthz` round trip in milliseconds (microsecond resolution), when it answered.
    pub latency_ms: Option<f64>,
    pub error: Option<Fault>,
    pub auth: AdminAccess,
    pub services: Option<Services>,
    pub uploads_last_24h: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// The SFTPGo client, if configured, and the latest answer.
pub struct SftpgoReports {
    client: Option<Sftpgo>,
    timeout: Duration,
    latest: Mutex<Option<(Instant, Arc<SftpgoStats>)>>,
    building: tokio::sync::Mutex<()>,
}

impl SftpgoReports {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            client: Sftpgo::from_settings(settings),
            timeout: settings.health_timeout,
            latest: Mutex::new(None),
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// An answer at most `SHARE_FOR` old.
    pub async fn get(&self, pool: &PgPool) -> Arc<SftpgoStats> {
        if let Some(stats) = self.fresh() {
            return stats;
        }
        let _building = self.building.lock().await;
        // Whoever held the lock before us has probably just built one.
        if let Some(stats) = self.fresh() {
            return stats;
        }
        let stats = Arc::new(self.build(pool).await);
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), stats.clone()));
        stats
    }

    fn fresh(&self) -> Option<Arc<SftpgoStats>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SHARE_FOR)
            .map(|(_, stats)| stats.clone())
    }

    async fn build(&self, pool: &PgPool) -> SftpgoStats {
        let uploads = async {
            match tokio::time::timeout(self.timeout, files::uploads_last_24h(pool)).await {
                Ok(Ok(count)) => Some(count),
                Ok(Err(error)) => {
                    tracing::debug!(error = %error, "uploads in the last 24 h not counted");
                    None
                }
                Err(_) => None,
            }
        };
        let probe = async {
            match &self.client {
                Some(client) => Some(client.probe().await),
                None => None,
            }
        };
        let (uploads_last_24h, probe) = tokio::join!(uploads, probe);

        let now = OffsetDateTime::now_utc();
        // Milliseconds are plenty to tell rounds apart.
        let checked_at = now.replace_millisecond(now.millisecond()).unwrap_or(now);
        let Some(probe) = probe else {
            return SftpgoStats {
                configured: false,
                reachable: None,
                latency_ms: None,
                error: None,
                auth: AdminAccess::NotConfigured,
                services: None,
                uploads_last_24h,
                checked_at,
            };
        };
        SftpgoStats {
            configured: true,
            reachable: Some(probe.reachable),
            latency_ms: probe.latency.map(|d| d.as_micros() as f64 / 1000.0),
            error: probe.error,
            auth: probe.admin,
            services: probe.services,
            uploads_last_24h,
            checked_at,
        }
    }
}

const NO_STORE: [(header::HeaderName, HeaderValue); 1] =
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];

/// Always 200: an SFTPGo that is down or unconfigured is an answer, not a failure of ours.
pub async fn sftpgo(State(state): State<AppState>) -> Response {
    let stats = state.sftpgo.get(&state.db.pool).await;
    (NO_STORE, Json(stats.as_ref())).into_response()
}
