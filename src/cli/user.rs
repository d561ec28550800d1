//! `reelbase user …`: create, list, set-password, disable, enable. Passwords are read from a
//! prompt (twice, without echo) or from standard input when it is not a terminal; never from
//! an argument, which would land in shell history and `ps`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;

use super::{CliError, connect_migrated};
use crate::auth::password;
use crate::config::Settings;
use crate::db::users::{self, Role};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is prompted for, or read from stdin.
    Create {
        name: String,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
    },
    /// List users.
    List,
    /// Set a user's password (prompted for, or read from stdin).
    SetPassword { name: String },
    /// Disable a user: their sessions end and their tokens and keys stop working.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
}

/// At least this many characters; argon2 makes guessing slow, not impossible.
const MIN_PASSWORD_LEN: usize = 8;

pub async fn run(settings: &Settings, command: UserCommand) -> Result<ExitCode, CliError> {
    let db = connect_migrated(settings).await?;
    let pool = &db.pool;
    match command {
        UserCommand::Create { name, role } => {
            validate_name(&name)?;
            let role = Role::parse(&role).unwrap_or(Role::User);
            let hash = password::hash(read_password()?).await?;
            let user = users::create(pool, &name, &hash, role).await?;
            println!("created {} ({})", user.username, user.role.as_str());
        }
        UserCommand::List => {
            for user in users::list(pool).await? {
                let state = if user.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{state}", user.username, user.role.as_str());
            }
        }
        UserCommand::SetPassword { name } => {
            let hash = password::hash(read_password()?).await?;
            found(users::set_password(pool, &name, &hash).await?, &name)?;
            println!("password changed for {name}");
        }
        UserCommand::Disable { name } => {
            found(users::set_disabled(pool, &name, true).await?, &name)?;
            println!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            found(users::set_disabled(pool, &name, false).await?, &name)?;
            println!("enabled {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn found(exists: bool, name: &str) -> Result<(), CliError> {
    if exists {
        Ok(())
    } else {
        Err(CliError::Usage(format!("no user named {name:?}")))
    }
}

fn validate_name(name: &str) -> Result<(), CliError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'".to_owned(),
        ))
    }
}

fn read_password() -> Result<String, CliError> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            return Err(CliError::Usage("the passwords differ".to_owned()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(CliError::Usage(format!(
            "the password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(password)
}
