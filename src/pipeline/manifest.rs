//! Manifests in `sha256sum` format (`<64 hex>  <relative path>`), for the scripts and models
//! folders: writing one, and checking a folder against it.
//!
//! Checking hashes every listed file, which for model files means hundreds of megabytes, so
//! hashes are cached by path, size and modification time: a health call re-hashes only files
//! that changed since the last call.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::db::migrations::hex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub sha256: String,
    /// Relative to the manifest's folder, with `/` separators.
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("line {line}: expected `<64 hex digits>  <relative path>`")]
    Line { line: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Parses `sha256sum` output; both its text (`  `) and binary (` *`) markers are accepted.
/// Paths that climb out of the folder (`..`, absolute) are refused.
pub fn parse(text: &str) -> Result<Vec<Entry>, ManifestError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || ManifestError::Line { line: index + 1 };
        let (hash, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        let valid_hash = hash.bytes().all(|b| b.is_ascii_hexdigit());
        let inside = Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !valid_hash || path.is_empty() || !inside {
            return Err(bad());
        }
        entries.push(Entry {
            sha256: hash.to_ascii_lowercase(),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

pub fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.path))
        .collect()
}

/// SHA-256 of files, remembered by path, size and modification time.
#[derive(Debug, Default)]
pub struct HashCache {
    known: Mutex<HashMap<PathBuf, (FileKey, String)>>,
}

impl HashCache {
    pub fn sha256(&self, path: &Path) -> io::Result<String> {
        let meta = std::fs::metadata(path)?;
        // Only regular files: opening a FIFO or a device would block or never end.
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let key = FileKey::of(&meta)?;
        if let Some((_, hash)) = self.lock().get(path).filter(|(known, _)| *known == key) {
            return Ok(hash.clone());
        }
        let hash = sha256_file(path)?;
        self.lock().insert(path.to_owned(), (key, hash.clone()));
        Ok(hash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (FileKey, String)>> {
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// What must be unchanged for a cached hash to be reused: size and modification time, and
/// also the inode and its change time, which `touch -r` cannot set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    size: u64,
    modified: SystemTime,
    inode: u64,
    changed: (i64, i64),
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        Ok(Self {
            size: meta.len(),
            modified: meta.modified()?,
            inode: meta.ino(),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// Streams the file through SHA-256 (model files can be large).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let never = std::sync::atomic::AtomicBool::new(false);
    Ok(hex(&crate::digest::sha256(File::open(path)?, &never)?))
}

/// How a folder compares with its manifest.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Integrity {
    /// Entries whose file exists with the listed hash.
    pub matched: usize,
    /// Entries in the manifest.
    pub total: usize,
    /// A manifest exists and every entry in it matched (files it does not list are reported
    /// in `unlisted`, not here).
    pub ok: bool,
    /// Listed, present, but with another hash.
    pub mismatched: Vec<String>,
    /// Listed, but not on disk.
    pub missing: Vec<String>,
    /// On disk (among the files the manifest covers), but not listed.
    pub unlisted: Vec<String>,
    /// Why the manifest could not be read, when it could not (`ok` is then false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Compares `dir` with `dir/manifest_name`. `covered` lists the files the manifest is meant to
/// cover (relative paths), to report the ones it does not list. A missing manifest is
/// `ok: false` with `total: 0`.
pub fn check(
    dir: &Path,
    manifest_name: &str,
    covered: &[String],
    cache: &HashCache,
) -> Result<Integrity, ManifestError> {
    let text = match std::fs::read_to_string(dir.join(manifest_name)) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Integrity {
                unlisted: covered.to_vec(),
                ..Integrity::default()
            });
        }
        Err(error) => return Err(error.into()),
    };
    let entries = parse(&text)?;
    let mut integrity = Integrity {
        total: entries.len(),
        ..Integrity::default()
    };
    for entry in &entries {
        match cache.sha256(&dir.join(&entry.path)) {
            Ok(hash) if hash == entry.sha256 => integrity.matched += 1,
            Ok(_) => integrity.mismatched.push(entry.path.clone()),
            Err(_) => integrity.missing.push(entry.path.clone()),
        }
    }
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    integrity.unlisted = covered
        .iter()
        .filter(|path| !listed.contains(path.as_str()))
        .cloned()
        .collect();
    integrity.ok = integrity.matched == integrity.total;
    Ok(integrity)
}

/// Files under `dir` (recursively, sorted, relative with `/`) that `keep` accepts. Hidden
/// entries, symbolic links and Python's byte-code caches (`__pycache__`, written when a script
/// is run by hand) are skipped: none belongs in a shipped folder.
pub fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    walk(dir, dir, keep, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(
    root: &Path,
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    found: &mut Vec<String>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "__pycache__" {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, keep, found)?;
        } else if kind.is_file() && keep(&path) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            found.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Writes `dir/manifest_name` listing every file `keep` accepts; returns the entry count.
pub fn write(
    dir: &Path,
    manifest_name: &str,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<usize, ManifestError> {
    let mut entries = Vec::new();
    for path in files(dir, keep)? {
        entries.push(Entry {
            sha256: sha256_file(&dir.join(&path))?,
            path,
        });
    }
    let target = dir.join(manifest_name);
    let temporary = dir.join(format!(".{manifest_name}.tmp"));
    std::fs::write(&temporary, render(&entries))?;
    std::fs::rename(&temporary, &target)?;
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_sha256sum_text_and_binary_lines() {
        let text = format!("{HASH}  asr.py\n\n# comment\n{HASH} *sub/face.py\n");
        let entries = parse(&text).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["asr.py", "sub/face.py"]
        );
    }

    #[test]
    fn refuses_bad_hashes_and_paths_that_leave_the_folder() {
        for line in [
            "abc  x.py".to_owned(),
            format!("{HASH} x.py"),
            format!("{HASH}  ../x.py"),
            format!("{HASH}  /etc/passwd"),
            format!("{}  x.py", "g".repeat(64)),
        ] {
            assert!(
                matches!(parse(&line), Err(ManifestError::Line { line: 1 })),
                "{line}"
            );
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let entries = vec![Entry {
            sha256: HASH.into(),
            path: "a/b.py".into(),
        }];
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
    }

    #[test]
    fn byte_code_caches_and_hidden_files_are_not_listed() {
        let dir = std::env::temp_dir().join(format!("reelbase-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("__pycache__")).unwrap();
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        for file in [
            "asr.py",
            "nested/x.py",
            "__pycache__/asr.cpython-311.pyc",
            ".hidden",
        ] {
            std::fs::write(dir.join(file), b"x").unwrap();
        }
        let listed = files(&dir, &|_| true).unwrap();
        assert_eq!(listed, ["asr.py", "nested/x.py"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
