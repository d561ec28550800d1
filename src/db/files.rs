//! Queries on `files`, `file_tombstones` and `ingest_seen`.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use time::OffsetDateTime;

/// The statuses a file can be in. Registration sets `registered`; the pipeline moves it on.
/// `missing`: the path now holds other content (the file was replaced or overwritten).
pub const STATUSES: &[&str] = &[
    "registered",
    "queued",
    "processing",
    "completed",
    "failed",
    "missing",
];

/// How a registration arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Cli,
    Watcher,
    Sftpgo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Cli => "cli",
            Source::Watcher => "watcher",
            Source::Sftpgo => "sftpgo",
        }
    }
}

/// Where a file is on disk and the stat facts that tell an unchanged file from a changed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub path: String,
    pub device: i64,
    pub inode: i64,
    pub size: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// One registered file, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileRecord {
    pub file_uuid: String,
    pub file_name: String,
    pub file_path: String,
    pub file_type: String,
    pub container: String,
    pub size_bytes: i64,
    pub content_hash: String,
    pub duration: Option<f64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub fps: Option<f64>,
    pub total_frames: Option<i64>,
    pub audio_streams: i32,
    pub status: String,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}

const COLUMNS: &str = "file_uuid, file_name, file_path, file_type, container, size_bytes, \
     content_hash, duration, width, height, fps, total_frames, audio_streams, status, source, \
     registered_at";

impl FromRow<'_, PgRow> for FileRecord {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            file_uuid: row.try_get("file_uuid")?,
            file_name: row.try_get("file_name")?,
            file_path: row.try_get("file_path")?,
            file_type: row.try_get("file_type")?,
            container: row.try_get("container")?,
            size_bytes: row.try_get("size_bytes")?,
            content_hash: row.try_get("content_hash")?,
            duration: row.try_get("duration")?,
            width: row.try_get("width")?,
            height: row.try_get("height")?,
            fps: row.try_get("fps")?,
            total_frames: row.try_get("total_frames")?,
            audio_streams: row.try_get("audio_streams")?,
            status: row.try_get("status")?,
            source: row.try_get("source")?,
            registered_at: row.try_get("registered_at")?,
        })
    }
}

/// What a new row holds besides its stat facts.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub file_uuid: &'a str,
    pub content_hash: &'a str,
    pub file_name: &'a str,
    pub file_type: &'a str,
    pub container: &'a str,
    pub duration: Option<f64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub fps: Option<f64>,
    pub total_frames: Option<i64>,
    pub audio_streams: i32,
    pub source: Source,
}

/// Inserts a file unless its content is already registered. Returns the stored record and
/// whether this call created it; two concurrent registrations of one content make one row.
/// A registration of known content under a path that no longer holds it (the file was moved)
/// updates the path; `old_path_gone` says whether that is so.
pub async fn insert_or_existing(
    pool: &PgPool,
    new: &NewFile<'_>,
    stat: &Stat,
) -> Result<(FileRecord, bool), sqlx::Error> {
    let inserted: Option<FileRecord> = sqlx::query_as(&format!(
        "INSERT INTO files (file_uuid, content_hash, file_path, file_name, file_type, container, \
         size_bytes, duration, width, height, fps, total_frames, audio_streams, source, device, \
         inode, mtime_ns, ctime_ns) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (content_hash) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(new.file_uuid)
    .bind(new.content_hash)
    .bind(&stat.path)
    .bind(new.file_name)
    .bind(new.file_type)
    .bind(new.container)
    .bind(stat.size)
    .bind(new.duration)
    .bind(new.width)
    .bind(new.height)
    .bind(new.fps)
    .bind(new.total_frames)
    .bind(new.audio_streams)
    .bind(new.source.as_str())
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.mtime_ns)
    .bind(stat.ctime_ns)
    .fetch_optional(pool)
    .await?;
    if let Some(record) = inserted {
        return Ok((record, true));
    }
    let existing: FileRecord = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE content_hash = $1"
    ))
    .bind(new.content_hash)
    .fetch_one(pool)
    .await?;
    Ok((existing, false))
}

/// Points a record at a new place (the same content, moved), with that place's stat facts.
pub async fn relocate(
    pool: &PgPool,
    file_uuid: &str,
    file_name: &str,
    stat: &Stat,
) -> Result<Option<FileRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE files SET file_path = $2, file_name = $3, device = $4, inode = $5, \
         size_bytes = $6, mtime_ns = $7, ctime_ns = $8, updated_at = now() \
         WHERE file_uuid = $1 RETURNING {COLUMNS}"
    ))
    .bind(file_uuid)
    .bind(&stat.path)
    .bind(file_name)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .bind(stat.ctime_ns)
    .fetch_optional(pool)
    .await
}

/// The record registered from exactly this file (same path and stat facts), if any: such a
/// file need not be read again to know its content.
pub async fn find_unchanged(pool: &PgPool, stat: &Stat) -> Result<Option<FileRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE file_path = $1 AND device = $2 AND inode = $3 \
         AND size_bytes = $4 AND mtime_ns = $5 AND ctime_ns = $6 LIMIT 1"
    ))
    .bind(&stat.path)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .bind(stat.ctime_ns)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, file_uuid: &str) -> Result<Option<FileRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM files WHERE file_uuid = $1"))
        .bind(file_uuid)
        .fetch_optional(pool)
        .await
}

