//! Which paths may be registered: regular files inside the configured media roots, reached
//! without `..` and without a symlink that leads out of the roots.
//!
//! A path is judged twice. First as written (absolute, no `..`, no NUL, under a root), so a
//! request for `/etc/shadow` is refused before the file system is touched and cannot tell
//! whether the file exists. Then resolved (every symlink followed), so a link inside a root
//! that points elsewhere is refused too.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::db::files::Stat;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the path is outside the media roots")]
    Outside,
    #[error("no such file")]
    NotFound,
    #[error("{0}")]
    NotAFile(&'static str),
    #[error("not a folder")]
    NotADirectory,
    #[error("reelbase may not read this path")]
    NotReadable,
}

/// The configured media roots, made absolute.
#[derive(Debug, Clone)]
pub struct MediaRoots {
    roots: Vec<PathBuf>,
}

/// A file that passed every check: its resolved path and its stat facts.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub path: PathBuf,
    pub stat: Stat,
}

impl MediaRoots {
    pub fn new(roots: &[PathBuf]) -> Self {
        let roots = roots
            .iter()
            .map(|root| std::path::absolute(root).unwrap_or_else(|_| root.clone()))
            .collect();
        Self { roots }
    }

    /// The roots as configured (absolute).
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The roots with their symlinks resolved; roots that do not exist are left out.
    fn resolved(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .filter_map(|root| root.canonicalize().ok())
            .collect()
    }

    /// Checks a path that must name a regular file under a root.
    pub fn check_file(&self, raw: &str) -> Result<CheckedFile, PathError> {
        let path = self.resolve(raw)?;
        let meta = std::fs::metadata(&path).map_err(io_error)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(PathError::NotAFile(
                "this is a folder; to register the files in it, give `pattern` too",
            ));
        }
        if kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device() {
            return Err(PathError::NotAFile(
                "not a regular file (a device, pipe or socket)",
            ));
        }
        // Say "not readable" now, rather than let ffprobe fail and call it "not media".
        std::fs::File::open(&path).map_err(io_error)?;
        let stat = stat_of(&path, &meta);
        Ok(CheckedFile { path, stat })
    }

    /// Checks a path that must name a folder under a root (or a root itself).
    pub fn check_dir(&self, raw: &str) -> Result<PathBuf, PathError> {
        let path = self.resolve(raw)?;
        let meta = std::fs::metadata(&path).map_err(io_error)?;
        if !meta.is_dir() {
            return Err(PathError::NotADirectory);
        }
        Ok(path)
    }

    fn resolve(&self, raw: &str) -> Result<PathBuf, PathError> {
        if raw.is_empty() {
            return Err(PathError::Invalid("the path is empty"));
        }
        if raw.contains('\0') {
            return Err(PathError::Invalid("the path contains a NUL character"));
        }
        // The kernel's own limits, checked before any work that grows with the path's length.
        if raw.len() > MAX_PATH {
            return Err(PathError::Invalid("the path is longer than 4096 bytes"));
        }
        if raw.split('/').any(|part| part.len() > MAX_NAME) {
            return Err(PathError::Invalid(
                "a name in the path is longer than 255 bytes",
            ));
        }
        let written = Path::new(raw);
        if !written.is_absolute() {
            return Err(PathError::Invalid("give an absolute path"));
        }
        if written.components().any(|c| c == Component::ParentDir) {
            return Err(PathError::Invalid("`..` is not allowed in a path"));
        }
        let resolved_roots = self.resolved();
        let under_a_root = self
            .roots
            .iter()
            .chain(&resolved_roots)
            .any(|root| written.starts_with(root));
        if !under_a_root {
            return Err(PathError::Outside);
        }
        match written.canonicalize() {
            Ok(path) if resolved_roots.iter().any(|root| path.starts_with(root)) => Ok(path),
            Ok(_) => Err(PathError::Outside),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                // Say "not found" only when the missing part lies inside a root: a dangling
                // link that points out must not reveal what exists out there.
                let inside = missing_lies_inside(written, &resolved_roots, MAX_LINKS);
                Err(if inside {
                    PathError::NotFound
                } else {
                    PathError::Outside
                })
            }
            Err(error) => Err(io_error(error)),
        }
    }
}

