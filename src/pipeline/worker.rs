//! A worker: claims steps from the queue in PostgreSQL, runs them (up to its concurrency at
//! once), keeps their heartbeats, and records how they ended. Any number of workers, in any
//! number of processes on any number of machines, share one queue.
//!
//! Workers wake on `NOTIFY reelbase_jobs` (sent when a job is created or a step ends) and poll
//! as well, so a lost notification or a broken listener only delays work by one poll. Every
//! poll also puts back the steps whose worker stopped beating (it died), for anyone to take.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::context::{StepContext, Tools, clear_stale_scratch, remove_outputs, write_result};
use super::readiness::PipelineChecker;
use super::registry;
use super::runner::Runner;
use crate::db::Database;
use crate::db::files;
use crate::db::jobs::{self, Claimed, Outcome, WAKE_CHANNEL};

/// A step given up by its worker this many times fails instead of being retried again.
const MAX_ATTEMPTS: i32 = 3;
/// How often a worker re-checks which processors can run here.
const READINESS_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Steps run at once by this worker.
    pub concurrency: usize,
    /// Poll period when no notification arrives.
    pub poll: Duration,
    /// A running step whose heartbeat is older than this is taken back.
    pub stale_after: Duration,
}

impl WorkerConfig {
    fn heartbeat(&self) -> Duration {
        (self.stale_after / 5).max(Duration::from_millis(100))
    }
}

struct Shared {
    db: Database,
    tools: Tools,
    runner: Runner,
    id: String,
    config: WorkerConfig,
}

/// Starts a worker on the runtime; it stops claiming when `stop` turns true, gives back the
/// steps it holds, and ends.
pub fn spawn(
    db: Database,
    tools: Tools,
    checker: Arc<PipelineChecker>,
    config: WorkerConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let shared = Arc::new(Shared {
        runner: Runner::new(config.concurrency.max(1) * 2),
        id: worker_id(),
        db,
        tools,
        config,
    });
    tokio::spawn(run(shared, checker, stop))
}

