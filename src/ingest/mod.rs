//! Getting footage in. Every way a file arrives (the API, the CLI, the watcher over the media
//! roots, SFTPGo's upload hook) goes through one `Registrar`: check the path, probe the file,
//! hash its content, store one record per content.

pub mod batch;
pub mod paths;
pub mod probe;
pub mod watcher;

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

use crate::db::Database;
use crate::db::files::{self, FileRecord, NewFile, Source, Stat};
use crate::db::jobs;
use crate::digest;
use crate::pipeline::readiness::PipelineChecker;
use crate::pipeline::registry;
pub use paths::{MediaRoots, PathError};
pub use probe::{MediaFacts, ProbeError};

/// Files hashed at once. Hashing is disk- and CPU-bound; more at once only makes each slower.
const HASHING_AT_ONCE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{0}")]
    NotMedia(&'static str),
    #[error("ffprobe is not usable here")]
    ProbeUnavailable(String),
    #[error("the file changed while it was read; it is probably still being written")]
    Changing,
    #[error("reading the file failed: {0}")]
    Read(std::io::Error),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cancelled")]
    Cancelled,
    /// The watcher found content whose record an operator deleted.
    #[error("an operator deleted the record of this content")]
    Deleted,
}

impl From<ProbeError> for RegisterError {
    fn from(error: ProbeError) -> Self {
        match error {
            ProbeError::NotMedia(reason) => RegisterError::NotMedia(reason),
            ProbeError::Unavailable(reason) => RegisterError::ProbeUnavailable(reason),
        }
    }
}

/// The outcome of one registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub record: FileRecord,
    /// The content was registered before this call.
    pub already_exists: bool,
    /// The content was registered under another path, which no longer holds it; the record
    /// now points here.
    pub moved: bool,
}

impl Registered {
    pub fn message(&self) -> &'static str {
        match (self.already_exists, self.moved) {
            (false, _) => "registered",
            (true, true) => "already registered under a path that no longer holds it; moved here",
            (true, false) => "this content is already registered",
        }
    }
}

pub struct Registrar {
    db: Database,
    roots: MediaRoots,
    ffprobe: PathBuf,
    hashing: Semaphore,
    /// When set, every new file is queued for the processors that can run here.
    auto_process: Option<Arc<PipelineChecker>>,
}

impl Registrar {
    pub fn new(db: Database, media_roots: &[PathBuf], ffprobe: PathBuf) -> Self {
        Self {
            db,
            roots: MediaRoots::new(media_roots),
            ffprobe,
            hashing: Semaphore::new(HASHING_AT_ONCE),
            auto_process: None,
        }
    }

    /// Queues every new file for the processors that `checker` finds ready.
    pub fn with_auto_process(mut self, checker: Arc<PipelineChecker>) -> Self {
        self.auto_process = Some(checker);
        self
    }

    async fn queue(&self, record: &FileRecord) {
        let Some(checker) = self.auto_process.clone() else {
            return;
        };
        let Ok(report) = tokio::task::spawn_blocking(move || checker.check()).await else {
            return;
        };
        let ready: Vec<&str> = registry::BUILT
            .iter()
            .copied()
            .filter(|name| report.processors.get(name) == Some(&true))
            .collect();
        let plan = registry::plan(&registry::applicable(&ready, &record.file_type));
        if plan.is_empty() {
            return;
        }
        match jobs::create(&self.db.pool, &record.file_uuid, &plan).await {
            Ok(job) => {
                tracing::info!(job = job.id, file_uuid = %record.file_uuid, "queued on registration")
            }
            Err(error) => tracing::warn!(error = %error, "cannot queue a new file"),
        }
    }