/// Longest path and longest name in it that Linux takes (PATH_MAX, NAME_MAX).
const MAX_PATH: usize = 4096;
const MAX_NAME: usize = 255;

/// Symlinks followed when judging where a missing path would lie (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Whether a path that does not resolve would lie inside a root: its deepest existing folder
/// must, and a dangling symlink is judged by where it points, so that a link to a missing file
/// outside the roots is refused like a link to an existing one.
fn missing_lies_inside(path: &Path, roots: &[PathBuf], links_left: usize) -> bool {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_symlink());
    if is_link {
        let Ok(target) = std::fs::read_link(path) else {
            return false;
        };
        let target = match path.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
        return links_left > 0 && missing_lies_inside(&target, roots, links_left - 1);
    }
    path.ancestors()
        .skip(1)
        .find_map(|dir| dir.canonicalize().ok())
        .is_some_and(|dir| roots.iter().any(|root| dir.starts_with(root)))
}

pub(crate) fn io_error(error: std::io::Error) -> PathError {
    match error.raw_os_error() {
        Some(libc::ELOOP) => return PathError::Invalid("the path has a loop of symlinks"),
        Some(libc::ENAMETOOLONG) => {
            return PathError::Invalid("the path or a name in it is too long");
        }
        _ => {}
    }
    match error.kind() {
        ErrorKind::NotFound => PathError::NotFound,
        ErrorKind::PermissionDenied => PathError::NotReadable,
        ErrorKind::NotADirectory => PathError::NotFound,
        _ => PathError::NotReadable,
    }
}

/// The stat facts of a file, as stored with its record.
pub fn stat_of(path: &Path, meta: &std::fs::Metadata) -> Stat {
    Stat {
        path: path.to_string_lossy().into_owned(),
        device: meta.dev() as i64,
        inode: meta.ino() as i64,
        size: meta.len() as i64,
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
    }
}

/// Folders the watcher and batches skip: hidden ones (`.git`, SFTPGo's temporary folders).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Names that uploads in progress use: hidden files (SFTPGo's atomic uploads, rsync) and the
/// suffixes of SFTP clients and browsers. Such a file is ignored until it is renamed.
pub fn is_temporary(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".part",
        ".filepart",
        ".partial",
        ".tmp",
        ".temp",
        ".crdownload",
        ".download",
        ".upload",
        ".swp",
    ];
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || name.ends_with('~') || SUFFIXES.iter().any(|s| lower.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        for name in [
            ".hidden.mp4",
            "clip.mp4.part",
            "clip.MP4.FILEPART",
            "a.tmp",
            "b~",
        ] {
            assert!(is_temporary(name), "{name}");
        }
        for name in ["clip.mp4", "part.mov", "tmp.mkv", "x.partition.mp4"] {
            assert!(!is_temporary(name), "{name}");
        }
    }

    #[test]
    fn written_paths_are_judged_before_the_file_system() {
        let roots = MediaRoots::new(&[PathBuf::from("/nonexistent-root-for-test")]);
        let cases = [
            ("", PathError::Invalid("the path is empty")),
            (
                "relative/clip.mp4",
                PathError::Invalid("give an absolute path"),
            ),
            (
                "/nonexistent-root-for-test/../etc/passwd",
                PathError::Invalid("`..` is not allowed in a path"),
            ),
            ("/etc/passwd", PathError::Outside),
            ("/nonexistent-root-for-test/x/y/z/a.mp4", PathError::Outside),
            (
                "/nonexistent-root-for-test/a\0b",
                PathError::Invalid("the path contains a NUL character"),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(roots.check_file(raw).unwrap_err(), expected, "{raw:?}");
        }
        // Over-long paths are refused at once, whatever they hold.
        let deep = format!("/nonexistent-root-for-test/{}", "a/".repeat(1_000_000));
        let started = std::time::Instant::now();
        assert!(matches!(
            roots.check_file(&deep),
            Err(PathError::Invalid(_))
        ));
        let long_name = format!("/nonexistent-root-for-test/{}.mp4", "n".repeat(300));
        assert!(matches!(
            roots.check_file(&long_name),
            Err(PathError::Invalid(_))
        ));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
}
