//! `reelbase worker`: pipeline workers only, no HTTP, for more machines sharing one
//! PostgreSQL. Stops on SIGINT or SIGTERM, giving back the steps it holds.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::watch;

use crate::app::{pipeline_checker, tools, worker_config};
use crate::config::{LoadNotes, Settings};
use crate::db::Database;
use crate::db::migrations;
use crate::pipeline::worker;
use crate::{shutdown, telemetry};

pub fn run(settings: Settings, notes: LoadNotes, concurrency: Option<u32>) -> ExitCode {
    telemetry::init(&settings.log, settings.log_format);
    super::warn_unknown_env(&notes);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("reelbase: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let db = match Database::connect_lazy(&settings.database_url) {
            Ok(db) => db,
            Err(error) => {
                eprintln!("reelbase: {error}");
                return ExitCode::from(super::EXIT_CONFIG);
            }
        };
        if settings.auto_migrate {
            match db.connect_one().await {
                Ok(connection) => {
                    if let Err(error) = migrations::migrate(connection).await {
                        eprintln!("reelbase: {error}");
                        return ExitCode::FAILURE;
                    }
                }
                Err(error) => {
                    eprintln!("reelbase: PostgreSQL: {error}");
                    return ExitCode::from(super::EXIT_UNAVAILABLE);
                }
            }
        }
        let mut config = worker_config(&settings);
        if let Some(n) = concurrency {
            config.concurrency = n.max(1) as usize;
        }
        let (stop, stopped) = watch::channel(false);
        let task = worker::spawn(
            db.clone(),
            tools(&settings, &db.pool),
            Arc::new(pipeline_checker(&settings)),
            config,
            stopped,
        );
        shutdown::signal().await;
        tokio::spawn(shutdown::force_on_second_signal());
        let _ = stop.send(true);
        let _ = task.await;
        db.pool.close().await;
        ExitCode::SUCCESS
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
