//! The background health monitor. Every interval it checks each service concurrently, each
//! under its own timeout, and publishes an immutable snapshot through a `watch` channel.
//!
//! Request handlers only read the latest snapshot: `/health` never waits on PostgreSQL or
//! Redis, so it stays fast while a dependency hangs. The first round runs before `start`
//! returns, so the server never answers with a status nobody measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::checks::{self, Limits};
use super::snapshot::{ServiceHealth, Snapshot, Status};
use crate::cache::Redis;
use crate::db::{Database, migrations};
use crate::integrations::qdrant::Qdrant;

/// What the monitor checks, and how.
#[derive(Clone)]
pub struct Probes {
    pub db: Database,
    pub redis: Arc<Redis>,
    /// Only when `REELBASE_QDRANT_URL` is set: reelbase never reports a service it does not use.
    pub qdrant: Option<Arc<Qdrant>>,
    pub limits: Limits,
}

/// A cheap handle to the latest snapshot.
#[derive(Clone)]
pub struct HealthMonitor {
    latest: watch::Receiver<Arc<Snapshot>>,
    /// The latest snapshot's overall status, readable without a lock: `/health` needs only
    /// this, on every request.
    overall: Arc<AtomicU8>,
}

impl HealthMonitor {
    /// Runs the first round, then keeps checking every `interval` until `shutdown` flips
    /// to true. Returns the handle and the task, which the caller awaits on shutdown.
    pub async fn start(
        probes: Probes,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let first = run_round(&probes, 1).await;
        log_changes(None, &first);
        let overall = Arc::new(AtomicU8::new(first.overall() as u8));
        let (publish, latest) = watch::channel(Arc::new(first));
        let published_overall = overall.clone();

        let task = tokio::spawn(async move {
            let mut round = 1;
            loop {
                // Sleep after each round rather than tick on a fixed grid: a round slowed by
                // a timeout is followed by a full interval, never by an immediate re-check.
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                round += 1;
                // Shutdown does not wait for a round stuck on a silent dependency.
                let next = tokio::select! {
                    next = run_round(&probes, round) => next,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                };
                log_changes(Some(&publish.borrow()), &next);
                published_overall.store(next.overall() as u8, Ordering::Release);
                publish.send_replace(Arc::new(next));
            }
            tracing::debug!("health monitor stopped");
        });
        (Self { latest, overall }, task)
    }

    /// `ok` or `degraded`, from the latest snapshot.
    pub fn overall(&self) -> Status {
        if self.overall.load(Ordering::Acquire) == Status::Ok as u8 {
            Status::Ok
        } else {
            Status::Degraded
        }
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.latest.borrow().clone()
    }

    /// Waits until a snapshot newer than `round` is published (tests and tools use this to
    /// observe the next round instead of sleeping).
    pub async fn changed_after(&mut self, round: u64) -> Arc<Snapshot> {
        if let Ok(snapshot) = self
            .latest
            .wait_for(|snapshot| snapshot.round > round)
            .await
        {
            return snapshot.clone();
        }
        // The monitor stopped; the last snapshot is all there is.
        self.latest()
    }
}

async fn run_round(probes: &Probes, round: u64) -> Snapshot {
    let schema = async {
        let status = migrations::status(&probes.db.pool);
        tokio::time::timeout(probes.limits.timeout, status)
            .await
            .ok()
            .and_then(Result::ok)
    };
    let (services, schema) = tokio::join!(check_services(probes), schema);
    Snapshot {
        services,
        schema,
        taken_instant: Instant::now(),
        round,
    }
}

/// Checks every service reelbase uses, concurrently, each under its own timeout.
pub async fn check_services(probes: &Probes) -> Vec<(&'static str, ServiceHealth)> {
    let qdrant = async {
        match &probes.qdrant {
            Some(qdrant) => Some(checks::qdrant(qdrant, probes.limits).await),
            None => None,
        }
    };
    let (postgres, redis, qdrant) = tokio::join!(
        checks::postgres(&probes.db, probes.limits),
        checks::redis(&probes.redis, probes.limits),
        qdrant,
    );
    let mut services = vec![("postgres", postgres), ("redis", redis)];
    services.extend(qdrant.map(|health| ("qdrant", health)));
    services
}

/// Logs a line when a service changes state; steady state is debug detail.
fn log_changes(previous: Option<&Snapshot>, next: &Snapshot) {
    for (name, health) in &next.services {
        let before = previous.and_then(|p| p.service(name)).map(|h| h.status);
        let latency_ms = health.latency_ms;
        let fault = health.error.map(|f| f.as_str());
        if before == Some(health.status) {
            tracing::debug!(
                service = name,
                status = health.status.as_str(),
                latency_ms,
                "checked"
            );
            continue;
        }
        match health.status {
            Status::Ok => tracing::info!(service = name, latency_ms, "service is healthy"),
            Status::Degraded => {
                tracing::warn!(
                    service = name,
                    latency_ms,
                    error = fault,
                    "service is degraded"
                )
            }
            Status::Error => {
                tracing::error!(
                    service = name,
                    latency_ms,
                    error = fault,
                    "service is unavailable"
                )
            }
        }
    }
}