    pub fn roots(&self) -> &MediaRoots {
        &self.roots
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Registers the file at `raw_path` (absolute, under a media root).
    pub async fn register(
        &self,
        raw_path: &str,
        source: Source,
    ) -> Result<Registered, RegisterError> {
        let roots = self.roots.clone();
        let raw = raw_path.to_owned();
        let checked = blocking(move || roots.check_file(&raw)).await??;
        let pool = &self.db.pool;
        // A file registered before and untouched since need not be read again.
        if let Some(record) = files::find_unchanged(pool, &checked.stat).await? {
            return Ok(Registered {
                record,
                already_exists: true,
                moved: false,
            });
        }
        let facts = probe::probe(&self.ffprobe, &checked.path).await?;
        let digest = self.hash(&checked.path, &checked.stat).await?;
        let content_hash = digest::hex(&digest);
        if source == Source::Watcher {
            if files::is_tombstoned(pool, &content_hash).await? {
                return Err(RegisterError::Deleted);
            }
        } else {
            files::clear_tombstone(pool, &content_hash).await?;
        }
        let file_uuid = file_uuid(&digest);
        let file_name = file_name(&checked.path);
        let new = NewFile {
            file_uuid: &file_uuid,
            content_hash: &content_hash,
            file_name: &file_name,
            file_type: facts.file_type,
            container: &facts.container,
            duration: facts.duration,
            width: facts.width,
            height: facts.height,
            fps: facts.fps,
            total_frames: facts.total_frames,
            audio_streams: facts.audio_streams,
            source,
        };
        let (record, created) = files::insert_or_existing(pool, &new, &checked.stat).await?;
        if created {
            let (partial, replaced) =
                files::supersede(pool, &record.file_uuid, &checked.stat).await?;
            if partial + replaced > 0 {
                tracing::info!(
                    path = ?record.file_path,
                    partial_records_deleted = partial,
                    records_marked_missing = replaced,
                    "the path holds new content"
                );
            }
            self.queue(&record).await;
            tracing::info!(
                file_uuid = %record.file_uuid,
                path = ?record.file_path,
                source = source.as_str(),
                "file registered"
            );
            return Ok(Registered {
                record,
                already_exists: false,
                moved: false,
            });
        }
        let elsewhere = record.file_path != checked.stat.path;
        if !elsewhere {
            // Same file, same content, new stat facts (a hard link, a change of mode).
            files::refresh_stat(pool, &record.file_uuid, &checked.stat).await?;
        }
        if elsewhere
            && !holds(&record.file_path, record.size_bytes)
            && let Some(moved) =
                files::relocate(pool, &record.file_uuid, &file_name, &checked.stat).await?
        {
            tracing::info!(file_uuid = %moved.file_uuid, path = ?moved.file_path, "file moved");
            return Ok(Registered {
                record: moved,
                already_exists: true,
                moved: true,
            });
        }
        Ok(Registered {
            record,
            already_exists: true,
            moved: false,
        })
    }

    /// SHA-256 of the file, read through a descriptor that is checked to be the file that
    /// was judged (no symlink swapped in since) and unchanged by the end of the read.
    async fn hash(&self, path: &Path, stat: &Stat) -> Result<[u8; 32], RegisterError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| RegisterError::Cancelled)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let path = path.to_owned();
        let expected = stat.clone();
        blocking(move || {
            let file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|error| match error.raw_os_error() {
                    // The last component became a symlink after it was judged.
                    Some(libc::ELOOP) => RegisterError::Changing,
                    _ => RegisterError::Path(paths::io_error(error)),
                })?;
            let before = file.metadata().map_err(RegisterError::Read)?;
            if !same_file(&before, &expected) {
                return Err(RegisterError::Changing);
            }
            let digest = match digest::sha256(&file, &cancel) {
                Ok(digest) => digest,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {
                    return Err(RegisterError::Cancelled);
                }
                Err(error) => return Err(RegisterError::Read(error)),
            };
            let after = file.metadata().map_err(RegisterError::Read)?;
            if !same_file(&after, &expected) {
                return Err(RegisterError::Changing);
            }
            // Still there under its name (not deleted or replaced while it was read)?
            match std::fs::symlink_metadata(&path) {
                Ok(now) if same_file(&now, &expected) => Ok(digest),
                _ => Err(RegisterError::Changing),
            }
        })
        .await?
    }
}

/// Sets the flag when the registration future is dropped (its request went away), so the
/// blocking read stops instead of finishing a hash nobody waits for.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn same_file(meta: &std::fs::Metadata, stat: &Stat) -> bool {
    meta.dev() as i64 == stat.device
        && meta.ino() as i64 == stat.inode
        && meta.len() as i64 == stat.size
        && meta.mtime() * 1_000_000_000 + meta.mtime_nsec() == stat.mtime_ns
}

/// Whether `path` still holds a file of `size` bytes (the content of a record, most likely).
fn holds(path: &str, size: i64) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() as i64 == size)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegisterError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| RegisterError::Cancelled)
}

/// The `file_uuid` of some content: the first 128 bits of its SHA-256, marked as a version 8
/// (custom) UUID and written as 32 hex digits. The same content always gets the same id, so a
/// record deleted and registered again keeps its id.
pub fn file_uuid(digest: &[u8; 32]) -> String {
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x80;
    id[8] = (id[8] & 0x3f) | 0x80;
    digest::hex(&id)
}

/// Whether `text` is a well-formed `file_uuid` (32 lowercase hex digits).
pub fn is_file_uuid(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uuids_are_32_hex_version_8() {
        let id = file_uuid(&[0xff; 32]);
        assert!(is_file_uuid(&id), "{id}");
        assert_eq!(&id[12..13], "8");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"));
        assert_ne!(file_uuid(&[0; 32]), file_uuid(&[1; 32]));
        assert!(!is_file_uuid("ABCDEF0123456789abcdef0123456789"));
    }
}
