//! Changing the identity library: create (a name and photos, from which face vectors are
//! made), rename, merge, delete, and binding face tracks by hand. Every change is written to
//! the database and to the identity folder together (`<id>/identity.json`, `faces.json` with
//! the vectors and the photos they came from, `profile.jpg`, and `_index.json`), one change at
//! a time, and stored tracks are matched again so that it takes effect at once.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use tokio::sync::Mutex;

use super::sync::write_index;
use super::{IDENTITY_FILE, IdentityRecord, is_identity_id, matching, write_atomic};
use crate::db::identities as rows;
use crate::pipeline::context::{StepError, Tools};
use crate::pipeline::face::find_faces;
use crate::pipeline::runner::Runner;
use crate::vectors::{VectorError, VectorStore};

pub const FACES_FILE: &str = "faces.json";
pub const PROFILE_FILE: &str = "profile.jpg";
/// Photos per request, and bytes per photo.
pub const MAX_PHOTOS: usize = 5;
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;
pub const MAX_NAME: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("no such identity")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidPhoto(String),
    #[error("{0}")]
    NoFace(String),
    #[error("{0}")]
    Conflict(String),
    /// The face models could not run (environment, timeout).
    #[error("faces could not be read from the photos: {0}")]
    Faces(String),
    #[error("identity folder: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the vector store: {0}")]
    Store(#[from] VectorError),
}

impl From<matching::MatchError> for LibraryError {
    fn from(error: matching::MatchError) -> Self {
        match error {
            matching::MatchError::Store(e) => Self::Store(e),
            matching::MatchError::Database(e) => Self::Database(e),
        }
    }
}

/// A new identity as asked for.
pub struct NewIdentity {
    pub name: String,
    pub source: String,
    pub tmdb_id: Option<i64>,
    pub photos: Vec<Vec<u8>>,
}

/// An identity as the API shows it.
#[derive(Debug, Serialize)]
pub struct IdentityView {
    pub id: String,
    pub name: String,
    pub source: String,
    pub status: String,
    pub tmdb_id: Option<i64>,
    pub faces: i64,
    pub appearances: i64,
}

pub struct Library {
    dir: PathBuf,
    tools: Tools,
    runner: Runner,
    /// One change at a time: the index is rewritten from the database after each.
    writing: Mutex<()>,
}

impl Library {
    pub fn new(dir: PathBuf, tools: Tools) -> Self {
        Self {
            dir,
            tools,
            runner: Runner::new(1),
            writing: Mutex::new(()),
        }
    }

