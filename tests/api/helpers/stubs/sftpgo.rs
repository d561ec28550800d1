//! SFTPGo's admin REST API as its OpenAPI description (v2.7) has it: `/healthz` at the root
//! answers the text `ok`; `/api/v2/token` takes HTTP basic auth and returns `{access_token,
//! expires_at}`; `/api/v2/status` takes a bearer token or an `X-SFTPGO-API-KEY` and returns
//! a `ServicesStatus` document. Refusals carry SFTPGo's `{error, message}` body.
//!
//! A test can make it slow or failing (`Behaviour`), switch services on and off, revoke the
//! tokens it issued, shorten their lifetime, or make `/status` refuse everyone; it counts the
//! requests each route received.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Behaviour, start};

/// SFTPGo's default lifetime of an admin token.
const TOKEN_LIFETIME: Duration = Duration::from_secs(20 * 60);

/// Requests received, by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SftpgoRequests {
    pub healthz: usize,
    pub token: usize,
    pub status: usize,
}

struct SftpgoState {
    user: String,
    password: String,
    api_key: String,
    behaviour: Mutex<Behaviour>,
    /// `is_active` of ssh, ftp, webdav and data_provider.
    active: Mutex<[bool; 4]>,
    valid_tokens: Mutex<HashSet<String>>,
    issued: Mutex<Vec<String>>,
    token_lifetime: Mutex<Duration>,
    status_refusal: Mutex<Option<StatusCode>>,
    healthz: AtomicUsize,
    token: AtomicUsize,
    status: AtomicUsize,
}

#[derive(Clone)]
pub struct SftpgoStub {
    pub addr: SocketAddr,
    state: Arc<SftpgoState>,
}

impl SftpgoStub {
    /// An SFTPGo with one admin (`user`, `password`) and one admin API key; every service on.
    pub async fn start(user: &str, password: &str, api_key: &str) -> Self {
        let state = Arc::new(SftpgoState {
            user: user.to_owned(),
            password: password.to_owned(),
            api_key: api_key.to_owned(),
            behaviour: Mutex::default(),
            active: Mutex::new([true; 4]),
            valid_tokens: Mutex::default(),
            issued: Mutex::default(),
            token_lifetime: Mutex::new(TOKEN_LIFETIME),
            status_refusal: Mutex::default(),
            healthz: AtomicUsize::new(0),
            token: AtomicUsize::new(0),
            status: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/api/v2/token", get(token))
            .route("/api/v2/status", get(status))
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

    /// Sets `is_active` of `ssh`, `ftp`, `webdav` and `data_provider`, in that order.
    pub fn set_active(&self, ssh: bool, ftp: bool, webdav: bool, data_provider: bool) {
        *self.state.active.lock().unwrap() = [ssh, ftp, webdav, data_provider];
    }

    /// Every token issued so far stops being accepted, as after an SFTPGo restart.
    pub fn revoke_tokens(&self) {
        self.state.valid_tokens.lock().unwrap().clear();
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.state.token_lifetime.lock().unwrap() = lifetime;
    }

    /// `/status` answers this refusal to everyone (401: no valid credentials; 403: an admin
    /// without the permission to view the status).
    pub fn refuse_status(&self, refusal: Option<StatusCode>) {
        *self.state.status_refusal.lock().unwrap() = refusal;
    }

    /// Every token this stub has issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }

    pub fn requests(&self) -> SftpgoRequests {
        SftpgoRequests {
            healthz: self.state.healthz.load(Ordering::SeqCst),
            token: self.state.token.load(Ordering::SeqCst),
            status: self.state.status.load(Ordering::SeqCst),
        }
    }
}

/// SFTPGo's `ApiResponse` error body.
fn refusal(code: StatusCode, error: &str) -> Response {
    (code, Json(json!({"error": error, "message": ""}))).into_response()
}

/// Applies the behaviour every route shares; `Some` short-circuits.
async fn gate(state: &SftpgoState) -> Option<Response> {
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Normal => None,
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Behaviour::ServerError => Some(refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        )),
        Behaviour::RateLimited { retry_after_s } => {
            let mut response = refusal(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_s.into());
            Some(response)
        }
    }
}

async fn healthz(State(state): State<Arc<SftpgoState>>) -> Response {
    state.healthz.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&state).await {
        return response;
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn token(State(state): State<Arc<SftpgoState>>, headers: HeaderMap) -> Response {
    let n = state.token.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&state).await {
        return response;
    }
    if basic_credentials(&headers) != Some((state.user.clone(), state.password.clone())) {
        let mut response = refusal(StatusCode::UNAUTHORIZED, "Unauthorized");
        let challenge = "Basic realm=\"SFTPGo\"".parse().unwrap();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        return response;
    }
    let nanos = OffsetDateTime::now_utc().nanosecond();
    let access_token = format!("eyJhbGciOiJIUzI1NiJ9.c3R1Yi0{n}.sig{nanos:08x}");
    state
        .valid_tokens
        .lock()
        .unwrap()
        .insert(access_token.clone());
    state.issued.lock().unwrap().push(access_token.clone());
    let lifetime = *state.token_lifetime.lock().unwrap();
    let expires_at = (OffsetDateTime::now_utc() + lifetime)
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    Json(json!({"access_token": access_token, "expires_at": expires_at})).into_response()
}

fn admitted(state: &SftpgoState, headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-sftpgo-api-key") == Some(state.api_key.as_str()) {
        return true;
    }
    header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| state.valid_tokens.lock().unwrap().contains(token))
}

