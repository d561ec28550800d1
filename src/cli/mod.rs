//! The command line: one file per command group.

mod analyze;
mod apikey;
mod config;
mod files;
mod health;
mod identities;
mod migrate;
mod scripts;
mod serve;
mod user;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::password::PasswordError;
use crate::config::{LoadNotes, Settings};
use crate::db::migrations::{self, MigrateError};
use crate::db::users::UserError;
use crate::db::{Database, DbError};

#[derive(Debug, Parser)]
#[command(
    name = "reelbase",
    version,
    about = "Self-hosted video asset intelligence server"
)]
pub struct Cli {
    /// TOML settings file (overrides `REELBASE_CONFIG`); environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the background health monitor.
    Serve,
    /// Run pipeline workers only (no HTTP), for more machines sharing one PostgreSQL.
    Worker {
        /// Steps run at once (default: REELBASE_WORKERS, at least 1).
        #[arg(long)]
        concurrency: Option<u32>,
    },
    /// Print the effective configuration, with every secret redacted.
    Config,
    /// Ask a running server for its detailed health; exit 0 ok, 1 degraded, 2 unreachable.
    Health(health::HealthArgs),
    /// Apply pending schema migrations (or, with --status, only show the schema state).
    Migrate {
        #[arg(long)]
        status: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCommand),
    /// Register a video, run every processor that can run here, print what was found.
    Analyze(analyze::AnalyzeArgs),
    /// Register files and list them.
    #[command(subcommand)]
    Files(files::FilesCommand),
    /// The identity library: compare or reconcile its folder and the database.
    #[command(subcommand)]
    Identities(identities::IdentitiesCommand),
    /// The processor scripts folder and its manifest.
    #[command(subcommand)]
    Scripts(scripts::ManifestCommand),
    /// The models folder and its manifest.
    #[command(subcommand)]
    Models(scripts::ManifestCommand),
}

/// Exit code for settings that cannot be used (sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Exit code for a service that cannot be reached (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code for a command used wrongly (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// Why a command other than `serve` failed. Messages are for the operator at the terminal;
/// none of them carries a password.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    BadUrl(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot read the password: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) | CliError::User(UserError::Exists(_)) => ExitCode::from(EXIT_USAGE),
            CliError::Database(_) | CliError::User(_) | CliError::Unreachable(_) => {
                ExitCode::from(EXIT_UNAVAILABLE)
            }
            _ => ExitCode::FAILURE,
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let (settings, notes) = match Settings::from_process_env(cli.config) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("reelbase: invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Serve => serve::run(settings, notes),
        Command::Worker { concurrency } => worker::run(settings, notes, concurrency),
        Command::Config => config::run(&settings, &notes),
        Command::Health(args) => block_on(async { Ok(health::run(&settings, args).await) }),
        Command::Migrate { status } => block_on(migrate::run(&settings, status)),
        Command::User(command) => block_on(user::run(&settings, command)),
        Command::Apikey(command) => block_on(apikey::run(&settings, command)),
        Command::Analyze(args) => block_on(analyze::run(&settings, args)),
        Command::Files(command) => block_on(files::run(&settings, command)),
        Command::Identities(command) => block_on(identities::run(&settings, command)),
        Command::Scripts(command) => report(scripts::run(&settings.scripts_dir, command)),
        Command::Models(command) => report(scripts::run(&settings.models_dir, command)),
    }
}

fn block_on(work: impl Future<Output = Result<ExitCode, CliError>>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    report(match runtime {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => Err(CliError::Io(error)),
    })
}

/// Prints a failed command's error and picks its exit code.
fn report(result: Result<ExitCode, CliError>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("reelbase: {error}");
        error.exit_code()
    })
}

/// How long a command waits for PostgreSQL before saying it cannot reach it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(settings: &Settings) -> Result<Database, CliError> {
    Ok(Database::connect_lazy_with_timeout(
        &settings.database_url,
        CONNECT_TIMEOUT,
    )?)
}

/// Connects and, unless auto-migration is off, brings the schema up to date first, so the
/// very first `reelbase user create` works on an empty database.
async fn connect_migrated(settings: &Settings) -> Result<Database, CliError> {
    let db = connect(settings)?;
    if settings.auto_migrate {
        migrations::migrate(db.connect_one().await?).await?;
    }
    Ok(db)
}

fn warn_unknown_env(notes: &LoadNotes) {
    for name in &notes.unknown_env {
        tracing::warn!(variable = %name, "unknown REELBASE_ variable ignored (a typo?)");
    }
}
