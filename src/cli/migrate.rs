//! `reelbase migrate [--status]`: apply pending migrations, or show the schema state.

use std::process::ExitCode;

use crate::config::Settings;
use crate::db::migrations;

use super::{CliError, connect};

pub async fn run(settings: &Settings, status_only: bool) -> Result<ExitCode, CliError> {
    let db = connect(settings)?;
    if !status_only {
        let applied = migrations::migrate(db.connect_one().await?).await?;
        for name in &applied {
            println!("applied {name}");
        }
        if applied.is_empty() {
            println!("nothing to apply");
        }
    }
    let status = migrations::status(&db.pool).await?;
    print_status(&status);
    Ok(if status.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_status(status: &migrations::SchemaStatus) {
    let names = |list: &[migrations::MigrationName]| {
        list.iter()
            .map(|m| m.filename.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "migrations table: {}",
        if status.table_exists {
            "present"
        } else {
            "missing"
        }
    );
    println!(
        "applied ({}): {}",
        status.applied.len(),
        names(&status.applied)
    );
    println!(
        "required ({}): {}",
        status.required.len(),
        names(&status.required)
    );
    if !status.altered.is_empty() {
        println!("ALTERED since applied: {}", names(&status.altered));
    }
    if !status.unknown.is_empty() {
        println!(
            "applied but unknown to this binary: {}",
            names(&status.unknown)
        );
    }
    println!("schema: {}", if status.ok { "ok" } else { "NOT OK" });
}
