//! `reelbase identities sync`: reconciles the identity folder and the database in the
//! direction the operator chooses, and says what it changed.
//!
//! From disk: rows are made or updated from each `identity.json`, rows without a folder are
//! deleted, and the index is rewritten. From the database: missing or outdated
//! `identity.json` files are written, folders without a row are moved aside into
//! `_orphaned/` (never deleted: they may hold the only copy of someone's photos), and the
//! index is rewritten.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::Serialize;
use sqlx::PgPool;

use super::{IDENTITY_FILE, INDEX_FILE, IdentityRecord, Index, IndexEntry, disk_ids, write_atomic};
use crate::db::identities as rows;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    FromDisk,
    FromDb,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SyncSummary {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Face vectors read back from `faces.json` for identities the database had none of.
    pub faces_restored: usize,
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("identity folder {}: {source}", dir.display())]
    Io {
        dir: std::path::PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn sync(
    dir: &Path,
    pool: &PgPool,
    direction: Direction,
) -> Result<SyncSummary, SyncError> {
    let io_error = |source| SyncError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let (disk, unreadable) = read_disk(dir).map_err(io_error)?;
    let db: BTreeMap<String, IdentityRecord> = rows::all(pool)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut summary = SyncSummary {
        unreadable,
        ..SyncSummary::default()
    };
    let kept = match direction {
        Direction::FromDisk => {
            for record in disk.values() {
                if db.get(&record.id) == Some(record) {
                    continue;
                }
                if rows::upsert(pool, record).await? {
                    summary.added += 1;
                } else {
                    summary.updated += 1;
                }
            }
            for record in disk.values() {
                summary.faces_restored += restore_faces(dir, pool, &record.id).await?;
            }
            // An unreadable identity.json still means the identity is on disk: its row stays.
            let unreadable = summary.unreadable.clone();
            for id in db
                .keys()
                .filter(|id| !disk.contains_key(*id) && !unreadable.contains(*id))
            {
                rows::delete(pool, id).await?;
                summary.removed += 1;
            }
            // Tracks of people removed here lose their binding and distance, as an API
            // delete does; the caller matches them again.
            sqlx::query(
                "UPDATE face_tracks SET bound = false, distance = NULL \
                 WHERE identity_id IS NULL AND (bound OR distance IS NOT NULL)",
            )
            .execute(pool)
            .await?;
            disk
        }
        Direction::FromDb => {
            for record in db.values() {
                if summary.unreadable.contains(&record.id) {
                    continue; // never overwrite a file we could not read: it is left for a person
                }
                match disk.get(&record.id) {
                    Some(on_disk) if on_disk == record => continue,
                    Some(_) => summary.updated += 1,
                    None => summary.added += 1,
                }
                write_identity(dir, record).map_err(io_error)?;
            }
            for id in disk.keys().filter(|id| !db.contains_key(*id)) {
                set_aside(dir, id).map_err(io_error)?;
                summary.removed += 1;
            }
            db
        }
    };
    write_index(dir, kept.values()).map_err(io_error)?;
    Ok(summary)
}

/// The face vectors of `faces.json` into the database, for an identity that has none there
/// (a database restored without them, or folders copied from another install).
async fn restore_faces(dir: &Path, pool: &PgPool, id: &str) -> Result<usize, sqlx::Error> {
    let present: i64 =
        sqlx::query_scalar("SELECT count(*) FROM identity_faces WHERE identity_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    if present > 0 {
        return Ok(0);
    }
    let listed = std::fs::read(dir.join(id).join(super::library::FACES_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|doc| doc["faces"].as_array().cloned())
        .unwrap_or_default();
    let mut restored = 0;
    for face in listed {
        let vector: Vec<f32> = face["vector"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(serde_json::Value::as_f64)
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default();
        if vector.len() != 128 {
            continue;
        }
        let photo = face["photo"].as_str().unwrap_or("unknown");
        sqlx::query("INSERT INTO identity_faces (identity_id, photo, vector) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(photo)
            .bind(&vector)
            .execute(pool)
            .await?;
        restored += 1;
    }
    Ok(restored)
}

/// Every readable `identity.json`, by id; the ids of unreadable ones are returned apart.
fn read_disk(dir: &Path) -> io::Result<(BTreeMap<String, IdentityRecord>, Vec<String>)> {
    let mut found = BTreeMap::new();
    let mut unreadable = Vec::new();
    for id in disk_ids(dir)? {
        let text = std::fs::read_to_string(dir.join(&id).join(IDENTITY_FILE))?;
        match serde_json::from_str::<IdentityRecord>(&text) {
            Ok(record) if record.id == id => {
                found.insert(id, record);
            }
            _ => unreadable.push(id),
        }
    }
    Ok((found, unreadable))
}

/// Writes the record's fields into `identity.json`, keeping any other fields (embeddings,
/// photo references) already in the file.
fn write_identity(dir: &Path, record: &IdentityRecord) -> io::Result<()> {
    let folder = dir.join(&record.id);
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(IDENTITY_FILE);
    let mut document = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let fields = serde_json::to_value(record).map_err(io::Error::other)?;
    if let (Some(target), Some(source)) = (document.as_object_mut(), fields.as_object()) {
        for (key, value) in source {
            target.insert(key.clone(), value.clone());
        }
        if record.tmdb_id.is_none() {
            target.remove("tmdb_id");
        }
    }
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(&document).map_err(io::Error::other)?,
    )
}

fn set_aside(dir: &Path, id: &str) -> io::Result<()> {
    let aside = dir.join("_orphaned");
    std::fs::create_dir_all(&aside)?;
    std::fs::rename(dir.join(id), aside.join(id))
}

pub fn write_index<'a>(
    dir: &Path,
    records: impl Iterator<Item = &'a IdentityRecord>,
) -> io::Result<()> {
    let index = Index {
        identities: records
            .map(|r| IndexEntry {
                id: r.id.clone(),
                name: r.name.clone(),
            })
            .collect(),
    };
    write_atomic(
        &dir.join(INDEX_FILE),
        &serde_json::to_vec_pretty(&index).map_err(io::Error::other)?,
    )
}
