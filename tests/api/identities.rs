//! The identity library in detailed health: folder, index and database compared as sets, and
//! `sync` reconciling them.

use std::path::{Path, PathBuf};

use reelbase::db::identities as rows;
use reelbase::db::users::Role;
use reelbase::identities::IdentityRecord;
use reelbase::identities::sync::{self, Direction, write_index};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app_with};

fn record(n: u32) -> IdentityRecord {
    IdentityRecord {
        id: format!("{n:032x}"),
        name: format!("Person {n}"),
        source: "manual".into(),
        status: "active".into(),
        tmdb_id: None,
    }
}

fn library_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::env::temp_dir().join(format!(
        "reelbase-identities-{}-{}",
        std::process::id(),
        nanos.as_nanos()
    ))
}

fn write_folder(dir: &Path, record: &IdentityRecord) {
    std::fs::create_dir_all(dir.join(&record.id)).unwrap();
    let text = serde_json::to_vec(record).unwrap();
    std::fs::write(dir.join(&record.id).join("identity.json"), text).unwrap();
}

/// An app whose identity library has `on_disk` folders (indexed) and `in_db` rows.
async fn library(on_disk: &[u32], in_db: &[u32]) -> (TestApp, String, PathBuf) {
    let dir = library_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let records: Vec<IdentityRecord> = on_disk.iter().map(|n| record(*n)).collect();
    for r in &records {
        write_folder(&dir, r);
    }
    write_index(&dir, records.iter()).unwrap();
    let app = spawn_app_with(|s| s.identities_dir = dir.clone()).await;
    for n in in_db {
        rows::upsert(&app.pool, &record(*n)).await.unwrap();
    }
    app.create_user("ops", "correct horse battery", Role::User)
        .await;
    let key = app.api_key("ops").await;
    (app, key, dir)
}

async fn identities(app: &TestApp, key: &str) -> Value {
    let request = app
        .client
        .get(app.url("/health/detailed"))
        .header("x-api-key", key);
    request.send().await.unwrap().json::<Value>().await.unwrap()["identities"].clone()
}

#[tokio::test]
async fn the_same_identities_on_disk_and_in_the_database_are_in_sync() {
    let (app, key, _) = library(&[1, 2, 3], &[1, 2, 3]).await;

    let report = identities(&app, &key).await;

    assert_eq!(report["directory_exists"], true);
    assert_eq!(report["files_count"], 3);
    assert_eq!(report["index_ok"], true);
    assert_eq!(report["db_count"], 3);
    assert_eq!(report["synced"], true);
}

#[tokio::test]
async fn an_identity_only_on_disk_or_only_in_the_database_breaks_sync() {
    let (disk_app, disk_key, _) = library(&[1, 2], &[1]).await;
    let (db_app, db_key, _) = library(&[1], &[1, 2]).await;

    let only_disk = identities(&disk_app, &disk_key).await;
    let only_db = identities(&db_app, &db_key).await;

    assert_eq!(
        (
            only_disk["synced"].clone(),
            only_disk["only_on_disk"].clone()
        ),
        (false.into(), 1.into())
    );
    assert_eq!(
        (only_db["synced"].clone(), only_db["only_in_db"].clone()),
        (false.into(), 1.into())
    );
}

#[tokio::test]
async fn the_same_count_with_different_ids_is_not_in_sync() {
    let (app, key, _) = library(&[1, 2], &[1, 3]).await;

    let report = identities(&app, &key).await;

    assert_eq!(
        (report["files_count"].clone(), report["db_count"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(report["synced"], false);
}

#[tokio::test]
async fn a_corrupt_or_incomplete_index_is_not_ok() {
    let (app, key, dir) = library(&[1, 2], &[1, 2]).await;

    std::fs::write(dir.join("_index.json"), "{ not json").unwrap();
    let corrupt = identities(&app, &key).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the shared report
    write_index(&dir, [record(1)].iter()).unwrap();
    let incomplete = identities(&app, &key).await;

    assert_eq!(corrupt["index_ok"], false);
    assert_eq!(incomplete["index_ok"], false);
    assert_eq!(incomplete["synced"], true, "the sets still agree");
}

#[tokio::test]
async fn a_missing_folder_is_reported() {
    let dir = library_dir();
    let app = spawn_app_with(|s| s.identities_dir = dir.clone()).await;
    app.create_user("ops", "correct horse battery", Role::User)
        .await;
    let key = app.api_key("ops").await;

    let report = identities(&app, &key).await;

    assert_eq!(report["directory_exists"], false);
    assert_eq!(report["files_count"], 0);
}

#[tokio::test]
async fn sync_from_disk_makes_the_database_match_the_folder() {
    let (app, _, dir) = library(&[1, 2], &[2, 3]).await;

    let summary = sync::sync(&dir, &app.pool, Direction::FromDisk)
        .await
        .unwrap();

    assert_eq!((summary.added, summary.removed), (1, 1));
    let ids = rows::ids(&app.pool).await.unwrap();
    assert_eq!(ids, vec![record(1).id, record(2).id]);
}

#[tokio::test]
async fn sync_from_the_database_makes_the_folder_match_and_sets_orphans_aside() {
    let (app, key, dir) = library(&[1, 2], &[2, 3]).await;

    let summary = sync::sync(&dir, &app.pool, Direction::FromDb)
        .await
        .unwrap();
    let report = identities(&app, &key).await;

    assert_eq!((summary.added, summary.removed), (1, 1));
    assert!(
        dir.join("_orphaned")
            .join(record(1).id)
            .join("identity.json")
            .is_file()
    );
    assert!(dir.join(record(3).id).join("identity.json").is_file());
    assert_eq!(report["synced"], true);
    assert_eq!(report["index_ok"], true);
}
