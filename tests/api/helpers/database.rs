//! A fresh PostgreSQL database per test, so tests never see each other's rows.
//! Databases are named `reelbase_test_*`; `tools/test` drops leftovers before each run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

/// The server the tests use, reached through its local socket (peer or trust auth).
/// `REELBASE_TEST_PG_ADMIN_URL` overrides it.
fn admin_url() -> String {
    std::env::var("REELBASE_TEST_PG_ADMIN_URL").unwrap_or_else(|_| "postgres:///postgres".into())
}

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "reelbase_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect as admin");
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create test database");
        Self { name }
    }

    /// URL through the local socket, as the default configuration connects.
    pub fn socket_url(&self) -> String {
        let admin = url::Url::parse(&admin_url()).expect("admin URL");
        let mut url = admin.clone();
        url.set_path(&self.name);
        url.to_string()
    }
}
