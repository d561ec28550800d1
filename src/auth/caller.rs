//! Who is calling. One function decides, in a fixed order: the `session_id` cookie, then
//! `Authorization: Bearer <jwt>`, then `X-API-Key` (then `?api_key=` when enabled). The first
//! credential present decides: an invalid one is refused, never skipped in favour of the next,
//! so what a request is judged on never depends on which headers an attacker adds.
//!
//! Every way in loads the user from PostgreSQL on every request, so disabling a user or
//! changing a role takes effect at once, whatever tokens are still in circulation.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::{AuthMethod, SESSION_COOKIE, jwt::Claims, tokens};
use crate::api::{ApiError, AppState};
use crate::db::users::{Role, User};
use crate::db::{api_keys, sessions, users};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub method: AuthMethod,
    /// The verified token, when the caller came with a JWT (logout revokes it).
    pub claims: Option<Claims>,
}

/// The credential a request carries, before it is checked.
enum Credential<'a> {
    Session(&'a str),
    Bearer(&'a str),
    ApiKey(&'a str),
}

fn credential(parts: &Parts, query_keys: bool) -> Result<Option<Credential<'_>>, ApiError> {
    if let Some(token) = session_cookie(parts) {
        return Ok(Some(Credential::Session(token)));
    }
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(Credential::Bearer(token.trim())))
            }
            _ => Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            )),
        };
    }
    if let Some(value) = parts.headers.get("x-api-key") {
        return Ok(Some(Credential::ApiKey(
            value.to_str().unwrap_or_default().trim(),
        )));
    }
    if query_keys {
        let query = parts.uri.query().unwrap_or_default();
        let key = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("api_key="));
        if let Some(key) = key {
            return Ok(Some(Credential::ApiKey(key)));
        }
    }
    Ok(None)
}

/// The value of the `session_id` cookie, from any `Cookie` header.
pub fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Decides who is calling, or why they are refused.
pub async fn identify(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    let pool = &state.db.pool;
    let unavailable = |e: sqlx::Error| ApiError::unavailable("cannot check credentials", &e);
    let credential = credential(parts, state.auth.api_key_in_query)?
        .ok_or_else(|| ApiError::unauthorized("authentication required"))?;
    let (user, method, claims) = match credential {
        Credential::Session(token) => {
            let user = sessions::find_user(pool, &tokens::sha256_hex(token))
                .await
                .map_err(unavailable)?
                .ok_or_else(|| ApiError::unauthorized("the session has ended; log in again"))?;
            (user, AuthMethod::Session, None)
        }
        Credential::Bearer(token) => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let claims = state.auth.jwt.verify(token, now).map_err(|error| {
                tracing::warn!(reason = %error, "bearer token refused");
                ApiError::unauthorized("the token is invalid or expired")
            })?;
            if sessions::is_revoked(pool, &claims.jti)
                .await
                .map_err(unavailable)?
            {
                return Err(ApiError::unauthorized("the token has been revoked"));
            }
            let user = users::find_by_name(pool, &claims.sub)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
            (user, AuthMethod::Jwt, Some(claims))
        }
        Credential::ApiKey(key) => {
            let user = api_keys::find_user(pool, &tokens::sha256_hex(key))
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    ApiError::unauthorized("the API key is invalid, expired or revoked")
                })?;
            (user, AuthMethod::ApiKey, None)
        }
    };
    caller(user, method, claims)
}

fn caller(user: User, method: AuthMethod, claims: Option<Claims>) -> Result<Caller, ApiError> {
    if user.disabled {
        tracing::warn!(method = ?method, "credentials of a disabled user refused");
        return Err(ApiError::unauthorized("this account is disabled"));
    }
    Ok(Caller {
        user_id: user.id,
        username: user.username,
        role: user.role,
        method,
        claims,
    })
}

/// Middleware for every route that is not explicitly public: refuses anonymous and invalid
/// callers with 401 before routing, so unknown paths and spelling variants of private ones
/// (`/HEALTH/detailed`, `/health/detailed/`, encoded slashes) never reveal anything.
pub async fn require_caller(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match identify(&state, &parts).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            let route = route.unwrap_or("unmatched");
            tracing::warn!(
                route,
                code = error.code().as_str(),
                "request refused: not authenticated"
            );
            error.into_response()
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        identify(state, parts).await
    }
}
