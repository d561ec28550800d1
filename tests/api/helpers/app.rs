//! Starting the real application for a test, on 127.0.0.1:0, with its own database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reelbase::app::{Application, StartupError};
use reelbase::config::Settings;
use reelbase::db::users::{self, Role};
use reelbase::health::{HealthMonitor, Snapshot};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestDb;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The test's own database, for arranging rows the API has no route for.
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub health: HealthMonitor,
    /// The settings the app was built with.
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
}

/// Settings for a test: fast health rounds, the shared Redis, the test's own database.
/// They go through the same loader as the binary's, as environment variables.
pub fn test_settings(db: &TestDb) -> Settings {
    let redis = std::env::var("REELBASE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let data_dir = std::env::temp_dir().join(format!("reelbase-{}", db.name));
    let env: Vec<(String, String)> = [
        ("REELBASE_BIND", "127.0.0.1:0".to_owned()),
        ("REELBASE_DATABASE_URL", db.socket_url()),
        ("REELBASE_REDIS_URL", redis),
        ("REELBASE_DATA_DIR", data_dir.display().to_string()),
        ("REELBASE_HEALTH_INTERVAL_MS", "200".to_owned()),
        ("REELBASE_HEALTH_TIMEOUT_MS", "500".to_owned()),
        ("REELBASE_HEALTH_SLOW_MS", "500".to_owned()),
        // Rate-limit counters of parallel tests must not meet in the shared Redis.
        ("REELBASE_REDIS_PREFIX", format!("{}:", db.name)),
        // No pipeline worker and no watcher unless a test asks for them.
        ("REELBASE_WORKERS", "0".to_owned()),
        ("REELBASE_WATCH_ENABLED", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Settings::load(None, &env)
        .expect("test settings are valid")
        .0
}

/// An app with one user of `role` (named `ops`) and an API key for it.
pub async fn spawn_app_with_key(
    role: Role,
    customize: impl FnOnce(&mut Settings),
) -> (TestApp, String) {
    let app = spawn_app_with(customize).await;
    app.create_user("ops", "correct horse battery", role).await;
    let key = app.api_key("ops").await;
    (app, key)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after `customize` has adjusted the test settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::create().await;
    let mut settings = test_settings(&db);
    customize(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let addr = app.local_addr();
    let health = app.health();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let pool = PgPool::connect(&db.socket_url())
        .await
        .expect("connect to the test database");
    TestApp {
        addr,
        pool,
        client: reqwest::Client::new(),
        health,
        settings,
        shutdown: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the app")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Creates a user directly in the database (as `reelbase user create` does).
    pub async fn create_user(&self, name: &str, password: &str, role: Role) {
        let hash = reelbase::auth::password::hash(password.to_owned())
            .await
            .unwrap();
        users::create(&self.pool, name, &hash, role)
            .await
            .expect("create user");
    }

    /// Logs in; returns the JWT and the session cookie value.
    pub async fn login(&self, name: &str, password: &str) -> (String, String) {
        let response = self.post_login(name, password).await;
        assert_eq!(response.status(), 200, "login as {name}");
        let cookie = session_cookie(&response).expect("a session cookie");
        let body: serde_json::Value = response.json().await.unwrap();
        (body["jwt"].as_str().unwrap().to_owned(), cookie)
    }

    pub async fn post_login(&self, name: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": name, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// A fresh API key for `name`, made as the CLI makes one.
    pub async fn api_key(&self, name: &str) -> String {
        reelbase::auth::create_api_key(&self.pool, name, "test", 90)
            .await
            .unwrap()
            .key
    }

    /// A snapshot from a round that started after this call: one full interval later at most.
    pub async fn fresh_snapshot(&self) -> Arc<Snapshot> {
        let mut health = self.health.clone();
        let current = health.latest().round;
        // Round `current + 1` may already be running with stale inputs; wait for the next.
        tokio::time::timeout(Duration::from_secs(15), health.changed_after(current + 1))
            .await
            .expect("the health monitor keeps publishing rounds")
    }

    /// The first snapshot from a round started after this call for which `wanted` holds,
    /// for states that take more than one round to reach (migrations retried in the
    /// background). Gives up after 15 s.
    pub async fn snapshot_where(&self, wanted: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
        let waiting = async {
            loop {
                let snapshot = self.fresh_snapshot().await;
                if wanted(&snapshot) {
                    return snapshot;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), waiting)
            .await
            .expect("the awaited health state arrives")
    }

    /// Stops the server the way a signal would and returns how it ended.
    pub async fn shutdown(mut self) -> Result<(), StartupError> {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        let server = self.server.take().expect("server task");
        server.await.expect("server task does not panic")
    }
}

/// The value of the `session_id` cookie a response sets.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("session_id="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}
