//! SFTPGo, the upload front door, over its REST API: whether it answers its `/healthz`, and,
//! with admin credentials, which of its services are active (`/api/v2/status`).
//!
//! Admin access is a user and password, exchanged at `/api/v2/token` for a short-lived bearer
//! token, or an API key sent as `X-SFTPGO-API-KEY`. With both configured the token is used, as
//! SFTPGo's documentation recommends. The token is kept until shortly before its `expires_at`;
//! a 401 from `/status` with a kept token drops it and fetches one new token, once.
//!
//! Every call has the health timeout, redirects are not followed (a redirect elsewhere would
//! carry the API key header with it), and bodies are read up to a small limit. Nothing here
//! logs or returns a URL, a credential or an error message: only coarse classes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::classify;
use crate::config::{Secret, ServiceUrl, Settings};
use crate::health::Fault;

/// A token is not reused in its last half minute, so that a round started just before it
/// expires does not fail halfway through.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// `/healthz` answers `ok`; anything much longer is not SFTPGo.
const HEALTHZ_LIMIT: usize = 64;
/// A token document is a JWT and a date; the status document lists bindings and host keys.
const DOCUMENT_LIMIT: usize = 1 << 20;
const API_KEY_HEADER: &str = "x-sftpgo-api-key";

/// How reelbase signs in to SFTPGo's admin API.
pub enum Credentials {
    None,
    Password { user: String, password: Secret },
    ApiKey(Secret),
}

/// Whether the admin API told us what we asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAccess {
    Ok,
    /// No complete credentials: the admin API is not asked.
    NotConfigured,
    /// SFTPGo refused the credentials (401 or 403).
    Rejected,
    /// No usable answer: a timeout, a refused connection, a 5xx, a malformed document.
    Unavailable,
}

/// The four services reelbase reports from SFTPGo's `ServicesStatus`. The rest of that
/// document (bindings, host keys, the data provider's driver and error text) is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    pub ssh: Active,
    pub ftp: Active,
    pub webdav: Active,
    pub data_provider: Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub is_active: bool,
}

/// The outcome of one round of requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `/healthz` answered 200 `ok` in time.
    pub reachable: bool,
    /// Its round trip, when it did.
    pub latency: Option<Duration>,
    /// What failed first: `/healthz`, else the admin API (`auth` for refused credentials).
    pub error: Option<Fault>,
    pub admin: AdminAccess,
    pub services: Option<Services>,
}

enum AdminError {
    NotConfigured,
    Unauthorized,
    Forbidden,
    Failed(Fault),
}

impl From<Fault> for AdminError {
    fn from(fault: Fault) -> Self {
        AdminError::Failed(fault)
    }
}

enum Admin {
    None,
    Password {
        user: String,
        password: Secret,
    },
    /// Marked sensitive, so it never shows in a `Debug` of the request.
    ApiKey(HeaderValue),
}

struct Token {
    value: Secret,
    reuse_until: Instant,
}

pub struct Sftpgo {
    client: reqwest::Client,
    base: ServiceUrl,
    admin: Admin,
    timeout: Duration,
    token: Mutex<Option<Token>>,
    /// Set while the credentials are being refused, so the warning is logged once.
    rejected: AtomicBool,
}

