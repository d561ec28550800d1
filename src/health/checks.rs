//! One check per service. Each runs under its own timeout and turns whatever went wrong into a
//! coarse `Fault`, so that no driver message, host or credential reaches a health report.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::cache::Redis;
use crate::db::{Database, Target};
use crate::integrations::qdrant::Qdrant;

use super::snapshot::{Fault, ServiceHealth, Status};

/// Limits shared by every check.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub slow: Duration,
}

/// How long the follow-up probe that tells "refused" from "timed out" may take.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// PostgreSQL: a real `SELECT 1` through the pool.
pub async fn postgres(db: &Database, limits: Limits) -> ServiceHealth {
    let started = Instant::now();
    // With no pooled connection, the pool would retry a refused connection until the
    // timeout. One direct attempt first tells a server that is down at once.
    if db.pool.size() == 0
        && let Some(fault) = quick_refusal(db).await
    {
        return finish(started, Some(fault), limits);
    }
    let outcome = tokio::time::timeout(limits.timeout, async {
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&db.pool).await?;
        Ok::<_, sqlx::Error>(one)
    })
    .await;
    let fault = match outcome {
        Ok(Ok(1)) => None,
        Ok(Ok(_)) => Some(Fault::Protocol),
        // The pool retries refused connections until its deadline, so a pool timeout may
        // hide a refusal: ask the socket directly.
        Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Some(diagnose_unanswered(db).await),
        Ok(Err(error)) => Some(classify_sqlx(&error)),
    };
    finish(started, fault, limits)
}

/// Redis: `PING`, expecting `PONG`. A connection that died since the last round is not news:
/// the check then tries once more on a fresh connection, within the same timeout, so the
/// report says what Redis is like now.
pub async fn redis(redis: &Redis, limits: Limits) -> ServiceHealth {
    let started = Instant::now();
    let attempts = async {
        match redis.ping().await {
            Err(error) if error.is_connection_dropped() || error.is_io_error() => {
                redis.reset();
                redis.ping().await
            }
            other => other,
        }
    };
    let fault = match tokio::time::timeout(limits.timeout, attempts).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(classify_redis(&error)),
        Err(_) => Some(Fault::Timeout),
    };
    if fault.is_some() {
        redis.reset();
    }
    finish(started, fault, limits)
}

/// Qdrant: its readiness endpoint, then each collection reelbase uses, with its size and
/// distance.
pub async fn qdrant(qdrant: &Qdrant, limits: Limits) -> ServiceHealth {
    let started = Instant::now();
    let fault = match tokio::time::timeout(limits.timeout, qdrant.check()).await {
        Ok(Ok(())) => None,
        Ok(Err(fault)) => Some(fault),
        Err(_) => Some(Fault::Timeout),
    };
    finish(started, fault, limits)
}

fn finish(started: Instant, fault: Option<Fault>, limits: Limits) -> ServiceHealth {
    let elapsed = started.elapsed();
    let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let (status, error) = match fault {
        // It answered, but without what we need: degraded, not down.
        Some(fault @ (Fault::MissingCollection | Fault::CollectionMismatch)) => {
            (Status::Degraded, Some(fault))
        }
        Some(fault) => (Status::Error, Some(fault)),
        None if elapsed > limits.slow => (Status::Degraded, Some(Fault::Slow)),
        None => (Status::Ok, None),
    };
    ServiceHealth {
        status,
        latency_ms,
        error,
    }
}

fn classify_sqlx(error: &sqlx::Error) -> Fault {
    match error {
        sqlx::Error::Io(io) => classify_io(io.kind()),
        sqlx::Error::PoolTimedOut => Fault::Timeout,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01") | Some("28000") => Fault::Auth,
            // invalid_catalog_name: the configured database does not exist
            Some("3D000") => Fault::MissingDatabase,
            _ => Fault::Protocol,
        },
        _ => Fault::Protocol,
    }
}

fn classify_redis(error: &redis::RedisError) -> Fault {
    if error.is_timeout() {
        Fault::Timeout
    } else if error.is_connection_refusal() {
        Fault::Refused
    } else if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        Fault::Auth
    } else if error.is_io_error() || error.is_connection_dropped() {
        Fault::Unreachable
    } else {
        Fault::Protocol
    }
}

fn classify_io(kind: std::io::ErrorKind) -> Fault {
    match kind {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => Fault::Refused,
        std::io::ErrorKind::TimedOut => Fault::Timeout,
        _ => Fault::Unreachable,
    }
}

/// PostgreSQL did not answer in time. Tells a server that is down (refused, no socket) from
/// one that accepts but stays silent, with one short connection attempt.
async fn diagnose_unanswered(db: &Database) -> Fault {
    let attempt = async {
        match db.target() {
            Target::Socket(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            Target::Tcp(host, port) => tokio::net::TcpStream::connect((host, port)).await.map(drop),
        }
    };
    match with_timeout(DIAGNOSE_TIMEOUT, attempt).await {
        Some(Err(error)) => classify_io(error.kind()),
        // It accepts connections (or the attempt hangs): the server is silent.
        Some(Ok(())) | None => Fault::Timeout,
    }
}

/// `Some` when PostgreSQL's address refuses connections (or its socket is missing).
async fn quick_refusal(db: &Database) -> Option<Fault> {
    match diagnose_unanswered(db).await {
        Fault::Refused => Some(Fault::Refused),
        _ => None,
    }
}

async fn with_timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, future).await.ok()
}
