//! `reelbase apikey …`: create (the key is printed once), list, revoke.

use std::process::ExitCode;

use clap::Subcommand;

use super::{CliError, connect_migrated};
use crate::auth::{API_KEY_DEFAULT_DAYS, create_api_key};
use crate::config::Settings;
use crate::db::api_keys;

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for a user and print it once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long, default_value_t = API_KEY_DEFAULT_DAYS)]
        expires_days: i64,
    },
    /// List keys (never the keys themselves), optionally of one user.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by its id.
    Revoke { id: i64 },
}

pub async fn run(settings: &Settings, command: ApiKeyCommand) -> Result<ExitCode, CliError> {
    let db = connect_migrated(settings).await?;
    let pool = &db.pool;
    match command {
        ApiKeyCommand::Create {
            user,
            name,
            expires_days,
        } => {
            let created = create_api_key(pool, &user, &name, expires_days)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?;
            println!("{}", created.key);
            eprintln!(
                "key {} for {} expires {}; it is shown only this once",
                created.info.id,
                created.info.username,
                created.info.expires_at.date()
            );
        }
        ApiKeyCommand::List { user } => {
            for key in api_keys::list(pool, user.as_deref()).await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!(
                    "{}\t{}\t{}\t{}…\texpires {}\t{state}",
                    key.id,
                    key.username,
                    key.name,
                    key.prefix,
                    key.expires_at.date()
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            if !api_keys::revoke(pool, id).await? {
                return Err(CliError::Usage(format!("no live API key with id {id}")));
            }
            println!("revoked key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
