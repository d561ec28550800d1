//! `reelbase config`: the effective configuration, secrets redacted.

use std::process::ExitCode;

use crate::config::{LoadNotes, Settings};

pub fn run(settings: &Settings, notes: &LoadNotes) -> ExitCode {
    print!("{}", settings.render_redacted());
    for name in &notes.unknown_env {
        eprintln!("warning: unknown variable {name} ignored (a typo?)");
    }
    ExitCode::SUCCESS
}
