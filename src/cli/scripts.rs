//! `reelbase scripts manifest|verify` and `reelbase models manifest|verify`: write a folder's
//! `MANIFEST.sha256`, or compare the folder with it.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;
use crate::pipeline::manifest::{self, HashCache};
use crate::pipeline::readiness::MANIFEST;

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Write MANIFEST.sha256 listing every file in the folder with its SHA-256.
    Manifest,
    /// Compare the folder with its MANIFEST.sha256; exit 1 on any difference.
    Verify,
}

pub fn run(dir: &Path, command: ManifestCommand) -> Result<ExitCode, CliError> {
    let keep = |path: &Path| path.file_name().is_some_and(|n| n != MANIFEST);
    let failed = |e: manifest::ManifestError| CliError::Usage(format!("{}: {e}", dir.display()));
    match command {
        ManifestCommand::Manifest => {
            let count = manifest::write(dir, MANIFEST, &keep).map_err(failed)?;
            println!(
                "wrote {} with {count} entries",
                dir.join(MANIFEST).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ManifestCommand::Verify => {
            let files = manifest::files(dir, &keep).map_err(|e| failed(e.into()))?;
            let present = dir.join(MANIFEST).exists();
            let integrity =
                manifest::check(dir, MANIFEST, &files, &HashCache::default()).map_err(failed)?;
            if !present {
                println!("no {MANIFEST} in {}", dir.display());
            }
            for (mark, list) in [
                ("changed", &integrity.mismatched),
                ("missing", &integrity.missing),
                ("not in manifest", &integrity.unlisted),
            ] {
                for path in list {
                    println!("{mark}: {path}");
                }
            }
            println!("{}/{} entries match", integrity.matched, integrity.total);
            let clean = integrity.ok && integrity.unlisted.is_empty();
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
