//! The watcher: looks over the media roots every interval and registers each new file once it
//! is complete. A file counts as complete when its name is no longer a temporary one (`.part`,
//! `.filepart`, hidden, ...), its size and mtime have not changed for the settle time, and no
//! process on this machine still has it open for writing. An upload that stops half-way under
//! a temporary name is never registered; a record made of a partial file that later grows is
//! replaced by the complete one.
//!
//! It polls rather than subscribing to inotify: polling sees files that arrived while reelbase
//! was down, works on network mounts, and needs the same stat calls to judge completeness
//! anyway. Every judgement (registered, already known, deleted by an operator, not media) is
//! kept in PostgreSQL with the file's stat facts, so a restart reads again only what changed.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::paths::{is_hidden, is_temporary, stat_of};
use super::{RegisterError, Registrar};
use crate::db::files::{self, Source, Stat};

/// Deepest folder level the watcher descends to under a root.
const MAX_DEPTH: usize = 32;

#[derive(Default)]
struct Memory {
    /// Files judged before, as they were then, and the outcome.
    judged: HashMap<String, (Stat, String)>,
    /// New or changed files, and since when they have looked the same.
    pending: HashMap<String, (Stat, Instant)>,
    loaded: bool,
    /// Roots and names already reported, so the log says it once.
    reported: HashSet<PathBuf>,
}

