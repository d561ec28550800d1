//! The process-level shutdown signal: SIGINT (Ctrl-C) or SIGTERM (service managers,
//! orchestrators), whichever comes first.

/// Resolves when the process is asked to stop.
pub async fn signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No SIGINT handler could be installed; rely on SIGTERM alone.
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "signal received"),
        () = terminate => tracing::info!(signal = "SIGTERM", "signal received"),
    }
}

/// After the first signal, a second one ends the process at once: an operator who asks twice
/// does not want to wait out the grace period for a stuck client.
pub async fn force_on_second_signal() {
    signal().await;
    tracing::warn!("second signal: exiting without waiting for open requests");
    std::process::exit(130);
}
