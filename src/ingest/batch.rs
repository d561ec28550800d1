//! Registering the files of a folder whose names match a pattern.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::paths::{MediaRoots, PathError, is_hidden, is_temporary};

/// Most files one request may register: beyond this, the caller should narrow the pattern
/// (or leave the folder to the watcher).
pub const MAX_BATCH: usize = 1000;

/// Deepest folder level a recursive batch descends to.
const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("more than {MAX_BATCH} files match; narrow the pattern or register sub-folders")]
    TooMany,
    #[error("cannot list the folder: {0}")]
    List(std::io::Error),
}

/// The files under `dir` (a folder under a media root) whose names match `pattern`, sorted.
/// Temporary and hidden names are left out, as the watcher leaves them; symlinked folders are
/// not followed (a symlinked file is listed, and judged like any other path when registered).
pub fn matching_files(
    roots: &MediaRoots,
    dir: &str,
    pattern: &Regex,
    recursive: bool,
) -> Result<Vec<PathBuf>, BatchError> {
    let dir = roots.check_dir(dir)?;
    let mut found = Vec::new();
    walk(
        &dir,
        pattern,
        if recursive { MAX_DEPTH } else { 0 },
        &mut found,
    )?;
    if found.len() > MAX_BATCH {
        return Err(BatchError::TooMany);
    }
    found.sort();
    Ok(found)
}

fn walk(
    dir: &Path,
    pattern: &Regex,
    depth: usize,
    found: &mut Vec<PathBuf>,
) -> Result<(), BatchError> {
    for entry in std::fs::read_dir(dir).map_err(BatchError::List)? {
        let entry = entry.map_err(BatchError::List)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 && !is_hidden(&name) {
                walk(&entry.path(), pattern, depth - 1, found)?;
            }
        } else if !is_temporary(&name) && pattern.is_match(&name) {
            found.push(entry.path());
            // Stop early: a folder of millions must not be listed whole to be refused.
            if found.len() > MAX_BATCH {
                return Ok(());
            }
        }
    }
    Ok(())
}
