//! Queries on `jobs` and `job_steps`: the pipeline's queue.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use time::OffsetDateTime;

pub const JOB_STATUSES: &[&str] = &["pending", "running", "completed", "failed"];

/// The channel workers LISTEN on; a NOTIFY on it says a step may have become claimable.
pub const WAKE_CHANNEL: &str = "reelbase_jobs";

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub file_uuid: String,
    pub status: String,
    pub processors: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl FromRow<'_, PgRow> for Job {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            file_uuid: row.try_get("file_uuid")?,
            status: row.try_get("status")?,
            processors: row.try_get("processors")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub processor: String,
    pub status: String,
    pub depends_on: Vec<String>,
    pub attempts: i32,
    pub worker: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    pub reason: Option<String>,
}

impl FromRow<'_, PgRow> for Step {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            processor: row.try_get("processor")?,
            status: row.try_get("status")?,
            depends_on: row.try_get("depends_on")?,
            attempts: row.try_get("attempts")?,
            worker: row.try_get("worker")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            duration_ms: row.try_get("duration_ms")?,
            reason: row.try_get("reason")?,
        })
    }
}

const JOB_COLUMNS: &str = "id, file_uuid, status, processors, created_at, started_at, finished_at";
const STEP_COLUMNS: &str = "processor, status, depends_on, attempts, worker, started_at, \
     finished_at, duration_ms, reason";

/// Creates a job with one step per processor; `steps` pairs each processor with the
/// processors of this job it waits for.
pub async fn create(
    pool: &PgPool,
    file_uuid: &str,
    steps: &[(&str, Vec<&str>)],
) -> Result<Job, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let processors: Vec<&str> = steps.iter().map(|(name, _)| *name).collect();
    let job: Job = sqlx::query_as(&format!(
        "INSERT INTO jobs (file_uuid, processors) VALUES ($1, $2) RETURNING {JOB_COLUMNS}"
    ))
    .bind(file_uuid)
    .bind(&processors)
    .fetch_one(&mut *tx)
    .await?;
    for (processor, depends_on) in steps {
        sqlx::query("INSERT INTO job_steps (job_id, processor, depends_on) VALUES ($1, $2, $3)")
            .bind(job.id)
            .bind(processor)
            .bind(depends_on)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE files SET status = 'queued', updated_at = now() WHERE file_uuid = $1")
        .bind(file_uuid)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("NOTIFY {WAKE_CHANNEL}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(job)
}

/// A step a worker has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job_id: i64,
    pub processor: String,
    pub file_uuid: String,
    pub attempts: i32,
}

/// Claims the oldest pending step whose dependencies have completed, among `processors` (the
/// ones this worker can run). `None` when there is nothing to do.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    processors: &[&str],
) -> Result<Option<Claimed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT s.job_id, s.processor, j.file_uuid FROM job_steps s JOIN jobs j ON j.id = s.job_id \
         WHERE s.status = 'pending' AND s.processor = ANY($1) \
           AND NOT EXISTS (SELECT 1 FROM job_steps d WHERE d.job_id = s.job_id \
                           AND d.processor = ANY(s.depends_on) AND d.status <> 'completed') \
         ORDER BY j.created_at, s.job_id, s.processor \
         LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(processors)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let job_id: i64 = row.try_get("job_id")?;
    let processor: String = row.try_get("processor")?;
    let file_uuid: String = row.try_get("file_uuid")?;
    let attempts: i32 = sqlx::query_scalar(
        "UPDATE job_steps SET status = 'running', worker = $3, heartbeat_at = now(), \
         started_at = now(), finished_at = NULL, duration_ms = NULL, reason = NULL, \
         attempts = attempts + 1 WHERE job_id = $1 AND processor = $2 RETURNING attempts",
    )
    .bind(job_id)
    .bind(&processor)
    .bind(worker)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'running', started_at = coalesce(started_at, now()) \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE files SET status = 'processing', updated_at = now() \
         WHERE file_uuid = $1 AND status <> 'processing'",
    )
    .bind(&file_uuid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Claimed {
        job_id,
        processor,
        file_uuid,
        attempts,
    }))
}

/// Refreshes the heartbeat of a step this worker runs. False when the step is no longer this
/// worker's (it was reclaimed after a stall, or its file was deleted): stop working on it.
pub async fn heartbeat(
    pool: &PgPool,
    claimed: &Claimed,
    worker: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE job_steps SET heartbeat_at = now() WHERE job_id = $1 AND processor = $2 \
         AND status = 'running' AND worker = $3",
    )
    .bind(claimed.job_id)
    .bind(&claimed.processor)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// How a step ended.
pub enum Outcome<'a> {
    Completed,
    Failed(&'a str),
    /// Given back unfinished (the worker is stopping): another worker takes it.
    Released,
}

