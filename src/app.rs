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
use crate::auth::keys::{self, KeyError};
use crate::auth::{Auth, password};
use crate::cache::{CacheError, Redis};
use crate::config::Settings;
use crate::db::{Database, DbError, migrations};
use crate::health::report::{DetailedReports, ReportDirs};
use crate::health::{HealthMonitor, Limits, Probes, resources};
use crate::pipeline::readiness::PipelineChecker;
use crate::server;

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
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the server stopped with an I/O error: {0}")]
    Serve(std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    extra_routes: Router,
    stop_background: watch::Sender<bool>,
    /// The health monitor and, while PostgreSQL has not been reachable, the migrator.
    background: Vec<JoinHandle<()>>,
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
        let mut background = Vec::new();
        // Migrate before the first health round, so a healthy start reports a current schema.
        if settings.auto_migrate && migrate_once(&db).await == Migrated::RetryLater {
            let stop = stop_background.subscribe();
            let retry = migrate_when_reachable(db.clone(), settings.health_interval, stop);
            background.push(tokio::spawn(retry));
        }
        let (health, monitor_task) =
            HealthMonitor::start(probes.clone(), settings.health_interval, stop_rx).await;
        background.push(monitor_task);
        let (cpu, cpu_task) = resources::spawn_cpu_sampler(stop_background.subscribe());
        background.push(cpu_task);
        let pipeline = PipelineChecker::new(
            settings.scripts_dir.clone(),
            settings.models_dir.clone(),
            settings.ffmpeg.clone(),
            settings.ffprobe.clone(),
        );
        let dirs = ReportDirs {
            data: settings.data_dir.clone(),
            identities: settings.identities_dir.clone(),
        };
        let reports = DetailedReports::new(probes, pipeline, cpu, dirs);

        let jwt_secret = keys::load_or_create(&settings)?;
        password::warm_up();
        let auth = Auth::new(&settings, jwt_secret, redis.clone());
        let context = AppContext {
            auth,
            reports,
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
            background,
        })
    }

    /// The address actually bound (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn health(&self) -> HealthMonitor {
        self.state.health.clone()
    }

    /// Adds public routes (no authentication) beside the API, for tests that need a handler
    /// the API does not have, such as a deliberately slow one to exercise graceful shutdown.
    pub fn merge_public_routes(mut self, routes: Router) -> Self {
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
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested; finishing in-flight requests");
        };
        tracing::info!(addr = %self.addr, "listening");

        let closed_in_time = server::serve(self.listener, router, signal, SHUTDOWN_GRACE).await;
        if !closed_in_time {
            tracing::warn!(
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "requests still open after the grace period; closing them"
            );
        }

        let _ = self.stop_background.send(true);
        for task in self.background {
            let _ = task.await;
        }
        self.state.db.pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a start-up migration may wait for a PostgreSQL connection.
const MIGRATE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
enum Migrated {
    /// Done, or failed in a way retrying will not fix (logged).
    Settled,
    /// PostgreSQL could not be reached; try again later.
    RetryLater,
}

async fn migrate_once(db: &Database) -> Migrated {
    let connection = tokio::time::timeout(MIGRATE_CONNECT_TIMEOUT, db.connect_one()).await;
    let Ok(Ok(connection)) = connection else {
        tracing::warn!("cannot reach PostgreSQL to apply migrations; will retry");
        return Migrated::RetryLater;
    };
    match migrations::migrate(connection).await {
        Ok(applied) => {
            tracing::info!(applied = applied.len(), "schema is current");
            Migrated::Settled
        }
        Err(migrations::MigrateError::Database(error)) => {
            tracing::warn!(error = %error, "migration interrupted; will retry");
            Migrated::RetryLater
        }
        Err(error) => {
            // An altered or failing migration needs an operator; health reports it.
            tracing::error!(error = %error, "migrations cannot be applied");
            Migrated::Settled
        }
    }
}

/// Retries the start-up migration every `interval` until it settles or the server stops, so
/// a server started while PostgreSQL was down becomes ready when PostgreSQL comes back.
async fn migrate_when_reachable(db: Database, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if migrate_once(&db).await == Migrated::Settled {
            return;
        }
    }
}
