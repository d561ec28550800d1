//! The identity library on disk: `_index.json` listing every identity, and one folder per
//! identity, `<32 hex id>/identity.json` (plus an optional `profile.jpg`). The database holds
//! the same identities; `report` compares the two sets and `sync` reconciles them.

pub mod library;
pub mod matching;
pub mod sync;
pub mod tmdb_import;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

pub const INDEX_FILE: &str = "_index.json";
pub const IDENTITY_FILE: &str = "identity.json";

/// One identity as both places record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub id: String,
    pub name: String,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmdb_id: Option<i64>,
}

fn manual() -> String {
    "manual".to_owned()
}

fn active() -> String {
    "active".to_owned()
}

/// `_index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    pub identities: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: String,
    pub name: String,
}

/// The `identities` block of detailed health.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IdentitiesReport {
    pub directory_exists: bool,
    /// Identity folders holding an `identity.json`.
    pub files_count: usize,
    /// `_index.json` parses and lists exactly the identities on disk, each once.
    pub index_ok: bool,
    pub db_count: usize,
    /// The same set of ids on disk and in the database.
    pub synced: bool,
    pub only_on_disk: usize,
    pub only_in_db: usize,
}

pub fn is_identity_id(name: &str) -> bool {
    name.len() == 32
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Ids of the identity folders that hold an `identity.json`. One `stat` per folder: fast
/// enough for thousands of identities on every health call.
pub fn disk_ids(dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_identity_id(&name) && entry.path().join(IDENTITY_FILE).is_file() {
            ids.insert(name);
        }
    }
    Ok(ids)
}

/// Whether the index lists exactly `on_disk`, each id once.
fn index_matches(dir: &Path, on_disk: &BTreeSet<String>) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(INDEX_FILE)) else {
        // An empty library needs no index yet: the first change writes it.
        return on_disk.is_empty();
    };
    let Ok(index) = serde_json::from_str::<Index>(&text) else {
        return false;
    };
    let listed: BTreeSet<&str> = index.identities.iter().map(|e| e.id.as_str()).collect();
    listed.len() == index.identities.len()
        && listed.len() == on_disk.len()
        && on_disk.iter().all(|id| listed.contains(id.as_str()))
}

pub async fn report(dir: PathBuf, pool: &PgPool) -> Result<IdentitiesReport, sqlx::Error> {
    let scan = tokio::task::spawn_blocking(move || {
        if !dir.is_dir() {
            // No folder yet is an empty library, made on the first change.
            return (false, BTreeSet::new(), true);
        }
        let ids = disk_ids(&dir).unwrap_or_default();
        let index_ok = index_matches(&dir, &ids);
        (true, ids, index_ok)
    });
    let (scanned, in_db) = tokio::join!(scan, crate::db::identities::ids(pool));
    let (directory_exists, on_disk, index_ok) = scanned.unwrap_or((false, BTreeSet::new(), false));
    let in_db: BTreeSet<String> = in_db?.into_iter().collect();
    let only_on_disk = on_disk.difference(&in_db).count();
    let only_in_db = in_db.difference(&on_disk).count();
    Ok(IdentitiesReport {
        directory_exists,
        files_count: on_disk.len(),
        index_ok,
        db_count: in_db.len(),
        synced: only_on_disk == 0 && only_in_db == 0,
        only_on_disk,
        only_in_db,
    })
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