async fn status(State(state): State<Arc<SftpgoState>>, headers: HeaderMap) -> Response {
    state.status.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&state).await {
        return response;
    }
    let forced = *state.status_refusal.lock().unwrap();
    if let Some(code) = forced {
        return refusal(code, "Unauthorized");
    }
    if !admitted(&state, &headers) {
        return refusal(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let active = *state.active.lock().unwrap();
    Json(services_status(active)).into_response()
}

/// A `ServicesStatus` as a default SFTPGo install reports it, with the flags a test chose.
/// An inactive data provider carries the driver's error text, address included, as SFTPGo's
/// does: reelbase must not pass that on.
fn services_status([ssh, ftp, webdav, data_provider]: [bool; 4]) -> Value {
    let provider_error = if data_provider {
        String::new()
    } else {
        "dial tcp 10.1.2.3:5432: connect: connection refused".to_owned()
    };
    let ftp_bindings = if ftp {
        json!([{"address": "", "port": 2121, "tls_mode": 0}])
    } else {
        Value::Null
    };
    let totp = json!([{"name": "Default", "issuer": "SFTPGo", "algo": "sha1"}]);
    json!({
        "ssh": {
            "is_active": ssh,
            "bindings": [{"address": "", "port": 2022, "apply_proxy_config": true}],
            "host_keys": [{
                "path": "id_ecdsa",
                "fingerprint": "SHA256:Vb6Qm2Zk0xk3pJp0a2M1S4vQWc0mGxjZ6x0Qd1Yk3aE",
                "algorithms": ["ecdsa-sha2-nistp256"]
            }],
            "ssh_commands": ["md5sum", "sha1sum", "sha256sum", "cd", "pwd", "scp"],
            "authentications": ["publickey", "password", "keyboard-interactive"],
            "public_key_algorithms": ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"],
            "macs": ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"],
            "kex_algorithms": ["curve25519-sha256", "ecdh-sha2-nistp256"],
            "ciphers": ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
        },
        "ftp": {
            "is_active": ftp,
            "bindings": ftp_bindings,
            "passive_port_range": {"start": 50000, "end": 50100}
        },
        "webdav": {
            "is_active": webdav,
            "bindings": [{"address": "", "port": 10080, "enable_https": false, "prefix": ""}]
        },
        "data_provider": {
            "is_active": data_provider,
            "driver": "postgresql",
            "error": provider_error
        },
        "defender": {"is_active": false},
        "mfa": {"is_active": true, "totp_configs": totp},
        "allow_list": {"is_active": false},
        "rate_limiters": {"is_active": false, "protocols": ["SSH", "FTP", "DAV", "HTTP"]}
    })
}
