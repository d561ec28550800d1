//! `/api/v1/auth/…`: login, logout, who am I, and the admin's API key routes.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::json::JsonBody;
use super::{ApiError, AppState, ErrorCode};
use crate::auth::caller::session_cookie;
use crate::auth::jwt::Claims;
use crate::auth::{
    API_KEY_DEFAULT_DAYS, Caller, JWT_TTL, KeyCreateError, SESSION_COOKIE, SESSION_TTL,
    create_api_key, password, tokens,
};
use crate::db::{api_keys, sessions, users};

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

const BAD_LOGIN: &str = "invalid username or password";

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let client = peer.ip();
    let limiter = &state.auth.limiter;
    limiter
        .attempt(client, &request.username)
        .await
        .map_err(ApiError::rate_limited)?;

    let pool = &state.db.pool;
    let unavailable = |e: sqlx::Error| ApiError::unavailable("cannot look up the user", &e);
    // A name PostgreSQL cannot hold (NUL, other control characters) cannot exist: it is
    // checked against the dummy hash like any unknown name, never sent to the database.
    let user = if users::plausible_name(&request.username) {
        users::find_by_name(pool, &request.username)
            .await
            .map_err(unavailable)?
    } else {
        None
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Always verify, against a dummy hash when there is no such user: same time either way.
    let password_ok = password::verify(request.password, stored).await;
    let user = match user {
        Some(user) if password_ok && !user.disabled => user,
        _ => {
            tracing::warn!(client = %client, "login refused");
            return Err(ApiError::unauthorized(BAD_LOGIN));
        }
    };
    limiter.succeeded(client, &request.username).await;

    let session = tokens::random_token().map_err(|e| ApiError::internal("no randomness", &e))?;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    sessions::create(
        pool,
        &tokens::sha256_hex(&session),
        user.id,
        now + SESSION_TTL,
    )
    .await
    .map_err(|e| ApiError::unavailable("cannot store the session", &e))?;
    let jti = tokens::random_token().map_err(|e| ApiError::internal("no randomness", &e))?;
    let expires = now + JWT_TTL;
    let claims = Claims {
        sub: user.username.clone(),
        role: user.role.as_str().to_owned(),
        jti,
        exp: expires.unix_timestamp(),
        iat: now.unix_timestamp(),
    };
    let body = json!({
        "success": true,
        "jwt": state.auth.jwt.sign(&claims),
        "expires_at": expires.format(&Rfc3339).unwrap_or_default(),
        "user": { "username": user.username, "role": user.role },
    });
    tracing::info!(user = %user.username, client = %client, "user logged in");
    let cookie = session_cookie_header(
        &session,
        SESSION_TTL.whole_seconds(),
        state.auth.cookie_secure,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

fn session_cookie_header(value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    );
    // Cannot fail: the token is URL-safe base64 and the rest is ASCII.
    HeaderValue::from_str(&text).expect("cookie is a valid header value")
}

/// Ends the session behind the cookie and revokes the presented JWT, whichever are valid.
/// Always answers 200: logging out twice, or with nothing, leaves nobody logged in.
pub async fn logout(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let pool = &state.db.pool;
    let unavailable = |e: sqlx::Error| ApiError::unavailable("cannot log out", &e);
    if let Some(token) = session_cookie(&parts) {
        sessions::delete(pool, &tokens::sha256_hex(token))
            .await
            .map_err(unavailable)?;
    }
    if let Some(token) = bearer(&parts.headers) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Ok(claims) = state.auth.jwt.verify(token, now) {
            let expires = OffsetDateTime::from_unix_timestamp(claims.exp)
                .unwrap_or_else(|_| OffsetDateTime::now_utc() + JWT_TTL);
            sessions::revoke_token(pool, &claims.jti, expires)
                .await
                .map_err(unavailable)?;
        }
    }
    let cookie = session_cookie_header("", 0, state.auth.cookie_secure);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "success": true })),
    )
        .into_response())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(json!({
        "username": caller.username,
        "role": caller.role,
        "auth_method": caller.method,
    }))
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        tracing::warn!(method = ?caller.method, "admin route refused to a non-admin");
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "this needs the admin role",
        ))
    }
}

pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let keys = api_keys::list(&state.db.pool, None)
        .await
        .map_err(|e| ApiError::unavailable("cannot list API keys", &e))?;
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

#[derive(Deserialize)]
pub struct CreateKey {
    /// Whose key; the caller's own when absent.
    username: Option<String>,
    name: Option<String>,
    expires_days: Option<i64>,
}

pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateKey>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let username = request.username.unwrap_or_else(|| caller.username.clone());
    let days = request.expires_days.unwrap_or(API_KEY_DEFAULT_DAYS);
    let name = request.name.unwrap_or_else(|| "api".to_owned());
    let created = create_api_key(&state.db.pool, &username, &name, days).await?;
    tracing::info!(key_id = created.info.id, "API key created");
    let mut body = serde_json::to_value(&created.info).unwrap_or_default();
    body["key"] = json!(created.key);
    Ok((axum::http::StatusCode::CREATED, Json(body)).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "the key id must be a number"))?;
    let revoked = api_keys::revoke(&state.db.pool, id)
        .await
        .map_err(|e| ApiError::unavailable("cannot revoke the API key", &e))?;
    if !revoked {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no live API key with that id",
        ));
    }
    tracing::info!(key_id = id, "API key revoked");
    Ok(Json(json!({ "success": true })).into_response())
}

impl From<KeyCreateError> for ApiError {
    fn from(error: KeyCreateError) -> Self {
        match error {
            KeyCreateError::UnknownUser(_) => ApiError::new(ErrorCode::NotFound, error.to_string()),
            KeyCreateError::BadLifetime | KeyCreateError::BadName => {
                ApiError::new(ErrorCode::BadRequest, error.to_string())
            }
            KeyCreateError::Random(e) => ApiError::internal("cannot make an API key", &e),
            KeyCreateError::Database(e) => ApiError::unavailable("cannot store the API key", &e),
        }
    }
}
