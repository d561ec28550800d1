//! Importing a film's or series' cast from TMDb into the identity library: one identity per
//! cast member with a profile photo showing a face (`source: tmdb`, with `tmdb_id`), and
//! none twice: a person already imported (by `tmdb_id`) is reported, not made again.

use serde::Serialize;
use sqlx::PgPool;

use super::library::{IdentityView, Library, LibraryError, NewIdentity, id_by_tmdb};
use crate::integrations::tmdb_people::{TmdbError, TmdbPeople};

/// Cast members looked at by default, and at most.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub tmdb_id: i64,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub kind: String,
    pub tmdb_id: i64,
    pub title: String,
    pub created: Vec<IdentityView>,
    /// Identity ids of cast members imported before.
    pub existing: Vec<String>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Tmdb(#[from] TmdbError),
    #[error(transparent)]
    Library(#[from] LibraryError),
}

/// What to import: a title to search for, or a TMDb id.
pub enum Title {
    Named(String),
    Id(i64),
}

pub async fn import(
    tmdb: &TmdbPeople,
    library: &Library,
    pool: &PgPool,
    kind: &str,
    title: Title,
    limit: usize,
) -> Result<ImportReport, ImportError> {
    let (id, name) = match title {
        Title::Named(text) => tmdb.find(kind, &text).await?,
        Title::Id(id) => (id, format!("{kind} {id}")),
    };
    let cast = tmdb.cast(kind, id).await?;
    let mut report = ImportReport {
        kind: kind.to_owned(),
        tmdb_id: id,
        title: name,
        created: Vec::new(),
        existing: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    // A person listed twice (two roles) is looked at once.
    for person in cast
        .into_iter()
        .filter(|p| seen.insert(p.tmdb_id))
        .take(limit)
    {
        let skip = |reason: &str| Skipped {
            tmdb_id: person.tmdb_id,
            name: person.name.clone(),
            reason: reason.to_owned(),
        };
        if let Some(existing) = id_by_tmdb(pool, person.tmdb_id)
            .await
            .map_err(LibraryError::from)?
        {
            report.existing.push(existing);
            continue;
        }
        let Some(path) = person.profile_path.as_deref() else {
            report.skipped.push(skip("no profile photo on TMDb"));
            continue;
        };
        let photo = match tmdb.photo(path).await {
            Ok(photo) => photo,
            Err(error @ (TmdbError::RateLimited(_) | TmdbError::Unreachable(_))) => {
                return Err(error.into());
            }
            Err(error) => {
                report.skipped.push(skip(&error.to_string()));
                continue;
            }
        };
        let new = NewIdentity {
            name: person.name.clone(),
            source: "tmdb".to_owned(),
            tmdb_id: Some(person.tmdb_id),
            photos: vec![photo],
        };
        match library.create(pool, new).await {
            Ok(created) => report.created.push(created),
            Err(LibraryError::NoFace(_)) => report.skipped.push(skip("no face in the photo")),
            Err(LibraryError::InvalidPhoto(reason)) => report.skipped.push(skip(&reason)),
            Err(LibraryError::Conflict(_)) => {
                if let Some(existing) = id_by_tmdb(pool, person.tmdb_id)
                    .await
                    .map_err(LibraryError::from)?
                {
                    report.existing.push(existing);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(report)
}
