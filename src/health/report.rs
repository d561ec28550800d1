//! The detailed health report. Every part is measured when the report is built: services
//! checked concurrently, each under its own timeout, alongside the schema and the pipeline
//! folders, so the whole report is bounded by the timeout plus a small margin even when a
//! host swallows packets.
//!
//! Reports are shared for about a second, and only one is built at a time (single-flight):
//! a burst of callers waits for the report being built instead of each starting its own
//! round of checks against PostgreSQL, Redis and the rest.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::monitor::{Probes, check_services};
use super::resources::{self, CpuGauge};
use super::snapshot::Status;
use crate::build_info;
use crate::db::migrations;
use crate::identities;
use crate::integrations::tmdb::Tmdb;
use crate::pipeline::readiness::{PipelineChecker, PipelineReport};

/// Longest a request waits to learn which processors can run here.
const READY_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The folders the report looks at.
pub struct ReportDirs {
    pub data: PathBuf,
    pub identities: PathBuf,
}

/// How long a built report is served to later callers.
pub const SHARE_FOR: Duration = Duration::from_secs(1);

pub struct DetailedReports {
    probes: Probes,
    pipeline: Arc<PipelineChecker>,
    cpu: CpuGauge,
    data_dir: PathBuf,
    identities_dir: PathBuf,
    tmdb: Tmdb,
    pipeline_running: Arc<AtomicBool>,
    last_pipeline: Arc<Mutex<Option<PipelineReport>>>,
    latest: Mutex<Option<(Instant, Arc<Value>)>>,
    building: tokio::sync::Mutex<()>,
}

impl DetailedReports {
    pub fn new(
        probes: Probes,
        pipeline: Arc<PipelineChecker>,
        cpu: CpuGauge,
        dirs: ReportDirs,
        tmdb: Tmdb,
    ) -> Self {
        Self {
            tmdb,
            pipeline_running: Arc::default(),
            last_pipeline: Arc::default(),
            probes,
            pipeline,
            cpu,
            data_dir: dirs.data,
            identities_dir: dirs.identities,
            latest: Mutex::new(None),
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// A report at most `SHARE_FOR` old.
    pub async fn get(&self) -> Arc<Value> {
        if let Some(report) = self.fresh() {
            return report;
        }
        let _building = self.building.lock().await;
        // Whoever held the lock before us may have just built one.
        if let Some(report) = self.fresh() {
            return report;
        }
        let report = Arc::new(self.build().await);
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), report.clone()));
        report
    }

    /// The pipeline check touches the file system, which can hang (a FIFO, a stalled network
    /// mount) where no timeout can cancel it. At most one check runs at a time: while one is
    /// still running, later reports get the last finished result, so stuck threads never pile up.
    async fn pipeline_report(&self, timeout: std::time::Duration) -> Option<PipelineReport> {
        let last = || {
            self.last_pipeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        if self.pipeline_running.swap(true, Ordering::AcqRel) {
            return last();
        }
        let (checker, running) = (self.pipeline.clone(), self.pipeline_running.clone());
        let store = self.last_pipeline.clone();
        let work = tokio::task::spawn_blocking(move || {
            let report = checker.check();
            *store.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
            running.store(false, Ordering::Release);
            report
        });
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(report)) => Some(report),
            _ => last(),
        }
    }

    /// Runs one pipeline check in the background so that its caches (tool answers, file
    /// hashes) are warm before the first report, which then answers within its timeout.
    pub fn warm_up(&self) {
        let checker = self.pipeline.clone();
        tokio::task::spawn_blocking(move || {
            checker.check();
        });
    }

    /// The built processors that can run here now, by the same check as the report. It waits
    /// for a check of its own (cheap once the hashes and tool answers are cached), up to a
    /// bound, rather than take the report's "not measured in time".
    pub async fn ready_processors(&self) -> Vec<&'static str> {
        let checker = self.pipeline.clone();
        let work = tokio::task::spawn_blocking(move || checker.check());
        let report = match tokio::time::timeout(READY_CHECK_LIMIT, work).await {
            Ok(Ok(report)) => Some(report),
            _ => None,
        };
        crate::pipeline::registry::BUILT
            .iter()
            .copied()
            .filter(|name| {
                report
                    .as_ref()
                    .is_some_and(|r| r.processors.get(name) == Some(&true))
            })
            .collect()
    }

    fn fresh(&self) -> Option<Arc<Value>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SHARE_FOR)
            .map(|(_, r)| r.clone())
    }

    async fn build(&self) -> Value {
        let timeout = self.probes.limits.timeout;
        let schema = async {
            let status = migrations::status(&self.probes.db.pool);
            tokio::time::timeout(timeout, status)
                .await
                .ok()
                .and_then(Result::ok)
        };
        let pipeline = self.pipeline_report(timeout);
        let identities = async {
            let report = identities::report(self.identities_dir.clone(), &self.probes.db.pool);
            tokio::time::timeout(timeout, report)
                .await
                .ok()
                .and_then(Result::ok)
        };
        let tmdb = async {
            let report = self.tmdb.report();
            tokio::time::timeout(timeout, report).await.ok()
        };
        let (services, schema, pipeline, identities, tmdb) = tokio::join!(
            check_services(&self.probes),
            schema,
            pipeline,
            identities,
            tmdb
        );

        let status = if services.iter().all(|(_, h)| h.status == Status::Ok) {
            Status::Ok
        } else {
            Status::Degraded
        };
        let services: serde_json::Map<String, Value> = services
            .iter()
            .map(|(name, health)| ((*name).to_owned(), json!(health)))
            .collect();
        json!({
            "status": status,
            "version": build_info::VERSION,
            "services": services,
            "resources": resources::measure(&self.cpu, &self.data_dir),
            "pipeline": pipeline,
            "schema": schema,
            "identities": identities,
            "integrations": { "tmdb": tmdb },
        })
    }
}
