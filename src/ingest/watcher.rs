//! The watcher: looks over the media roots every interval and registers each new file once it
//! is complete. A file counts as complete when its name is no longer a temporary one (`.part`,
//! `.filepart`, hidden, ...) and its size and mtime have not changed for the settle time. An
//! upload that stops half-way under a temporary name is never registered; one that stops
//! half-way under its final name is registered only if ffprobe can read it as media.
//!
//! It polls rather than subscribing to inotify: polling sees files that arrived while reelbase
//! was down, works on network mounts, and needs the same stat calls to judge completeness
//! anyway. What it has registered (and what an operator deleted) is loaded from PostgreSQL at
//! start, so a restart re-reads nothing that is unchanged.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::paths::is_temporary;
use super::{RegisterError, Registrar};
use crate::db::files::{self, Source, Stat};

/// Deepest folder level the watcher descends to under a root.
const MAX_DEPTH: usize = 32;

/// What tells one version of a file from another: device, inode, size, mtime (ns).
type Key = (i64, i64, i64, i64);

#[derive(Default)]
struct Memory {
    /// Registered (or deliberately deleted) files, as they were then.
    known: HashMap<String, Key>,
    /// Files that could not be registered (not media, say), as they were then: tried again
    /// only once they change.
    rejected: HashMap<String, Key>,
    /// New or changed files, and since when they have looked the same.
    pending: HashMap<String, (Key, Instant)>,
    loaded: bool,
    /// Roots already reported missing, so the log says it once.
    missing_roots: HashSet<PathBuf>,
}

pub fn spawn(
    registrar: Arc<Registrar>,
    interval: Duration,
    settle: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut memory = Memory::default();
        tracing::info!(
            roots = ?registrar.roots().roots(),
            interval_ms = interval.as_millis() as u64,
            settle_ms = settle.as_millis() as u64,
            "watching the media roots for new files"
        );
        loop {
            round(&registrar, &mut memory, settle, &stop).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    })
}

async fn round(
    registrar: &Registrar,
    memory: &mut Memory,
    settle: Duration,
    stop: &watch::Receiver<bool>,
) {
    if !memory.loaded {
        match files::known(&registrar.db().pool).await {
            Ok(rows) => {
                for (path, device, inode, size, mtime) in rows {
                    memory.known.insert(path, (device, inode, size, mtime));
                }
                memory.loaded = true;
            }
            Err(error) => {
                // PostgreSQL down or the schema not there yet: nothing could be stored anyway.
                tracing::debug!(error = %error, "watcher waits for PostgreSQL");
                return;
            }
        }
    }
    let roots = registrar.roots().roots().to_vec();
    let Ok((listing, missing)) = tokio::task::spawn_blocking(move || scan(&roots)).await else {
        return;
    };
    for root in missing {
        if memory.missing_roots.insert(root.clone()) {
            tracing::warn!(root = %root.display(), "media root is not a readable folder; watching it anyway");
        }
    }
    let now = Instant::now();
    let mut present = HashSet::with_capacity(listing.len());
    let mut ready = Vec::new();
    for (path, key) in listing {
        present.insert(path.clone());
        if memory.known.get(&path) == Some(&key) || memory.rejected.get(&path) == Some(&key) {
            continue;
        }
        match memory.pending.get(&path) {
            Some((seen, since)) if *seen == key => {
                if now.duration_since(*since) >= settle {
                    ready.push((path, key));
                }
            }
            _ => {
                memory.pending.insert(path, (key, now));
            }
        }
    }
    memory.pending.retain(|path, _| present.contains(path));
    for (path, key) in ready {
        if *stop.borrow() {
            return;
        }
        settle_one(registrar, memory, path, key).await;
    }
}

/// Registers one complete file and remembers the outcome.
async fn settle_one(registrar: &Registrar, memory: &mut Memory, path: String, key: Key) {
    let stat = Stat {
        path: path.clone(),
        device: key.0,
        inode: key.1,
        size: key.2,
        mtime_ns: key.3,
        ctime_ns: 0,
    };
    match files::is_tombstoned(&registrar.db().pool, &stat).await {
        Ok(true) => {
            memory.pending.remove(&path);
            memory.known.insert(path, key);
            return;
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(error = %error, "watcher cannot reach PostgreSQL; will retry");
            return;
        }
    }
    match registrar.register(&path, Source::Watcher).await {
        Ok(_) => {
            memory.pending.remove(&path);
            memory.known.insert(path, key);
        }
        Err(RegisterError::Changing) => {
            // Still being written: start the settle time again.
            memory.pending.insert(path, (key, Instant::now()));
        }
        Err(error @ (RegisterError::NotMedia(_) | RegisterError::Path(_))) => {
            tracing::info!(path = %path, reason = %error, "watcher leaves a file unregistered");
            memory.pending.remove(&path);
            memory.rejected.insert(path, key);
        }
        Err(error) => {
            tracing::warn!(path = %path, error = %error, "watcher could not register a file; will retry");
            memory.pending.insert(path, (key, Instant::now()));
        }
    }
}

/// Every regular file under the roots whose name and folders are not temporary or hidden,
/// with its key; and the roots that could not be read. Symlinks are not followed.
fn scan(roots: &[PathBuf]) -> (Vec<(String, Key)>, Vec<PathBuf>) {
    let mut listing = Vec::new();
    let mut missing = Vec::new();
    for root in roots {
        // Records hold resolved paths, so the walk starts from the resolved root.
        let resolved = root.canonicalize().unwrap_or_else(|_| root.clone());
        if !walk(&resolved, MAX_DEPTH, &mut listing) {
            missing.push(root.clone());
        }
    }
    (listing, missing)
}

/// Returns false when `dir` itself cannot be read.
fn walk(dir: &Path, depth: usize, listing: &mut Vec<(String, Key)>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temporary(name) {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 {
                walk(&entry.path(), depth - 1, listing);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let path = entry.path();
        let (Ok(meta), Some(text)) = (entry.metadata(), path.to_str()) else {
            continue;
        };
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        let key = (
            meta.dev() as i64,
            meta.ino() as i64,
            meta.len() as i64,
            mtime,
        );
        listing.push((text.to_owned(), key));
    }
    true
}
