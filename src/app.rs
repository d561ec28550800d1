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
use crate::db::{Database, DbError};
use crate::health::report::{DetailedReports, ReportDirs};
use crate::health::resources::{self, CpuGauge};
use crate::health::{HealthMonitor, Limits, Probes};
use crate::ingest::{Registrar, watcher};
use crate::integrations::qdrant::Qdrant;
use crate::integrations::tmdb::Tmdb;
use crate::pipeline::context::Tools;
use crate::pipeline::python::ScriptEnv;
use crate::pipeline::readiness::{CheckerPaths, PipelineChecker};
use crate::pipeline::worker::{self, WorkerConfig};
use crate::{server, startup};

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
        let qdrant = settings.qdrant_url.clone().map(|url| {
            Arc::new(Qdrant::new(
                url,
                settings.qdrant_api_key.clone(),
                settings.health_timeout,
            ))
        });
        let probes = Probes {
            db: db.clone(),
            redis: redis.clone(),
            qdrant: qdrant.clone(),
            limits,
        };
        let (stop_background, stop_rx) = watch::channel(false);
        // Storage first (migrations, vector collections), so a healthy start reports a
        // current schema; what cannot be reached yet is retried in the background.
        let mut background =
            startup::prepare_storage(&settings, &db, qdrant, &stop_background).await;
        let (health, monitor_task) =
            HealthMonitor::start(probes.clone(), settings.health_interval, stop_rx).await;
        background.push(monitor_task);
        let (cpu, cpu_task) = resources::spawn_cpu_sampler(stop_background.subscribe());
        background.push(cpu_task);
        // One pipeline checker for the report, the worker and auto-processing: one set of
        // cached script checks and model hashes.
        let checker = Arc::new(pipeline_checker(&settings));
        let reports = detailed_reports(&settings, probes, cpu, checker.clone());
        reports.warm_up();

        let mut registrar =
            Registrar::new(db.clone(), &settings.media_roots, settings.ffprobe.clone());
        if settings.auto_process {
            registrar = registrar.with_auto_process(checker.clone());
        }
        let registrar = Arc::new(registrar);
        if settings.watch_enabled {
            prepare_default_media_root(&settings);
            background.push(watcher::spawn(
                registrar.clone(),
                settings.watch_interval,
                settings.watch_settle,
                stop_background.subscribe(),
            ));
        }

        // One set of tools (vector store client, model cache, text encoder) for the worker,
        // the library and the search API.
        let shared_tools = tools(&settings, &db.pool);
        if settings.workers > 0 {
            background.push(worker::spawn(
                db.clone(),
                shared_tools.clone(),
                checker.clone(),
                worker_config(&settings),
                stop_background.subscribe(),
            ));
        }

        background.push(spawn_face_reindex(
            db.pool.clone(),
            shared_tools.vectors.clone(),
            stop_background.subscribe(),
        ));

        let jwt_secret = keys::load_or_create(&settings)?;
        password::warm_up();
        let auth = Auth::new(&settings, jwt_secret, redis.clone());
        let context = AppContext {
            auth,
            reports,
            sftpgo: api::stats::SftpgoReports::from_settings(&settings),
            counters: Arc::default(),
            registrar,
            library: Arc::new(crate::identities::library::Library::new(
                settings.identities_dir.clone(),
                shared_tools,
            )),
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

/// Brings the vector store up to date with the library's face vectors once, retrying while
/// PostgreSQL or the store is not there yet.
fn spawn_face_reindex(
    pool: sqlx::PgPool,
    store: Arc<crate::vectors::VectorStore>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match crate::identities::matching::reindex(&pool, &store).await {
                Ok(0) => return,
                Ok(written) => {
                    tracing::info!(written, backend = store.backend(), "face vectors indexed");
                    return;
                }
                Err(error) => tracing::warn!(%error, "face vectors not indexed yet; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

pub fn pipeline_checker(settings: &Settings) -> PipelineChecker {
    PipelineChecker::new(CheckerPaths {
        scripts_dir: settings.scripts_dir.clone(),
        models_dir: settings.models_dir.clone(),
        python_env: settings.python_env.clone(),
        node_env: settings.node_env.clone(),
        ffmpeg: settings.ffmpeg.clone(),
        ffprobe: settings.ffprobe.clone(),
        tesseract: settings.tesseract.clone(),
    })
}

/// What processors and the identity library use; `pool` backs the pgvector store.
pub fn tools(settings: &Settings, pool: &sqlx::PgPool) -> Tools {
    Tools {
        ffmpeg: settings.ffmpeg.clone(),
        ffprobe: settings.ffprobe.clone(),
        tesseract: settings.tesseract.clone(),
        // Absolute: processors hand paths to programs and make links (a relative link target
        // would be read from the link's own folder).
        data_dir: std::path::absolute(&settings.data_dir)
            .unwrap_or_else(|_| settings.data_dir.clone()),
        timeout: settings.process_timeout,
        scripts: ScriptEnv::new(
            &settings.python_env,
            &settings.scripts_dir,
            &settings.models_dir,
        )
        .with_node(&settings.node_env),
        hashes: Arc::default(),
        vectors: crate::vectors::from_settings(settings, pool.clone()),
        encoders: Arc::default(),
        yolo_fps: settings.yolo_fps,
        pose_fps: settings.pose_fps,
    }
}

pub fn worker_config(settings: &Settings) -> WorkerConfig {
    WorkerConfig {
        concurrency: settings.workers.max(1) as usize,
        poll: settings.worker_poll,
        stale_after: settings.worker_stale,
    }
}

/// The detailed report's builder; `pipeline` is shared with the worker, so both see one set
/// of cached checks.
pub fn detailed_reports(
    settings: &Settings,
    probes: Probes,
    cpu: CpuGauge,
    pipeline: Arc<PipelineChecker>,
) -> DetailedReports {
    let dirs = ReportDirs {
        data: settings.data_dir.clone(),
        identities: settings.identities_dir.clone(),
    };
    let tmdb = Tmdb::new(
        settings.tmdb_base_url.clone(),
        settings.tmdb_api_key.clone(),
        settings.tmdb_enabled,
    );
    DetailedReports::new(probes, pipeline, cpu, dirs, tmdb)
}

/// Creates `$REELBASE_DATA_DIR/media` when the media roots are left at that default: it is
/// reelbase's own folder. Roots an operator named are never created (a typo must show).
fn prepare_default_media_root(settings: &Settings) {
    if settings.source_of("media_roots").is_some() {
        return;
    }
    for root in &settings.media_roots {
        if let Err(error) = std::fs::create_dir_all(root) {
            tracing::warn!(root = %root.display(), error = %error, "cannot create the media folder");
        }
    }
}
