//! `reelbase serve`: logging, runtime, and the application until SIGINT or SIGTERM.

use std::process::ExitCode;

use crate::app::Application;
use crate::config::{LoadNotes, Settings};
use crate::{build_info, shutdown, telemetry};

pub fn run(settings: Settings, notes: LoadNotes) -> ExitCode {
    telemetry::init(&settings.log, settings.log_format);
    super::warn_unknown_env(&notes);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        tracing::info!(
            version = build_info::VERSION,
            git = build_info::GIT_HASH,
            built = build_info::BUILD_TIMESTAMP,
            "reelbase starting"
        );
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(error = %error, "startup failed");
                // Also on stderr: the log filter may hide errors, and a failed start must
                // never be silent.
                eprintln!("reelbase: startup failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        let first_signal = async {
            shutdown::signal().await;
            tokio::spawn(shutdown::force_on_second_signal());
        };
        match app.run_until(first_signal).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %error, "server failed");
                eprintln!("reelbase: server failed: {error}");
                ExitCode::FAILURE
            }
        }
    });
    // A blocking check stuck on a hung file system must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
