//! Queries on `files` and `file_tombstones`.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use time::OffsetDateTime;

/// The statuses a file can be in. Registration sets `registered`; the pipeline moves it on.
pub const STATUSES: &[&str] = &["registered", "queued", "processing", "completed", "failed"];

/// Sources that count as uploads (a file that arrived rather than one an operator named).
pub const UPLOAD_SOURCES: &[&str] = &["watcher", "sftpgo"];

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
        clear_tombstones(pool, &stat.path).await?;
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

/// Deletes a record and leaves a tombstone for its file, so the watcher does not register the
/// unchanged file again. Returns the deleted record.
pub async fn delete(pool: &PgPool, file_uuid: &str) -> Result<Option<FileRecord>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(&format!(
        "DELETE FROM files WHERE file_uuid = $1 \
         RETURNING {COLUMNS}, device, inode, mtime_ns"
    ))
    .bind(file_uuid)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let record = FileRecord::from_row(&row)?;
    sqlx::query(
        "INSERT INTO file_tombstones (file_path, device, inode, size_bytes, mtime_ns) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&record.file_path)
    .bind(row.try_get::<i64, _>("device")?)
    .bind(row.try_get::<i64, _>("inode")?)
    .bind(record.size_bytes)
    .bind(row.try_get::<i64, _>("mtime_ns")?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(record))
}

async fn clear_tombstones(pool: &PgPool, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM file_tombstones WHERE file_path = $1")
        .bind(path)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether an operator deleted the record of exactly this file.
pub async fn is_tombstoned(pool: &PgPool, stat: &Stat) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM file_tombstones WHERE file_path = $1 AND device = $2 \
         AND inode = $3 AND size_bytes = $4 AND mtime_ns = $5)",
    )
    .bind(&stat.path)
    .bind(stat.device)
    .bind(stat.inode)
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .fetch_one(pool)
    .await
}

/// Every path the watcher need not look at again while its stat facts are unchanged:
/// registered files and tombstones. Rows are (path, device, inode, size, mtime_ns).
pub async fn known(pool: &PgPool) -> Result<Vec<(String, i64, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT file_path, device, inode, size_bytes, mtime_ns FROM files \
         UNION ALL SELECT file_path, device, inode, size_bytes, mtime_ns FROM file_tombstones",
    )
    .fetch_all(pool)
    .await
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