/// Records how a step ended, skips the steps that can no longer run, settles the job when
/// nothing is left to do, and wakes the workers. Only the worker that holds the step can.
pub async fn finish(
    pool: &PgPool,
    claimed: &Claimed,
    worker: &str,
    outcome: Outcome<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (status, reason) = match outcome {
        Outcome::Completed => ("completed", None),
        Outcome::Failed(reason) => ("failed", Some(reason)),
        Outcome::Released => ("pending", None),
    };
    let updated = sqlx::query(
        "UPDATE job_steps SET status = $4, reason = $5, finished_at = CASE WHEN $4 = 'pending' \
         THEN NULL ELSE now() END, duration_ms = CASE WHEN $4 = 'pending' THEN NULL ELSE \
         (extract(epoch FROM now() - started_at) * 1000)::bigint END, \
         worker = CASE WHEN $4 = 'pending' THEN NULL ELSE worker END, heartbeat_at = NULL, \
         attempts = CASE WHEN $4 = 'pending' THEN greatest(attempts - 1, 0) ELSE attempts END \
         WHERE job_id = $1 AND processor = $2 AND status = 'running' AND worker = $3",
    )
    .bind(claimed.job_id)
    .bind(&claimed.processor)
    .bind(worker)
    .bind(status)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 1 {
        settle(&mut tx, claimed.job_id).await?;
    }
    sqlx::query(&format!("NOTIFY {WAKE_CHANNEL}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Skips every pending step that waits (directly or not) on a failed or skipped one, then
/// completes or fails the job once no step is pending or running, and the file with it.
async fn settle(tx: &mut sqlx::PgConnection, job_id: i64) -> Result<(), sqlx::Error> {
    loop {
        let skipped = sqlx::query(
            "UPDATE job_steps s SET status = 'skipped', finished_at = now(), \
             reason = 'a step it depends on did not complete' \
             WHERE s.job_id = $1 AND s.status = 'pending' AND EXISTS (SELECT 1 FROM job_steps d \
             WHERE d.job_id = s.job_id AND d.processor = ANY(s.depends_on) \
             AND d.status IN ('failed', 'skipped'))",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if skipped.rows_affected() == 0 {
            break;
        }
    }
    let job_status: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET status = CASE WHEN bool_and_done.all_completed THEN 'completed' \
         ELSE 'failed' END, finished_at = now() \
         FROM (SELECT bool_and(status = 'completed') AS all_completed, \
               bool_or(status IN ('pending', 'running')) AS open FROM job_steps \
               WHERE job_id = $1) AS bool_and_done \
         WHERE jobs.id = $1 AND NOT bool_and_done.open RETURNING jobs.status",
    )
    .bind(job_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(status) = job_status {
        sqlx::query(
            "UPDATE files SET status = $2, updated_at = now() \
             WHERE file_uuid = (SELECT file_uuid FROM jobs WHERE id = $1)",
        )
        .bind(job_id)
        .bind(status)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Puts back steps whose worker has not beaten for `stale_after`, so another worker takes
/// them; a step that has stalled `max_attempts` times fails instead. Returns how many.
pub async fn reclaim_stale(
    pool: &PgPool,
    stale_after: std::time::Duration,
    max_attempts: i32,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "UPDATE job_steps SET status = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'pending' END, \
         reason = CASE WHEN attempts >= $2 THEN 'its worker stopped answering ' || attempts || \
         ' times' ELSE 'its worker stopped answering; retried' END, \
         finished_at = CASE WHEN attempts >= $2 THEN now() END, worker = NULL, heartbeat_at = NULL \
         WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1) \
         RETURNING job_id",
    )
    .bind(stale_after.as_secs_f64())
    .bind(max_attempts)
    .fetch_all(&mut *tx)
    .await?;
    let mut jobs: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.try_get("job_id").ok())
        .collect();
    jobs.dedup();
    for job in &jobs {
        settle(&mut tx, *job).await?;
    }
    if !rows.is_empty() {
        sqlx::query(&format!("NOTIFY {WAKE_CHANNEL}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// What a retry found.
pub enum Retry {
    Done,
    NoSuchJob,
    /// The job has no failed step by that name.
    NotFailed,
}

/// Puts a failed step, and the steps skipped because of it (directly or not), back in the
/// queue, and reopens its job.
pub async fn retry(pool: &PgPool, job_id: i64, processor: &str) -> Result<Retry, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let steps: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT processor, status, depends_on FROM job_steps WHERE job_id = $1 FOR UPDATE",
    )
    .bind(job_id)
    .fetch_all(&mut *tx)
    .await?;
    if steps.is_empty() {
        return Ok(Retry::NoSuchJob);
    }
    if !steps
        .iter()
        .any(|(name, status, _)| name == processor && status == "failed")
    {
        return Ok(Retry::NotFailed);
    }
    let mut again = vec![processor.to_owned()];
    loop {
        let more: Vec<String> = steps
            .iter()
            .filter(|(name, status, deps)| {
                status == "skipped"
                    && !again.contains(name)
                    && deps.iter().any(|d| again.contains(d))
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        again.extend(more);
    }
    sqlx::query(
        "UPDATE job_steps SET status = 'pending', reason = NULL, finished_at = NULL, \
         duration_ms = NULL, attempts = 0 WHERE job_id = $1 AND processor = ANY($2)",
    )
    .bind(job_id)
    .bind(&again)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = $1")
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE files SET status = 'queued', updated_at = now() \
         WHERE file_uuid = (SELECT file_uuid FROM jobs WHERE id = $1)",
    )
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("NOTIFY {WAKE_CHANNEL}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Retry::Done)
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn steps(pool: &PgPool, job_id: i64) -> Result<Vec<Step>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = $1 ORDER BY started_at NULLS LAST, processor"
    ))
    .bind(job_id)
    .fetch_all(pool)
    .await
}

/// The newest job of a file.
pub async fn latest_for_file(pool: &PgPool, file_uuid: &str) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE file_uuid = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(file_uuid)
    .fetch_optional(pool)
    .await
}

pub async fn page(
    pool: &PgPool,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Job>, i64), sqlx::Error> {
    let jobs = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR status = $1) \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE ($1::text IS NULL OR status = $1)")
            .bind(status)
            .fetch_one(pool)
            .await?;
    Ok((jobs, total))
}