async fn run(shared: Arc<Shared>, checker: Arc<PipelineChecker>, mut stop: watch::Receiver<bool>) {
    tracing::info!(worker = %shared.id, concurrency = shared.config.concurrency, "pipeline worker started");
    let data_dir = shared.tools.data_dir.clone();
    let _ = tokio::task::spawn_blocking(move || clear_stale_scratch(&data_dir)).await;
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(shared.db.clone(), wake.clone(), stop.clone()));
    let mut running: JoinSet<()> = JoinSet::new();
    let mut ready: Vec<&'static str> = Vec::new();
    let mut ready_at: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if ready_at.is_none_or(|at| at.elapsed() >= READINESS_EVERY) {
            let checker = checker.clone();
            if let Ok(report) = tokio::task::spawn_blocking(move || checker.check()).await {
                ready = registry::BUILT
                    .iter()
                    .copied()
                    .filter(|name| report.processors.get(name) == Some(&true))
                    .collect();
            }
            ready_at = Some(Instant::now());
        }
        let pool = &shared.db.pool;
        match jobs::reclaim_stale(pool, shared.config.stale_after, MAX_ATTEMPTS).await {
            Ok(0) | Err(_) => {}
            Ok(n) => tracing::warn!(steps = n, "took back steps whose worker stopped answering"),
        }
        while running.len() < shared.config.concurrency && !ready.is_empty() {
            match jobs::claim(pool, &shared.id, &ready).await {
                Ok(Some(claimed)) => {
                    let shared = shared.clone();
                    let stop = stop.clone();
                    running.spawn(async move { run_step(shared, claimed, stop).await });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(error = %error, "worker cannot reach the queue");
                    break;
                }
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(shared.config.poll) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    // Steps in flight see the same signal and give their work back.
    while running.join_next().await.is_some() {}
    let _ = listener.await;
    tracing::info!(worker = %shared.id, "pipeline worker stopped");
}

/// Turns notifications on the wake channel into wake-ups; reconnects after failures.
async fn listen(db: Database, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    loop {
        let mut listener = match PgListener::connect_with(&db.pool).await {
            Ok(listener) => listener,
            Err(_) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.wait_for(|stop| *stop) => return,
                }
            }
        };
        if listener.listen(WAKE_CHANNEL).await.is_err() {
            continue;
        }
        loop {
            tokio::select! {
                notice = listener.recv() => match notice {
                    Ok(_) => wake.notify_one(),
                    Err(_) => break,
                },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

async fn run_step(shared: Arc<Shared>, claimed: Claimed, mut stop: watch::Receiver<bool>) {
    let pool = &shared.db.pool;
    let started = Instant::now();
    tracing::info!(job = claimed.job_id, processor = %claimed.processor, file_uuid = %claimed.file_uuid, "step started");
    let file = match files::get(pool, &claimed.file_uuid).await {
        Ok(Some(file)) => file,
        Ok(None) => return, // deleted: its steps went with it
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the file record; giving the step back");
            let _ = jobs::finish(pool, &claimed, &shared.id, Outcome::Released).await;
            return;
        }
    };
    let ctx = StepContext {
        pool,
        runner: &shared.runner,
        tools: &shared.tools,
        file: &file,
        job_id: claimed.job_id,
    };
    let heartbeat = shared.config.heartbeat();
    let beating = async {
        loop {
            tokio::time::sleep(heartbeat).await;
            if let Ok(false) = jobs::heartbeat(pool, &claimed, &shared.id).await {
                return;
            }
        }
    };
    let outcome = tokio::select! {
        result = registry::run(&claimed.processor, &ctx) => Some(result),
        () = beating => {
            tracing::warn!(job = claimed.job_id, processor = %claimed.processor, "step taken away from this worker; abandoned");
            return;
        }
        _ = stop.wait_for(|stop| *stop) => None,
    };
    let result = match outcome {
        None => {
            let _ = jobs::finish(pool, &claimed, &shared.id, Outcome::Released).await;
            tracing::info!(job = claimed.job_id, processor = %claimed.processor, "step given back at shutdown");
            return;
        }
        Some(result) => result,
    };
    let ended = match result {
        Ok(document) => match save(&shared, &claimed, document).await {
            Ok(()) => jobs::finish(pool, &claimed, &shared.id, Outcome::Completed).await,
            Err(reason) => jobs::finish(pool, &claimed, &shared.id, Outcome::Failed(&reason)).await,
        },
        Err(error) => {
            tracing::warn!(job = claimed.job_id, processor = %claimed.processor, reason = %error.0, "step failed");
            jobs::finish(pool, &claimed, &shared.id, Outcome::Failed(&error.0)).await
        }
    };
    if let Err(error) = ended {
        tracing::warn!(error = %error, "cannot record how a step ended; it will be taken back");
    }
    // The file's record was deleted while the step ran: what the step wrote goes too.
    if let Ok(None) = files::get(pool, &claimed.file_uuid).await {
        let (data_dir, uuid) = (shared.tools.data_dir.clone(), claimed.file_uuid.clone());
        let _ = tokio::task::spawn_blocking(move || remove_outputs(&data_dir, &uuid)).await;
    }
    tracing::info!(
        job = claimed.job_id,
        processor = %claimed.processor,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "step finished"
    );
}

/// Writes the result document (file, then row), wrapped with what it is about.
async fn save(
    shared: &Shared,
    claimed: &Claimed,
    document: serde_json::Value,
) -> Result<(), String> {
    let envelope = json!({
        "file_uuid": claimed.file_uuid,
        "processor": claimed.processor,
        "job_id": claimed.job_id,
        "reelbase_version": env!("CARGO_PKG_VERSION"),
        "result": document,
    });
    let data_dir = shared.tools.data_dir.clone();
    let (uuid, processor) = (claimed.file_uuid.clone(), claimed.processor.clone());
    let doc = envelope.clone();
    tokio::task::spawn_blocking(move || write_result(&data_dir, &uuid, &processor, &doc))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("writing the result file failed: {e}"))?;
    sqlx::query(
        "INSERT INTO results (file_uuid, processor, job_id, document) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (file_uuid, processor) DO UPDATE SET job_id = $3, document = $4, \
         created_at = now()",
    )
    .bind(&claimed.file_uuid)
    .bind(&claimed.processor)
    .bind(claimed.job_id)
    .bind(&envelope)
    .execute(&shared.db.pool)
    .await
    .map_err(|e| format!("storing the result failed: {e}"))?;
    Ok(())
}

/// `host:pid:random`, so operators can tell workers apart and two never share an id.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    format!(
        "{host}:{}:{}",
        std::process::id(),
        crate::digest::hex(&bytes)
    )
}
