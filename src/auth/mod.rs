//! Authentication: passwords, sessions, JWTs, API keys, failed-login limits, and the one
//! place that decides who is calling (`caller`).

pub mod api_keys;
pub mod caller;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod rate_limit;
pub mod tokens;

use std::sync::Arc;

use serde::Serialize;

pub use api_keys::{API_KEY_DEFAULT_DAYS, CreatedKey, KeyCreateError, create_api_key};
pub use caller::{Caller, require_caller};
use jwt::JwtKey;
use rate_limit::LoginLimiter;

use crate::cache::Redis;
use crate::config::{Secret, Settings};
use crate::db::users::Role;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "session_id";
/// Lifetime of a server-side session.
pub const SESSION_TTL: time::Duration = time::Duration::hours(24);
/// Lifetime of a JWT.
pub const JWT_TTL: time::Duration = time::Duration::hours(1);

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Session,
    Jwt,
    ApiKey,
}

/// What the authentication code needs at run time.
pub struct Auth {
    pub jwt: JwtKey,
    pub limiter: LoginLimiter,
    pub cookie_secure: bool,
    pub api_key_in_query: bool,
}

impl Auth {
    pub fn new(settings: &Settings, jwt_secret: Secret, redis: Arc<Redis>) -> Self {
        Self {
            jwt: JwtKey::new(jwt_secret),
            limiter: LoginLimiter::new(redis, &settings.redis_prefix, settings.login_max_failures),
            cookie_secure: settings.cookie_secure,
            api_key_in_query: settings.api_key_in_query,
        }
    }
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