    /// The processors' tools (vector store, text encoder, model pointers) the library shares.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn vectors(&self) -> &VectorStore {
        &self.tools.vectors
    }

    pub async fn create(
        &self,
        pool: &PgPool,
        new: NewIdentity,
    ) -> Result<IdentityView, LibraryError> {
        let name = check_name(&new.name)?;
        if new.photos.is_empty() || new.photos.len() > MAX_PHOTOS {
            return Err(LibraryError::Invalid(format!(
                "give 1 to {MAX_PHOTOS} photos of the person"
            )));
        }
        let kinds = new
            .photos
            .iter()
            .enumerate()
            .map(|(i, bytes)| photo_kind(i, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let _guard = self.writing.lock().await;
        if let Some(tmdb_id) = new.tmdb_id
            && let Some(existing) = id_by_tmdb(pool, tmdb_id).await?
        {
            return Err(LibraryError::Conflict(format!(
                "TMDb person {tmdb_id} is already identity {existing}"
            )));
        }
        let id = crate::auth::tokens::random_bytes::<16>()
            .map(|bytes| crate::db::migrations::hex(&bytes))
            .map_err(|_| std::io::Error::other("the system gave no random bytes"))?;
        std::fs::create_dir_all(&self.dir)?;
        let staging = self.dir.join(format!(".{id}.new"));
        std::fs::create_dir_all(&staging)?;
        let result = self
            .stage_and_insert(pool, &id, &name, &new, &kinds, &staging)
            .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result?;
        std::fs::rename(&staging, self.dir.join(&id))?;
        self.rewrite_index(pool).await?;
        drop(_guard);
        matching::rematch_tracks(pool, &self.tools.vectors).await?;
        self.view(pool, &id).await
    }

    async fn stage_and_insert(
        &self,
        pool: &PgPool,
        id: &str,
        name: &str,
        new: &NewIdentity,
        kinds: &[&str],
        staging: &Path,
    ) -> Result<(), LibraryError> {
        let mut pictures = Vec::new();
        for (i, (bytes, kind)) in new.photos.iter().zip(kinds).enumerate() {
            let path = staging.join(format!("photo-{}.{kind}", i + 1));
            std::fs::write(&path, bytes)?;
            pictures.push((path, i as f64));
        }
        let found = find_faces(&self.runner, &self.tools, &pictures)
            .await
            .map_err(|StepError(reason)| {
                // face.py names a picture it cannot decode; that is the photo's fault.
                if reason.contains("cannot read frame") || reason.contains("is not an RGB image") {
                    LibraryError::InvalidPhoto("a photo could not be decoded as an image".into())
                } else {
                    LibraryError::Faces(reason)
                }
            })?;
        // The most confident face of each photo; every photo must show one.
        let mut faces = Vec::new();
        for (i, (path, _)) in pictures.iter().enumerate() {
            let best = found
                .iter()
                .filter(|f| f.frame == i)
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
                .ok_or_else(|| {
                    LibraryError::NoFace(format!("photo {} shows no face that can be read", i + 1))
                })?;
            let photo = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            faces.push((photo, best.clone()));
        }
        self.make_profile(&pictures[0].0, staging).await;
        let record = IdentityRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            source: new.source.clone(),
            status: "active".to_owned(),
            tmdb_id: new.tmdb_id,
        };
        let listed: Vec<Value> = faces
            .iter()
            .map(|(photo, f)| {
                json!({"photo": photo, "box": f.bbox, "confidence": f.confidence, "vector": f.vector})
            })
            .collect();
        write_atomic(
            &staging.join(IDENTITY_FILE),
            &serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?,
        )?;
        write_atomic(
            &staging.join(FACES_FILE),
            &serde_json::to_vec_pretty(&json!({"faces": listed})).map_err(std::io::Error::other)?,
        )?;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO identities (id, name, source, status, tmdb_id) VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(id)
        .bind(name)
        .bind(&new.source)
        .bind(new.tmdb_id)
        .execute(&mut *tx)
        .await?;
        let mut indexed = Vec::with_capacity(faces.len());
        for (photo, face) in &faces {
            let face_id: i64 = sqlx::query_scalar(
                "INSERT INTO identity_faces (identity_id, photo, vector) VALUES ($1, $2, $3) \
                 RETURNING id",
            )
            .bind(id)
            .bind(photo)
            .bind(&face.vector)
            .fetch_one(&mut *tx)
            .await?;
            indexed.push((face_id, id.to_owned(), face.vector.clone()));
        }
        // Into the store before the commit: a person is never in the library unsearchable.
        matching::index(&self.tools.vectors, &indexed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `profile.jpg` from the first photo; a photo ffmpeg cannot convert just has none.
    async fn make_profile(&self, photo: &Path, folder: &Path) {
        let target = folder.join(PROFILE_FILE);
        let args = [
            "-v".as_ref(),
            "error".as_ref(),
            "-nostdin".as_ref(),
            "-i".as_ref(),
            photo.as_os_str(),
            "-frames:v".as_ref(),
            "1".as_ref(),
            "-vf".as_ref(),
            "scale='min(512,iw)':-2".as_ref(),
            "-y".as_ref(),
            target.as_os_str(),
        ];
        let timeout = self.tools.timeout.min(std::time::Duration::from_secs(30));
        let made: Vec<&std::ffi::OsStr> = args.to_vec();
        if let Err(error) = self
            .runner
            .run(self.tools.ffmpeg.as_os_str(), made, timeout)
            .await
        {
            tracing::warn!(%error, "no profile picture made");
        }
    }

    pub async fn rename(
        &self,
        pool: &PgPool,
        id: &str,
        name: &str,
    ) -> Result<IdentityView, LibraryError> {
        let name = check_name(name)?;
        let _guard = self.writing.lock().await;
        let mut record = record(pool, id).await?;
        record.name = name;
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE identities SET name = $1, updated_at = now() WHERE id = $2")
            .bind(&record.name)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.write_record(&record)?;
        tx.commit().await?;
        self.rewrite_index(pool).await?;
        drop(_guard);
        self.view(pool, id).await
    }

    /// Moves the faces, photos and tracks of `from` into `into` and deletes `from`.
    pub async fn merge(
        &self,
        pool: &PgPool,
        into: &str,
        from: &[String],
    ) -> Result<IdentityView, LibraryError> {
        let mut from: Vec<String> = from.to_vec();
        from.sort();
        from.dedup();
        if from.is_empty() || from.iter().any(|f| f == into) {
            return Err(LibraryError::Invalid(
                "`from` must list other identities to merge into this one".into(),
            ));
        }
        let _guard = self.writing.lock().await;
        record(pool, into).await?;
        for other in &from {
            record(pool, other).await?;
        }
        let target = self.dir.join(into);
        std::fs::create_dir_all(&target)?;
        let mut listed = read_faces(&target);
        let mut next = next_photo_number(&target);
        let mut into_record = record(pool, into).await?;
        // Planned first, carried out last: the database and the store change inside the
        // transaction, then the photos move (undone if one cannot), then it commits.
        let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut tx = pool.begin().await?;
        for other in &from {
            let folder = self.dir.join(other);
            for mut face in read_faces(&folder) {
                if let Some(photo) = face["photo"].as_str().map(str::to_owned) {
                    // Renumbered in the target folder: names never grow with merges.
                    let kind = Path::new(&photo)
                        .extension()
                        .map_or("jpg".to_owned(), |e| e.to_string_lossy().into_owned());
                    let moved = format!("photo-{next}.{kind}");
                    next += 1;
                    moves.push((folder.join(&photo), target.join(&moved)));
                    sqlx::query(
                        "UPDATE identity_faces SET identity_id = $1, photo = $2 \
                         WHERE identity_id = $3 AND photo = $4",
                    )
                    .bind(into)
                    .bind(&moved)
                    .bind(other)
                    .bind(&photo)
                    .execute(&mut *tx)
                    .await?;
                    face["photo"] = json!(moved);
                }
                listed.push(face);
            }
            sqlx::query("UPDATE identity_faces SET identity_id = $1 WHERE identity_id = $2")
                .bind(into)
                .bind(other)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE face_tracks SET identity_id = $1 WHERE identity_id = $2")
                .bind(into)
                .bind(other)
                .execute(&mut *tx)
                .await?;
            let tmdb_id: Option<i64> =
                sqlx::query_scalar("DELETE FROM identities WHERE id = $1 RETURNING tmdb_id")
                    .bind(other)
                    .fetch_one(&mut *tx)
                    .await?;
            // A TMDb person merged into one without a TMDb id keeps it, so an import of the
            // same cast finds them instead of making them again.
            if into_record.tmdb_id.is_none() && tmdb_id.is_some() {
                into_record.tmdb_id = tmdb_id;
                sqlx::query("UPDATE identities SET tmdb_id = $1 WHERE id = $2")
                    .bind(tmdb_id)
                    .bind(into)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // The moved vectors carry their new identity in the store before anything moves.
        let moved: Vec<(i64, String, Vec<f32>)> = sqlx::query_as(
            "SELECT id, identity_id, vector FROM identity_faces WHERE identity_id = $1",
        )
        .bind(into)
        .fetch_all(&mut *tx)
        .await?;
        matching::index(&self.tools.vectors, &moved).await?;
        let undo = |done: &[(PathBuf, PathBuf)]| {
            for (from, to) in done.iter().rev() {
                let _ = std::fs::rename(to, from);
            }
        };
        for (n, (from_path, to_path)) in moves.iter().enumerate() {
            if let Err(error) = std::fs::rename(from_path, to_path) {
                undo(&moves[..n]);
                self.reindex_after_failure(pool).await;
                return Err(error.into());
            }
        }
        let written = write_atomic(
            &target.join(FACES_FILE),
            &serde_json::to_vec_pretty(&json!({"faces": listed})).map_err(std::io::Error::other)?,
        )
        .map_err(LibraryError::from)
        .and_then(|()| self.write_record(&into_record));
        let committed = match written {
            Ok(()) => tx.commit().await.map_err(LibraryError::from),
            Err(error) => Err(error),
        };
        if let Err(error) = committed {
            undo(&moves);
            self.reindex_after_failure(pool).await;
            return Err(error);
        }
        for other in &from {
            let _ = std::fs::remove_dir_all(self.dir.join(other));
        }
        self.rewrite_index(pool).await?;
        drop(_guard);
        matching::rematch_tracks(pool, &self.tools.vectors).await?;
        self.view(pool, into).await
    }

    /// After a change rolled back, the store may hold vectors with the identity the change
    /// gave them: written again from the database (best effort; the next start does it too).
    async fn reindex_after_failure(&self, pool: &PgPool) {
        let faces: Result<Vec<(i64, String, Vec<f32>)>, _> =
            sqlx::query_as("SELECT id, identity_id, vector FROM identity_faces")
                .fetch_all(pool)
                .await;
        if let Ok(faces) = faces
            && let Err(error) = matching::index(&self.tools.vectors, &faces).await
        {
            tracing::warn!(%error, "face vectors not restored after a failed change");
        }
    }

    pub async fn delete(&self, pool: &PgPool, id: &str) -> Result<(), LibraryError> {
        let _guard = self.writing.lock().await;
        record(pool, id).await?;
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE face_tracks SET bound = false WHERE identity_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        matching::forget(&self.tools.vectors, id).await?;
        tx.commit().await?;
        let folder = self.dir.join(id);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)?;
        }
        self.rewrite_index(pool).await?;
        drop(_guard);
        matching::rematch_tracks(pool, &self.tools.vectors).await?;
        Ok(())
    }

    fn write_record(&self, record: &IdentityRecord) -> Result<(), LibraryError> {
        let folder = self.dir.join(&record.id);
        std::fs::create_dir_all(&folder)?;
        let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        write_atomic(&folder.join(IDENTITY_FILE), &bytes)?;
        Ok(())
    }

    async fn rewrite_index(&self, pool: &PgPool) -> Result<(), LibraryError> {
        let all = rows::all(pool).await?;
        write_index(&self.dir, all.iter())?;
        Ok(())
    }

    pub async fn view(&self, pool: &PgPool, id: &str) -> Result<IdentityView, LibraryError> {
        view(pool, id).await?.ok_or(LibraryError::NotFound)
    }
}

/// A track bound to `identity` by hand (or unbound with `None`, which hands it back to
/// matching). Returns false when the file has no such track.
pub async fn bind(
    pool: &PgPool,
    store: &VectorStore,
    file_uuid: &str,
    track: i32,
    identity: Option<&str>,
) -> Result<bool, LibraryError> {
    if let Some(identity) = identity {
        record(pool, identity).await?;
    }
    let updated = sqlx::query(
        "UPDATE face_tracks SET identity_id = $1, bound = $2, distance = NULL \
         WHERE file_uuid = $3 AND track = $4",
    )
    .bind(identity)
    .bind(identity.is_some())
    .bind(file_uuid)
    .bind(track)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    if identity.is_none() {
        matching::rematch_tracks(pool, store).await?;
    }
    Ok(true)
}

/// Where an identity appears: its tracks, with their files, newest files first.
pub async fn appearances(pool: &PgPool, id: &str) -> Result<Vec<Value>, LibraryError> {
    record(pool, id).await?;
    let found = sqlx::query(
        "SELECT t.file_uuid, f.file_name, f.file_path, t.track, t.shot, t.start_time, \
         t.end_time, t.distance, t.bound FROM face_tracks t \
         JOIN files f ON f.file_uuid = t.file_uuid WHERE t.identity_id = $1 \
         ORDER BY f.registered_at DESC, t.file_uuid, t.start_time",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let spans = found
        .iter()
        .map(|row| {
            Ok(json!({
                "file_uuid": row.try_get::<String, _>("file_uuid")?,
                "file_name": row.try_get::<String, _>("file_name")?,
                "file_path": row.try_get::<String, _>("file_path")?,
                "track": row.try_get::<i32, _>("track")?,
                "shot": row.try_get::<Option<i32>, _>("shot")?,
                "start_time": row.try_get::<f64, _>("start_time")?,
                "end_time": row.try_get::<f64, _>("end_time")?,
                "distance": row.try_get::<Option<f64>, _>("distance")?,
                "bound": row.try_get::<bool, _>("bound")?,
            }))
        })
        .collect::<Result<Vec<Value>, sqlx::Error>>()?;
    Ok(spans)
}

/// The identity columns with their face and track counts.
const VIEW: &str = "SELECT i.id, i.name, i.source, i.status, i.tmdb_id, \
     (SELECT count(*) FROM identity_faces f WHERE f.identity_id = i.id) AS faces, \
     (SELECT count(*) FROM face_tracks t WHERE t.identity_id = i.id) AS appearances \
     FROM identities i";

fn view_of(row: &sqlx::postgres::PgRow) -> Result<IdentityView, sqlx::Error> {
    Ok(IdentityView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        tmdb_id: row.try_get("tmdb_id")?,
        faces: row.try_get("faces")?,
        appearances: row.try_get("appearances")?,
    })
}

pub async fn view(pool: &PgPool, id: &str) -> Result<Option<IdentityView>, sqlx::Error> {
    if !is_identity_id(id) {
        return Ok(None);
    }
    let row = sqlx::query(&format!("{VIEW} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(view_of).transpose()
}

/// A page of identities by name, with the total.
pub async fn list(
    pool: &PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<IdentityView>, i64), sqlx::Error> {
    let rows = sqlx::query(&format!("{VIEW} ORDER BY i.name, i.id LIMIT $1 OFFSET $2"))
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM identities")
        .fetch_one(pool)
        .await?;
    let views = rows.iter().map(view_of).collect::<Result<_, _>>()?;
    Ok((views, total))
}

pub async fn id_by_tmdb(pool: &PgPool, tmdb_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM identities WHERE tmdb_id = $1")
        .bind(tmdb_id)
        .fetch_optional(pool)
        .await
}

async fn record(pool: &PgPool, id: &str) -> Result<IdentityRecord, LibraryError> {
    if !is_identity_id(id) {
        return Err(LibraryError::NotFound);
    }
    let row: Option<(String, String, String, String, Option<i64>)> =
        sqlx::query_as("SELECT id, name, source, status, tmdb_id FROM identities WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let (id, name, source, status, tmdb_id) = row.ok_or(LibraryError::NotFound)?;
    Ok(IdentityRecord {
        id,
        name,
        source,
        status,
        tmdb_id,
    })
}

/// One more than the highest `photo-N` in a folder.
fn next_photo_number(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("photo-")?
                        .split('.')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
        + 1
}

fn read_faces(folder: &Path) -> Vec<Value> {
    std::fs::read(folder.join(FACES_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|doc| doc["faces"].as_array().cloned())
        .unwrap_or_default()
}

fn check_name(name: &str) -> Result<String, LibraryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(LibraryError::Invalid(format!(
            "`name` must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// `jpg` or `png` by the photo's first bytes; anything else is refused.
fn photo_kind(index: usize, bytes: &[u8]) -> Result<&'static str, LibraryError> {
    let number = index + 1;
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(LibraryError::InvalidPhoto(format!(
            "photo {number} is larger than {} MiB",
            MAX_PHOTO_BYTES / 1024 / 1024
        )));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok("jpg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok("png")
    } else {
        Err(LibraryError::InvalidPhoto(format!(
            "photo {number} is not a JPEG or PNG image"
        )))
    }
}