pub async fn by_name(pool: &PgPool, file_name: &str) -> Result<Vec<FileRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE file_name = $1 ORDER BY registered_at DESC, file_uuid"
    ))
    .bind(file_name)
    .fetch_all(pool)
    .await
}

/// One page of files, newest first, and the total matching the filter.
pub async fn page(
    pool: &PgPool,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<FileRecord>, i64), sqlx::Error> {
    let files = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE ($1::text IS NULL OR status = $1) \
         ORDER BY registered_at DESC, file_uuid LIMIT $2 OFFSET $3"
    ))
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total =
        sqlx::query_scalar("SELECT count(*) FROM files WHERE ($1::text IS NULL OR status = $1)")
            .bind(status)
            .fetch_one(pool)
            .await?;
    Ok((files, total))
}

/// Deletes a record and leaves a tombstone for its content, so the watcher does not register
/// it again. Returns the deleted record.
pub async fn delete(pool: &PgPool, file_uuid: &str) -> Result<Option<FileRecord>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let record: Option<FileRecord> = sqlx::query_as(&format!(
        "DELETE FROM files WHERE file_uuid = $1 RETURNING {COLUMNS}"
    ))
    .bind(file_uuid)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO file_tombstones (content_hash, file_path) VALUES ($1, $2) \
         ON CONFLICT (content_hash) DO UPDATE SET file_path = $2, deleted_at = now()",
    )
    .bind(&record.content_hash)
    .bind(&record.file_path)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(record))
}

/// An explicit registration brings deleted content back.
pub async fn clear_tombstone(pool: &PgPool, content_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM file_tombstones WHERE content_hash = $1")
        .bind(content_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether an operator deleted the record of this content.
pub async fn is_tombstoned(pool: &PgPool, content_hash: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM file_tombstones WHERE content_hash = $1)")
        .bind(content_hash)
        .fetch_one(pool)
        .await
}

/// Marks the other records that still point at `path` with other content: the path holds
/// something else now. One that was a shorter, earlier state of this very file (same inode)
/// was a partial upload, and is deleted instead. Returns (deleted, marked missing).
pub async fn supersede(
    pool: &PgPool,
    keep_uuid: &str,
    stat: &Stat,
) -> Result<(u64, u64), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let partial = sqlx::query(
        "DELETE FROM files WHERE file_path = $1 AND file_uuid <> $2 AND device = $3 \
         AND inode = $4 AND size_bytes < $5",
    )
    .bind(&stat.path)
    .bind(keep_uuid)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .execute(&mut *tx)
    .await?;
    let replaced = sqlx::query(
        "UPDATE files SET status = 'missing', updated_at = now() \
         WHERE file_path = $1 AND file_uuid <> $2 AND status <> 'missing'",
    )
    .bind(&stat.path)
    .bind(keep_uuid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((partial.rows_affected(), replaced.rows_affected()))
}

/// Brings a record's stat facts up to date when its file is unchanged in content (a hard link
/// or a change of mode moves the ctime), so the next registration need not read it again.
pub async fn refresh_stat(pool: &PgPool, file_uuid: &str, stat: &Stat) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE files SET device = $2, inode = $3, size_bytes = $4, mtime_ns = $5, ctime_ns = $6, \
         status = CASE WHEN status = 'missing' THEN 'registered' ELSE status END, \
         updated_at = now() WHERE file_uuid = $1 AND file_path = $7",
    )
    .bind(file_uuid)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .bind(stat.ctime_ns)
    .bind(&stat.path)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the watcher judged before: `ingest_seen`, plus registered files (which the API or
/// the CLI may have registered). Rows are (stat, outcome).
pub async fn seen(pool: &PgPool) -> Result<Vec<(Stat, String)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT file_path, device, inode, size_bytes, mtime_ns, ctime_ns, outcome FROM ingest_seen \
         UNION ALL SELECT file_path, device, inode, size_bytes, mtime_ns, ctime_ns, 'registered' \
         FROM files WHERE file_path NOT IN (SELECT file_path FROM ingest_seen)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(path, device, inode, size, mtime_ns, ctime_ns, outcome)| {
            (
                Stat {
                    path,
                    device,
                    inode,
                    size,
                    mtime_ns,
                    ctime_ns,
                },
                outcome,
            )
        })
        .collect())
}

pub async fn record_seen(
    pool: &PgPool,
    stat: &Stat,
    outcome: &str,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ingest_seen (file_path, device, inode, size_bytes, mtime_ns, ctime_ns, \
         outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (file_path) DO \
         UPDATE SET device = $2, inode = $3, size_bytes = $4, mtime_ns = $5, ctime_ns = $6, \
         outcome = $7, reason = $8, seen_at = now()",
    )
    .bind(&stat.path)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .bind(stat.ctime_ns)
    .bind(outcome)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets paths that are gone.
pub async fn forget_seen(pool: &PgPool, paths: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ingest_seen WHERE file_path = ANY($1)")
        .bind(paths)
        .execute(pool)
        .await?;
    Ok(())
}

/// Files registered from uploads (the watcher or the SFTPGo hook) in the last 24 hours.
pub async fn uploads_last_24h(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM files WHERE source IN ('watcher', 'sftpgo') \
         AND registered_at > now() - interval '24 hours'",
    )
    .fetch_one(pool)
    .await
}
