//! The PostgreSQL pool. It connects lazily, so the server starts while PostgreSQL is down, and
//! it replaces broken connections by itself, so it recovers when PostgreSQL comes back.

pub mod api_keys;
pub mod files;
pub mod identities;
pub mod jobs;
pub mod migrations;
pub mod results;
pub mod search;
pub mod sessions;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::config::ServiceUrl;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL passed the config check but the driver refused it. The driver's message is not
    /// kept: it could quote the URL, password included.
    #[error("REELBASE_DATABASE_URL is not a usable PostgreSQL connection string")]
    BadUrl,
}

/// The pool and the options it was made from (the health check needs the address).
#[derive(Clone, Debug)]
pub struct Database {
    pub pool: PgPool,
    options: PgConnectOptions,
}

/// How long a caller waits for a pooled connection before giving up. Requests should fail
/// fast when PostgreSQL is down rather than pile up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Database {
    pub fn connect_lazy(url: &ServiceUrl) -> Result<Self, DbError> {
        Self::connect_lazy_with_timeout(url, ACQUIRE_TIMEOUT)
    }

    /// As `connect_lazy`, with how long a caller waits for a connection.
    pub fn connect_lazy_with_timeout(url: &ServiceUrl, acquire: Duration) -> Result<Self, DbError> {
        let options = PgConnectOptions::from_str(url.expose().as_str())
            .map_err(|_| DbError::BadUrl)?
            .application_name("reelbase")
            // Statements are logged at debug, never at info: they are per-request detail.
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(acquire)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(options.clone());
        Ok(Self { pool, options })
    }

    /// One connection outside the pool, for work that holds session state (advisory locks).
    /// Bounded by the pool's acquire timeout, so a silent server cannot hang the caller.
    pub async fn connect_one(&self) -> Result<PgConnection, sqlx::Error> {
        let timeout = self.pool.options().get_acquire_timeout();
        match tokio::time::timeout(timeout, PgConnection::connect_with(&self.options)).await {
            Ok(result) => result,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    /// Where PostgreSQL is reached: a Unix socket folder, or a host and port.
    pub fn target(&self) -> Target {
        let port = self.options.get_port();
        let host = self.options.get_host();
        // Same rule as the driver: an explicit socket folder, or a host that is a path.
        let dir = match self.options.get_socket() {
            Some(dir) => Some(dir.clone()),
            None if host.starts_with('/') => Some(std::path::PathBuf::from(host)),
            None => None,
        };
        match dir {
            Some(dir) => Target::Socket(dir.join(format!(".s.PGSQL.{port}"))),
            None => Target::Tcp(host.to_owned(), port),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    Socket(std::path::PathBuf),
    Tcp(String, u16),
}
