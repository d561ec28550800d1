//! The Redis connection. `ConnectionManager` multiplexes one connection and reconnects after
//! I/O errors, but it gives up on a connection attempt that timed out or on a server that
//! never answered; `Redis::reset` swaps in a fresh manager after any failure, so the next
//! caller always tries again and reelbase recovers when Redis comes back, without a restart.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::ServiceUrl;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The driver refused the URL. Its message is not kept: it could quote a password.
    #[error("REELBASE_REDIS_URL is not a usable Redis URL")]
    BadUrl,
}

pub struct Redis {
    client: redis::Client,
    config: ConnectionManagerConfig,
    manager: Mutex<ConnectionManager>,
}

impl Redis {
    /// Creates the handle without connecting; the first command connects.
    /// `timeout` bounds each connection attempt and each response.
    pub fn connect_lazy(url: &ServiceUrl, timeout: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url.expose().as_str()).map_err(|_| CacheError::BadUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One retry: callers have their own deadlines, and `reset` handles the rest.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|_| CacheError::BadUrl)?;
        Ok(Self {
            client,
            config,
            manager: Mutex::new(manager),
        })
    }

    /// A handle to the current connection; cheap to clone, safe to use concurrently.
    pub fn connection(&self) -> ConnectionManager {
        self.manager
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Replaces the connection after a failure, so the next command starts a new attempt.
    pub fn reset(&self) {
        // Cannot fail: the same client and config already built a manager once.
        if let Ok(fresh) =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
        {
            *self
                .manager
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = fresh;
        }
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection();
        let reply: String = redis::cmd("PING").query_async(&mut conn).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err((redis::ErrorKind::Parse, "unexpected reply to PING").into())
        }
    }
}