/// Whether a file is as it was when judged. A rejected file is looked at again on any change,
/// its mode included (it may have been unreadable); others only when their content may differ.
fn unchanged(then: &Stat, outcome: &str, now: &Stat) -> bool {
    let same = then.device == now.device
        && then.inode == now.inode
        && then.size == now.size
        && then.mtime_ns == now.mtime_ns;
    same && (outcome != "rejected" || then.ctime_ns == now.ctime_ns)
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
    let pool = &registrar.db().pool;
    if !memory.loaded {
        match files::seen(pool).await {
            Ok(rows) => {
                for (stat, outcome) in rows {
                    memory.judged.insert(stat.path.clone(), (stat, outcome));
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
    let Ok(scan) = tokio::task::spawn_blocking(move || scan(&roots)).await else {
        return;
    };
    for (what, path) in &scan.problems {
        if memory.reported.insert(path.clone()) {
            tracing::warn!(path = ?path, "watcher skips {what}");
        }
    }
    let now = Instant::now();
    let mut present = HashSet::with_capacity(scan.files.len());
    let mut ready = Vec::new();
    for stat in scan.files {
        present.insert(stat.path.clone());
        if let Some((then, outcome)) = memory.judged.get(&stat.path)
            && unchanged(then, outcome, &stat)
        {
            continue;
        }
        match memory.pending.get(&stat.path) {
            Some((seen, since)) if *seen == stat => {
                if now.duration_since(*since) >= settle {
                    ready.push(stat);
                }
            }
            _ => {
                memory.pending.insert(stat.path.clone(), (stat, now));
            }
        }
    }
    memory.pending.retain(|path, _| present.contains(path));
    // Forget files that are gone, unless a root could not be read this time (then "gone"
    // may only mean "not seen").
    if !scan.root_missing {
        let gone: Vec<String> = memory
            .judged
            .keys()
            .filter(|path| !present.contains(*path))
            .cloned()
            .collect();
        if !gone.is_empty() && files::forget_seen(pool, &gone).await.is_ok() {
            for path in gone {
                memory.judged.remove(&path);
            }
        }
    }
    for stat in ready {
        if *stop.borrow() {
            return;
        }
        settle_one(registrar, memory, stat).await;
    }
}

/// Registers one complete file and remembers the outcome.
async fn settle_one(registrar: &Registrar, memory: &mut Memory, stat: Stat) {
    let path = stat.path.clone();
    let probe_path = PathBuf::from(&path);
    let busy = tokio::task::spawn_blocking(move || open_for_writing(&probe_path))
        .await
        .unwrap_or(false);
    if busy {
        // Still being written (an upload that paused): wait another settle time.
        memory.pending.insert(path, (stat, Instant::now()));
        return;
    }
    let (outcome, reason) = match registrar.register(&path, Source::Watcher).await {
        Ok(registered) if registered.already_exists => ("known", None),
        Ok(_) => ("registered", None),
        Err(RegisterError::Deleted) => ("deleted", None),
        Err(error @ (RegisterError::NotMedia(_) | RegisterError::Path(_))) => {
            tracing::info!(path = ?path, reason = %error, "watcher leaves a file unregistered");
            ("rejected", Some(error.to_string()))
        }
        Err(RegisterError::Changing) => {
            memory.pending.insert(path, (stat, Instant::now()));
            return;
        }
        Err(error) => {
            tracing::warn!(path = ?path, error = %error, "watcher could not register a file; will retry");
            memory.pending.insert(path, (stat, Instant::now()));
            return;
        }
    };
    memory.pending.remove(&path);
    if let Err(error) =
        files::record_seen(&registrar.db().pool, &stat, outcome, reason.as_deref()).await
    {
        tracing::warn!(error = %error, "watcher cannot store what it judged");
    }
    memory.judged.insert(path, (stat, outcome.to_owned()));
}

struct Scan {
    files: Vec<Stat>,
    /// What was skipped and deserves one log line: (what, path).
    problems: Vec<(&'static str, PathBuf)>,
    root_missing: bool,
}

/// Every regular file under the roots whose name is not temporary and whose folders are not
/// hidden, with its stat facts. Symlinks are not followed.
fn scan(roots: &[PathBuf]) -> Scan {
    let mut scan = Scan {
        files: Vec::new(),
        problems: Vec::new(),
        root_missing: false,
    };
    for root in roots {
        // Records hold resolved paths, so the walk starts from the resolved root.
        let resolved = root.canonicalize().unwrap_or_else(|_| root.clone());
        if !walk(&resolved, MAX_DEPTH, &mut scan) {
            scan.root_missing = true;
            scan.problems
                .push(("a media root that is not a readable folder", root.clone()));
        }
    }
    scan
}

/// Returns false when `dir` itself cannot be read.
fn walk(dir: &Path, depth: usize, scan: &mut Scan) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            scan.problems
                .push(("a name that is not UTF-8", entry.path()));
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 && !is_hidden(name) {
                walk(&entry.path(), depth - 1, scan);
            }
            continue;
        }
        if !kind.is_file() || is_temporary(name) {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            scan.files.push(stat_of(&entry.path(), &meta));
        }
    }
    true
}

/// Whether a process on this machine has `path` open for writing (an upload in progress, as
/// SFTPGo or a copy holds it). Only processes whose descriptors reelbase may read are seen.
fn open_for_writing(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let (device, inode) = (meta.dev(), meta.ino());
    let own = std::process::id().to_string();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    for process in processes.flatten() {
        let pid = process.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::metadata(fd.path()) else {
                continue;
            };
            if target.dev() != device || target.ino() != inode {
                continue;
            }
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let flags = std::fs::read_to_string(info).ok().and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("flags:"))?;
                u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).ok()
            });
            if flags.is_some_and(|f| f & (libc::O_ACCMODE as u32) != libc::O_RDONLY as u32) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_open_for_writing_is_seen_as_busy() {
        let path = std::env::temp_dir().join(format!("reelbase-busy-{}", std::process::id()));
        let mut writer = std::fs::File::create(&path).unwrap();
        writer.write_all(b"partial").unwrap();
        // Our own descriptors are skipped, so ask from a child that holds the file open.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3>>'{}'; exec sleep 5", path.display()))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut busy = false;
        while !busy && Instant::now() < deadline {
            busy = open_for_writing(&path);
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(writer);
        assert!(busy, "a writer was not seen");
        assert!(!open_for_writing(&path), "no writer is left");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_rejected_file_is_judged_again_on_a_change_of_mode() {
        let then = Stat {
            path: "/m/a.mp4".into(),
            device: 1,
            inode: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let chmod = Stat {
            ctime_ns: 6,
            ..then.clone()
        };
        assert!(unchanged(&then, "registered", &chmod));
        assert!(!unchanged(&then, "rejected", &chmod));
        let grown = Stat {
            size: 9,
            ..then.clone()
        };
        assert!(!unchanged(&then, "registered", &grown));
    }
}
