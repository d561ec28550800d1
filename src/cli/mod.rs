//! The command line: one file per command group.

mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{LoadNotes, Settings};

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
    /// Print the effective configuration, with every secret redacted.
    Config,
}

/// Exit code for settings that cannot be used (sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

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
        Command::Config => config::run(&settings, &notes),
    }
}

fn warn_unknown_env(notes: &LoadNotes) {
    for name in &notes.unknown_env {
        tracing::warn!(variable = %name, "unknown REELBASE_ variable ignored (a typo?)");
    }
}
