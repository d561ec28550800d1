//! Schema migrations: applied once each, in order, safely in parallel, and a changed one is
//! reported rather than accepted.

use reelbase::db::migrations::{self, MigrateError};
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{TestDb, spawn_app_with};

async fn fresh() -> (TestDb, PgPool) {
    let db = TestDb::create().await;
    let pool = PgPool::connect(&db.socket_url()).await.unwrap();
    (db, pool)
}

async fn connection(db: &TestDb) -> PgConnection {
    PgConnection::connect(&db.socket_url()).await.unwrap()
}

fn shipped_names() -> Vec<String> {
    migrations::shipped()
        .map(|m| m.filename.to_owned())
        .collect()
}

#[tokio::test]
async fn a_fresh_database_needs_every_shipped_migration_and_migrate_applies_them_in_order() {
    let (db, pool) = fresh().await;

    let before = migrations::status(&pool).await.unwrap();
    let applied = migrations::migrate(connection(&db).await).await.unwrap();
    let after = migrations::status(&pool).await.unwrap();

    assert!(!before.table_exists && !before.ok);
    let required: Vec<String> = before.required.iter().map(|m| m.filename.clone()).collect();
    assert_eq!(required, shipped_names());
    assert_eq!(applied, shipped_names());
    assert!(after.table_exists && after.ok && after.required.is_empty());
    let done: Vec<String> = after.applied.iter().map(|m| m.filename.clone()).collect();
    assert_eq!(done, shipped_names());
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "the schema exists and holds no default accounts");
}

#[tokio::test]
async fn two_concurrent_migrations_apply_each_file_exactly_once() {
    let (db, pool) = fresh().await;

    let (a, b) = tokio::join!(
        migrations::migrate(connection(&db).await),
        migrations::migrate(connection(&db).await)
    );

    let (a, b) = (
        a.expect("first run succeeds"),
        b.expect("second run succeeds"),
    );
    assert_eq!(a.len() + b.len(), shipped_names().len(), "{a:?} + {b:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM schema_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows as usize, shipped_names().len());
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_reported_and_blocks_migrate() {
    let (db, pool) = fresh().await;
    migrations::migrate(connection(&db).await).await.unwrap();
    let first = shipped_names()[0].clone();

    sqlx::query("UPDATE schema_migrations SET checksum = 'something else' WHERE filename = $1")
        .bind(&first)
        .execute(&pool)
        .await
        .unwrap();
    let status = migrations::status(&pool).await.unwrap();
    let again = migrations::migrate(connection(&db).await).await;

    assert!(!status.ok);
    assert_eq!(
        status
            .altered
            .iter()
            .map(|m| &m.filename)
            .collect::<Vec<_>>(),
        [&first]
    );
    assert!(matches!(again, Err(MigrateError::Altered(ref names)) if names == &[first]));
}

#[tokio::test]
async fn a_migration_unknown_to_this_binary_makes_the_schema_not_ok() {
    let (db, pool) = fresh().await;
    migrations::migrate(connection(&db).await).await.unwrap();

    sqlx::query(
        "INSERT INTO schema_migrations (filename, checksum) VALUES ('9999_future.sql', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let status = migrations::status(&pool).await.unwrap();

    assert!(!status.ok);
    assert_eq!(status.unknown[0].filename, "9999_future.sql");
}

#[tokio::test]
async fn readiness_waits_for_the_schema_and_follows_it() {
    let app = spawn_app_with(|s| s.auto_migrate = false).await;
    let (status, _) = app.get_json("/health/ready").await;
    let (_, public) = app.get_json("/health").await;
    assert_eq!(status, 503, "not ready before migrating");
    assert_eq!(
        public["status"], "ok",
        "services are fine; only readiness waits"
    );

    let db_url = format!("postgres:///{}", current_database(&app.pool).await);
    migrations::migrate(PgConnection::connect(&db_url).await.unwrap())
        .await
        .unwrap();
    app.fresh_snapshot().await;

    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

async fn current_database(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap()
}
