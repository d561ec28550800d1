//! Start-up work on storage: schema migrations and Qdrant's collections. Each is tried once
//! before the server starts; one whose service cannot be reached yet is retried in the
//! background every health interval, so a server started while PostgreSQL or Qdrant was
//! down becomes ready when they come back, without a restart.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::db::{Database, migrations};
use crate::integrations::qdrant::Qdrant;

/// How long a start-up migration may wait for a PostgreSQL connection.
const MIGRATE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Done, or failed in a way retrying will not fix (logged; health reports it).
    Settled,
    /// The service could not be reached; try again later.
    RetryLater,
}

/// Runs the storage steps; returns the background tasks retrying the unfinished ones.
pub async fn prepare_storage(
    settings: &Settings,
    db: &Database,
    qdrant: Option<Arc<Qdrant>>,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let mut retries = Vec::new();
    let interval = settings.health_interval;
    if settings.auto_migrate && migrate_once(db).await == Attempt::RetryLater {
        let db = db.clone();
        let retry = retry_until_settled(interval, stop.subscribe(), move || {
            let db = db.clone();
            async move { migrate_once(&db).await }
        });
        retries.push(tokio::spawn(retry));
    }
    if let Some(qdrant) = qdrant
        && ensure_collections_once(&qdrant).await == Attempt::RetryLater
    {
        let retry = retry_until_settled(interval, stop.subscribe(), move || {
            let qdrant = qdrant.clone();
            async move { ensure_collections_once(&qdrant).await }
        });
        retries.push(tokio::spawn(retry));
    }
    retries
}

pub async fn migrate_once(db: &Database) -> Attempt {
    let connection = tokio::time::timeout(MIGRATE_CONNECT_TIMEOUT, db.connect_one()).await;
    let Ok(Ok(connection)) = connection else {
        tracing::warn!("cannot reach PostgreSQL to apply migrations; will retry");
        return Attempt::RetryLater;
    };
    match migrations::migrate(connection).await {
        Ok(applied) => {
            tracing::info!(applied = applied.len(), "schema is current");
            Attempt::Settled
        }
        Err(migrations::MigrateError::Database(error)) => {
            tracing::warn!(error = %error, "migration interrupted; will retry");
            Attempt::RetryLater
        }
        Err(error) => {
            tracing::error!(error = %error, "migrations cannot be applied");
            Attempt::Settled
        }
    }
}

async fn ensure_collections_once(qdrant: &Qdrant) -> Attempt {
    match qdrant.ensure_collections().await {
        Ok(created) => {
            for name in created {
                tracing::info!(collection = name, "Qdrant collection created");
            }
            Attempt::Settled
        }
        Err(fault) => {
            tracing::warn!(
                error = fault.as_str(),
                "cannot prepare Qdrant collections; will retry"
            );
            Attempt::RetryLater
        }
    }
}

/// Calls `attempt` every `interval` until it settles or `stop` flips to true.
async fn retry_until_settled<F, Fut>(
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    attempt: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Attempt>,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if attempt().await == Attempt::Settled {
            return;
        }
    }
}
