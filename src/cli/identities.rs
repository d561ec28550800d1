//! `reelbase identities status|sync --from disk|db|add NAME PHOTO...`: compare or reconcile the
//! identity folder and the database, or add a person from photos.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{CliError, connect_migrated};
use crate::config::Settings;
use crate::identities::library::{Library, NewIdentity};
use crate::identities::{self, sync};

#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Compare the identity folder with the database.
    Status,
    /// Make one side match the other, and say what changed.
    Sync {
        /// Which side is right.
        #[arg(long, value_enum)]
        from: Side,
    },
    /// Add a person from one or more photos (JPEG or PNG), each showing their face.
    Add {
        name: String,
        #[arg(required = true)]
        photos: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Side {
    Disk,
    Db,
}

pub async fn run(settings: &Settings, command: IdentitiesCommand) -> Result<ExitCode, CliError> {
    let db = connect_migrated(settings).await?;
    let dir = &settings.identities_dir;
    if let IdentitiesCommand::Add { name, photos } = command {
        let photos = photos
            .iter()
            .map(|p| read_photo(p).map_err(|e| CliError::Usage(format!("{}: {e}", p.display()))))
            .collect::<Result<Vec<_>, _>>()?;
        let library = Library::new(dir.clone(), crate::app::tools(settings, &db.pool));
        let new = NewIdentity {
            name,
            source: "manual".to_owned(),
            tmdb_id: None,
            photos,
        };
        let created = library
            .create(&db.pool, new)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        println!("{}", serde_json::to_string(&created).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if let IdentitiesCommand::Sync { from } = command {
        let direction = match from {
            Side::Disk => sync::Direction::FromDisk,
            Side::Db => sync::Direction::FromDb,
        };
        let summary = sync::sync(dir, &db.pool, direction)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let target = if matches!(from, Side::Disk) {
            "database"
        } else {
            "folder"
        };
        println!(
            "{target}: {} added, {} updated, {} removed; {} face vectors restored",
            summary.added, summary.updated, summary.removed, summary.faces_restored
        );
        for id in &summary.unreadable {
            println!("unreadable identity.json, left alone: {id}");
        }
        let store = crate::app::tools(settings, &db.pool).vectors;
        let indexed = crate::identities::matching::reindex(&db.pool, &store)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if indexed > 0 {
            println!(
                "{indexed} face vectors written to the vector store ({})",
                store.backend()
            );
        }
        let renamed = crate::identities::matching::rematch_tracks(&db.pool, &store)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if renamed > 0 {
            println!("{renamed} face tracks matched anew");
        }
    }
    let report = identities::report(dir.clone(), &db.pool).await?;
    println!(
        "folder {}: {} identities (index {}); database: {}; {}",
        dir.display(),
        report.files_count,
        if report.index_ok { "ok" } else { "NOT OK" },
        report.db_count,
        if report.synced {
            "in sync".to_owned()
        } else {
            format!(
                "NOT in sync ({} only on disk, {} only in the database)",
                report.only_on_disk, report.only_in_db
            )
        }
    );
    Ok(if report.synced && report.index_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A photo file, refused unless it is a regular file within the library's size limit (a
/// device such as /dev/zero would be read without end).
fn read_photo(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() > crate::identities::library::MAX_PHOTO_BYTES as u64 {
        return Err(std::io::Error::other(format!(
            "not a regular file of at most {} MiB",
            crate::identities::library::MAX_PHOTO_BYTES / 1024 / 1024
        )));
    }
    std::fs::read(path)
}