impl Sftpgo {
    /// The client for the configured SFTPGo, or `None` when `REELBASE_SFTPGO_URL` is unset.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let base = settings.sftpgo_url.clone()?;
        let user = settings.sftpgo_user.clone();
        let password = settings.sftpgo_password.clone();
        if user.is_some() != password.is_some() {
            tracing::warn!(
                "only one of REELBASE_SFTPGO_USER and REELBASE_SFTPGO_PASSWORD is set; \
                 the pair is ignored"
            );
        }
        let credentials = match (user, password, settings.sftpgo_api_key.clone()) {
            (Some(user), Some(password), _) => Credentials::Password { user, password },
            (_, _, Some(key)) => Credentials::ApiKey(key),
            _ => Credentials::None,
        };
        Some(Self::new(base, credentials, settings.health_timeout))
    }

    /// `timeout` bounds each request, and the admin part of a probe as a whole.
    pub fn new(base: ServiceUrl, credentials: Credentials, timeout: Duration) -> Self {
        let admin = match credentials {
            Credentials::None => Admin::None,
            Credentials::Password { user, password } => Admin::Password { user, password },
            Credentials::ApiKey(key) => match HeaderValue::from_str(key.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Admin::ApiKey(value)
                }
                Err(_) => {
                    tracing::warn!("REELBASE_SFTPGO_API_KEY cannot be sent in a header; ignored");
                    Admin::None
                }
            },
        };
        // Building fails only when the TLS backend cannot start, where `Client::new` would
        // panic just the same.
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds");
        Self {
            client,
            base,
            admin,
            timeout,
            token: Mutex::new(None),
            rejected: AtomicBool::new(false),
        }
    }

    /// One round: `/healthz` and the admin API concurrently, so the round takes about one
    /// timeout at most, even when SFTPGo swallows every request.
    pub async fn probe(&self) -> Probe {
        let admin = async {
            tokio::time::timeout(self.timeout, self.services())
                .await
                .unwrap_or(Err(AdminError::Failed(Fault::Timeout)))
        };
        let (health, admin) = tokio::join!(self.healthz(), admin);

        let (admin, services, admin_fault) = match admin {
            Ok(services) => (AdminAccess::Ok, Some(services), None),
            Err(AdminError::NotConfigured) => (AdminAccess::NotConfigured, None, None),
            Err(AdminError::Unauthorized | AdminError::Forbidden) => {
                (AdminAccess::Rejected, None, Some(Fault::Auth))
            }
            Err(AdminError::Failed(fault)) => (AdminAccess::Unavailable, None, Some(fault)),
        };
        self.log_rejection(admin);
        let probe = Probe {
            reachable: health.is_ok(),
            latency: health.ok(),
            error: health.err().or(admin_fault),
            admin,
            services,
        };
        tracing::debug!(
            reachable = probe.reachable,
            admin = ?probe.admin,
            error = probe.error.map(Fault::as_str),
            "sftpgo probed"
        );
        probe
    }

    fn log_rejection(&self, admin: AdminAccess) {
        if admin == AdminAccess::Rejected {
            if !self.rejected.swap(true, Ordering::Relaxed) {
                tracing::warn!("SFTPGo refuses the configured admin credentials");
            }
        } else if admin == AdminAccess::Ok {
            self.rejected.store(false, Ordering::Relaxed);
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.base.expose().as_str().trim_end_matches('/')
        )
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).timeout(self.timeout)
    }

    /// The round trip of a `/healthz` that answered 200 `ok`.
    async fn healthz(&self) -> Result<Duration, Fault> {
        let started = Instant::now();
        let response = self.get("healthz").send().await.map_err(|e| classify(&e))?;
        if response.status() != StatusCode::OK {
            return Err(Fault::Protocol);
        }
        let body = read_limited(response, HEALTHZ_LIMIT).await?;
        if body.trim_ascii() != b"ok" {
            return Err(Fault::Protocol);
        }
        Ok(started.elapsed())
    }

    async fn services(&self) -> Result<Services, AdminError> {
        let (user, password) = match &self.admin {
            Admin::None => return Err(AdminError::NotConfigured),
            Admin::ApiKey(key) => {
                let request = self
                    .get("api/v2/status")
                    .header(API_KEY_HEADER, key.clone());
                return status(request).await;
            }
            Admin::Password { user, password } => (user, password),
        };
        let (token, kept) = match self.kept_token() {
            Some(token) => (token, true),
            None => (self.fetch_token(user, password).await?, false),
        };
        let mut result = self.status_with(&token).await;
        if kept && matches!(result, Err(AdminError::Unauthorized)) {
            // Revoked, or SFTPGo restarted with a new signing key: one fresh token.
            self.forget_token();
            let token = self.fetch_token(user, password).await?;
            result = self.status_with(&token).await;
        }
        if matches!(result, Err(AdminError::Unauthorized)) {
            self.forget_token();
        }
        result
    }

    async fn status_with(&self, token: &Secret) -> Result<Services, AdminError> {
        status(self.get("api/v2/status").bearer_auth(token.expose())).await
    }

    fn kept_token(&self) -> Option<Secret> {
        let token = self.token.lock().unwrap_or_else(|p| p.into_inner());
        token
            .as_ref()
            .filter(|t| Instant::now() < t.reuse_until)
            .map(|t| t.value.clone())
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A new token from `/api/v2/token` (HTTP basic auth), kept for reuse until shortly
    /// before its `expires_at`. One without a readable expiry is used once and not kept.
    async fn fetch_token(&self, user: &str, password: &Secret) -> Result<Secret, AdminError> {
        let request = self
            .get("api/v2/token")
            .basic_auth(user, Some(password.expose()));
        let response = request.send().await.map_err(|e| classify(&e))?;
        check_status(response.status())?;
        let body = read_limited(response, DOCUMENT_LIMIT).await?;

        let issued: IssuedToken = serde_json::from_slice(&body).map_err(|_| Fault::Protocol)?;
        if issued.access_token.is_empty() {
            return Err(AdminError::Failed(Fault::Protocol));
        }
        let value = Secret::new(issued.access_token);
        if let Some(lifetime) = issued.expires_at.as_deref().and_then(reusable_for) {
            let reuse_until = Instant::now() + lifetime;
            let kept = Token {
                value: value.clone(),
                reuse_until,
            };
            *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(kept);
        }
        Ok(value)
    }
}

/// SFTPGo's `Token` document.
#[derive(Deserialize)]
struct IssuedToken {
    access_token: String,
    expires_at: Option<String>,
}

/// How long a token expiring at `expires_at` (RFC 3339) may be reused from now: until the
/// margin before it expires, by this host's clock. A skewed clock costs at most a new token
/// per round, or one rejected `/status` followed by a fresh token.
fn reusable_for(expires_at: &str) -> Option<Duration> {
    let format = &time::format_description::well_known::Rfc3339;
    let expires_at = OffsetDateTime::parse(expires_at, format).ok()?;
    let left = Duration::try_from(expires_at - OffsetDateTime::now_utc()).ok()?;
    left.checked_sub(TOKEN_MARGIN).filter(|d| !d.is_zero())
}

async fn status(request: RequestBuilder) -> Result<Services, AdminError> {
    let response = request.send().await.map_err(|e| classify(&e))?;
    check_status(response.status())?;
    let body = read_limited(response, DOCUMENT_LIMIT).await?;
    serde_json::from_slice(&body).map_err(|_| AdminError::Failed(Fault::Protocol))
}

fn check_status(status: StatusCode) -> Result<(), AdminError> {
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::UNAUTHORIZED => Err(AdminError::Unauthorized),
        StatusCode::FORBIDDEN => Err(AdminError::Forbidden),
        _ => Err(AdminError::Failed(Fault::Protocol)),
    }
}

/// The body, or `Protocol` once it grows past `limit`: a misconfigured URL pointing at
/// something that streams must not fill memory within the timeout.
async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>, Fault> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(Fault::Protocol);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
