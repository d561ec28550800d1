//! Builds the application (settings, pool, Redis, health monitor, router), binds the listener
//! first so the real port is known, and serves until a shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppContext, AppState};
use crate::cache::{CacheError, Redis};
use crate::config::Settings;
use crate::db::{Database, DbError};
use crate::health::{HealthMonitor, Limits, Probes};

/// How long in-flight requests get to finish after shutdown starts. A client that holds a
/// connection open longer than this must not keep the process alive forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("the server stopped with an I/O error: {0}")]
    Serve(std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    extra_routes: Router,
    stop_background: watch::Sender<bool>,
    monitor_task: JoinHandle<()>,
}

impl Application {
    /// Binds the listener and takes the first health snapshot. Connections that arrive before
    /// `run_until` wait in the listen backlog, so no request sees an unmeasured status.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let started = Instant::now();
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        let addr = listener.local_addr().map_err(StartupError::Serve)?;

        let db = Database::connect_lazy(&settings.database_url)?;
        let redis = Arc::new(Redis::connect_lazy(
            &settings.redis_url,
            settings.health_timeout,
        )?);
        let limits = Limits {
            timeout: settings.health_timeout,
            slow: settings.health_slow,
        };
        let probes = Probes {
            db: db.clone(),
            redis: redis.clone(),
            limits,
        };
        let (stop_background, stop_rx) = watch::channel(false);
        let (health, monitor_task) =
            HealthMonitor::start(probes, settings.health_interval, stop_rx).await;

        let context = AppContext {
            settings: Arc::new(settings),
            db,
            redis,
            health,
            started,
        };
        let state = AppState::new(context);
        Ok(Self {
            listener,
            addr,
            state,
            extra_routes: Router::new(),
            stop_background,
            monitor_task,
        })
    }

    /// The address actually bound (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn health(&self) -> HealthMonitor {
        self.state.health.clone()
    }

    /// Adds routes beside the API, for embedders and for tests that need a handler the API
    /// does not have (such as a deliberately slow one to exercise graceful shutdown).
    pub fn merge_routes(mut self, routes: Router) -> Self {
        self.extra_routes = self.extra_routes.merge(routes);
        self
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish (within a grace
    /// period), then stops the background tasks and closes the pool.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), StartupError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let router = api::router(self.state.clone(), self.extra_routes);
        let (started_shutdown, mut shutdown_seen) = watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            let _ = started_shutdown.send(true);
        };
        tracing::info!(addr = %self.addr, "listening");

        let serve = axum::serve(self.listener, router).with_graceful_shutdown(signal);
        let grace_over = async {
            let _ = shutdown_seen.wait_for(|seen| *seen).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            served = serve.into_future() => served,
            () = grace_over => {
                tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "requests still open after the grace period; closing them");
                Ok(())
            }
        };

        let _ = self.stop_background.send(true);
        let _ = self.monitor_task.await;
        self.state.db.pool.close().await;
        tracing::info!("stopped");
        served.map_err(StartupError::Serve)
    }
}
